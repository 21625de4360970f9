"""The billing service: charges, invoices, credit notes, payments, settlements."""
