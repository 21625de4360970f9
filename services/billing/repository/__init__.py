"""Reading and writing the billing database: charges, profiles, invoices, credit notes,
payments and bank statements, statements of account, settlements. Only SQL: what to write
is decided in domain.py, and service.py announces it."""

from services.billing.repository.charges import (
    add_charges,
    charges_of,
    suppliers_to_invoice,
    uninvoiced_charges,
)
from services.billing.repository.credit_notes import (
    add_credit_note,
    credit_notes_of,
    get_credit_note,
)
from services.billing.repository.invoices import (
    add_invoices,
    get_invoice,
    invoice_lines,
    invoices_by_number,
    invoices_of,
    line_counts,
    open_invoices_between,
    overpaid_balances,
    set_payment_order,
    set_status,
)
from services.billing.repository.netting import (
    add_settlement,
    last_settlement,
    next_sequence,
    settle_open_invoices,
)
from services.billing.repository.numbering import locked_sequence, next_number
from services.billing.repository.payments import (
    add_payment,
    add_statement,
    add_statement_line,
    payment_for_update,
    payments_of,
    payments_of_line,
    reverse_payment,
    set_line_status,
    standing_payments_of_line,
    statement_line_for_update,
    unmatched_lines,
)
from services.billing.repository.profiles import (
    accounts,
    profile_of,
    profiles_of,
    save_profile,
)
from services.billing.repository.statements import (
    movements_between,
    open_balances,
    overpaid_between,
)

__all__ = [
    "accounts",
    "add_charges",
    "add_credit_note",
    "add_invoices",
    "add_payment",
    "add_settlement",
    "add_statement",
    "add_statement_line",
    "charges_of",
    "credit_notes_of",
    "get_credit_note",
    "get_invoice",
    "invoice_lines",
    "invoices_by_number",
    "invoices_of",
    "last_settlement",
    "line_counts",
    "locked_sequence",
    "movements_between",
    "next_number",
    "next_sequence",
    "open_balances",
    "open_invoices_between",
    "overpaid_balances",
    "overpaid_between",
    "payment_for_update",
    "payments_of",
    "payments_of_line",
    "profile_of",
    "profiles_of",
    "reverse_payment",
    "save_profile",
    "set_line_status",
    "set_payment_order",
    "set_status",
    "settle_open_invoices",
    "standing_payments_of_line",
    "statement_line_for_update",
    "suppliers_to_invoice",
    "uninvoiced_charges",
    "unmatched_lines",
]
