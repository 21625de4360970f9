"""Bank statements as finance teams download them: ISO 20022 CAMT.053 XML or CSV, read into
the credits received on the account, each with a fingerprint that is the same every time
the same statement is read."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

from contracts.billing import MAX_CENTS
from contracts.fields import EARLIEST_YEAR, LATEST_YEAR, control_character

MAX_LINES = 20_000


class UnreadableStatement(ValueError):
    """The file is not a statement this parser understands; `field` says where."""

    def __init__(self, message: str, field: str = "body"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StatementCredit:
    """Money received: one transaction of the statement."""

    fingerprint: str
    booking_date: date
    amount_cents: int
    counterparty_name: str
    counterparty_iban: str | None
    remittance: str
    bank_reference: str | None


@dataclass(frozen=True)
class ParsedStatement:
    format: str  # camt.053 or csv
    reference: str | None
    account_iban: str | None
    credits: list[StatementCredit]
    ignored: int  # debits, rejected or pending entries: not money received


def parse_statement(content: bytes) -> ParsedStatement:
    """CAMT.053 when the content is XML, CSV otherwise."""
    head = content.lstrip()[:1]
    if head == b"<":
        return parse_camt053(content)
    return parse_csv(content)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def cents_of(text: str, field: str) -> int:
    """'1 234,56', '1234.56', '-12.5' -> cents; more than two decimals is refused."""
    cleaned = re.sub(r"[\s\u00a0\u202f€]", "", text or "")
    if "," in cleaned and "." in cleaned:  # 1.234,56 or 1,234.56: the last one is decimal
        thousands = "." if cleaned.rfind(",") > cleaned.rfind(".") else ","
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise UnreadableStatement(f"{text!r} is not an amount", field) from None
    if not amount.is_finite():
        raise UnreadableStatement(f"{text!r} is not an amount in cents", field)
    # before quantizing: 1e30 has more digits than the decimal context holds
    if abs(amount) * 100 > MAX_CENTS:
        raise UnreadableStatement(
            f"{text!r} is beyond the largest amount ({MAX_CENTS // 100} euros)", field
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise UnreadableStatement(f"{text!r} is not an amount in cents", field)
    return int(amount * 100)


def _date(text: str, field: str) -> date:
    text = (text or "").strip()
    for pattern, order in (
        (r"(\d{4})-(\d{2})-(\d{2})", "ymd"),
        (r"(\d{2})/(\d{2})/(\d{4})", "dmy"),
    ):
        match = re.match(pattern, text)
        if match:
            a, b, c = (int(g) for g in match.groups())
            try:
                found = date(a, b, c) if order == "ymd" else date(c, b, a)
            except ValueError:
                break
            if not EARLIEST_YEAR <= found.year <= LATEST_YEAR:
                raise UnreadableStatement(
                    f"{text!r}: the year should be between {EARLIEST_YEAR} and {LATEST_YEAR}",
                    field,
                )
            return found
    raise UnreadableStatement(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)", field)


def _clean(text: str, field: str) -> str:
    """Text of the statement as stored and shown: no NUL or other control character, as in
    JSON input."""
    bad = control_character(text)
    if bad is not None:
        raise UnreadableStatement(f"control character U+{ord(bad):04X} in {text!r}", field)
    return text


def _iban(text: str | None) -> str | None:
    compact = re.sub(r"\s", "", text or "").upper()
    return compact or None


# -- CAMT.053 ---------------------------------------------------------------------------

# no DTD, no entities, no network: a statement is data, never instructions to the parser
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, dtd_validation=False, load_dtd=False, huge_tree=False
)


def _local(node, path: str):
    """First node at a path of local names ('Refs/EndToEndId'), whatever the camt version's
    namespace."""
    current = node
    for name in path.split("/"):
        if current is None:
            return None
        current = next((c for c in current if etree.QName(c).localname == name), None)
    return current


def _text(node, path: str) -> str | None:
    found = _local(node, path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _all(node, name: str) -> list:
    return [c for c in node if etree.QName(c).localname == name]


def parse_camt053(content: bytes) -> ParsedStatement:
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnreadableStatement(f"not well-formed XML: {exc}") from None
    if etree.QName(root).localname != "Document" or "camt.053" not in (
        etree.QName(root).namespace or ""
    ):
        raise UnreadableStatement("not an ISO 20022 camt.053 document")
    report = _local(root, "BkToCstmrStmt")
    statements = _all(report, "Stmt") if report is not None else []
    if not statements:
        raise UnreadableStatement("the document has no statement (BkToCstmrStmt/Stmt)")
    credits, ignored, reference, account = [], 0, None, None
    for s_index, stmt in enumerate(statements):
        stmt_id = _text(stmt, "Id") or f"stmt-{s_index}"
        reference = reference or stmt_id
        account = account or _iban(_text(stmt, "Acct/Id/IBAN"))
        for e_index, entry in enumerate(_all(stmt, "Ntry")):
            status = _text(entry, "Sts/Cd") or _text(entry, "Sts")
            if _text(entry, "CdtDbtInd") != "CRDT" or (status and status != "BOOK"):
                ignored += 1
                continue
            booked = _text(entry, "BookgDt/Dt") or _text(entry, "BookgDt/DtTm") or ""
            entry_date = _date(booked[:10], f"Ntry[{e_index}]/BookgDt")
            details = [tx for nd in _all(entry, "NtryDtls") for tx in _all(nd, "TxDtls")] or [None]
            for t_index, tx in enumerate(details):
                credits.append(
                    _camt_credit(
                        entry,
                        tx,
                        stmt_id,
                        account,
                        entry_date,
                        e_index,
                        t_index,
                        single=len(details) == 1,
                    )
                )
                if len(credits) > MAX_LINES:
                    raise UnreadableStatement(f"more than {MAX_LINES} transactions")
    return ParsedStatement("camt.053", reference, account, credits, ignored)


def _camt_credit(
    entry, tx, stmt_id, account, entry_date, e_index, t_index, single
) -> StatementCredit:
    where = f"Ntry[{e_index}]"
    amount_text = None
    if tx is not None:
        amount_text = _text(tx, "Amt") or _text(tx, "AmtDtls/TxAmt/Amt")
    if amount_text is None:
        if not single:
            raise UnreadableStatement("a batch transaction has no amount", f"{where}/TxDtls")
        amount_text = _text(entry, "Amt")
    amount = cents_of(amount_text or "", f"{where}/Amt")
    name = iban = None
    remittance_parts: list[str] = []
    bank_ref = None
    if tx is not None:
        # camt.053.001.02 names the debtor directly, later versions wrap it in Pty
        name = _text(tx, "RltdPties/Dbtr/Nm") or _text(tx, "RltdPties/Dbtr/Pty/Nm")
        iban = _iban(_text(tx, "RltdPties/DbtrAcct/Id/IBAN"))
        remittance = _local(tx, "RmtInf")
        if remittance is not None:
            remittance_parts += [u.text.strip() for u in _all(remittance, "Ustrd") if u.text]
            for structured in _all(remittance, "Strd"):
                ref = _text(structured, "CdtrRefInf/Ref")
                if ref:
                    remittance_parts.append(ref)
        bank_ref = _text(tx, "Refs/AcctSvcrRef") or _text(tx, "Refs/EndToEndId")
    if not remittance_parts:
        info = _text(entry, "AddtlNtryInf")
        if info:
            remittance_parts.append(info)
    if bank_ref in (None, "NOTPROVIDED"):
        bank_ref = _text(entry, "AcctSvcrRef") if single else None
    # the bank's own reference identifies the transaction across statements; without one,
    # its place in this statement does
    fingerprint = (
        _fingerprint("camt", account, bank_ref, amount)
        if bank_ref
        else _fingerprint("camt", account, stmt_id, e_index, t_index, amount)
    )
    return StatementCredit(
        fingerprint=fingerprint,
        booking_date=entry_date,
        amount_cents=amount,
        counterparty_name=_clean(name or "", f"{where}/Dbtr/Nm"),
        counterparty_iban=iban and _clean(iban, f"{where}/DbtrAcct"),
        remittance=_clean(" ".join(remittance_parts), f"{where}/RmtInf"),
        bank_reference=bank_ref and _clean(bank_ref, f"{where}/Refs"),
    )


# -- CSV --------------------------------------------------------------------------------

COLUMNS = {
    "date": ("date", "booking_date", "date_operation", "date opération", "date operation"),
    "amount": ("amount", "montant", "credit", "crédit"),
    "name": ("counterparty", "counterparty_name", "name", "payer", "tiers", "émetteur", "emetteur"),
    "iban": ("iban", "counterparty_iban", "iban_emetteur"),
    "remittance": ("remittance", "reference", "référence", "libelle", "libellé", "label", "motif"),
    "bank_reference": ("bank_reference", "transaction_id", "id", "référence banque"),
}


def _column_of(header: list[str]) -> dict[str, int]:
    lowered = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for i, name in enumerate(lowered):
            if name in names and i not in found.values():
                found[key] = i
                break
    return found


def parse_csv(content: bytes) -> ParsedStatement:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("latin-1")  # French bank exports are often Windows-1252
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:  # a field may hold a line break only between quotes
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise UnreadableStatement(f"the CSV is malformed: {exc}") from None
    if not rows:
        raise UnreadableStatement("the statement is empty")
    columns = _column_of(rows[0])
    missing = [k for k in ("date", "amount") if k not in columns]
    if missing:
        raise UnreadableStatement(
            "the CSV header needs the columns date and amount (and ideally counterparty, "
            f"iban, remittance, bank_reference); missing: {', '.join(missing)}"
        )
    if len(rows) > MAX_LINES + 1:
        raise UnreadableStatement(f"more than {MAX_LINES} lines")
    credits, ignored = [], 0
    seen: dict[tuple, int] = {}

    def cell(row: list[str], key: str) -> str:
        i = columns.get(key)
        return _clean(row[i].strip(), f"line {n}: {key}") if i is not None and i < len(row) else ""

    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        amount = cents_of(cell(row, "amount"), f"line {n}: amount")
        if amount <= 0:
            ignored += 1
            continue
        booked = _date(cell(row, "date"), f"line {n}: date")
        name, iban = cell(row, "name"), _iban(cell(row, "iban"))
        remittance, bank_ref = cell(row, "remittance"), cell(row, "bank_reference") or None
        identity = (booked.isoformat(), amount, name, iban, remittance)
        # two identical lines are two payments: their rank among equals tells them apart
        seen[identity] = seen.get(identity, 0) + 1
        fingerprint = (
            _fingerprint("csv", bank_ref, amount)
            if bank_ref
            else _fingerprint("csv", *identity, seen[identity])
        )
        credits.append(
            StatementCredit(
                fingerprint=fingerprint,
                booking_date=booked,
                amount_cents=amount,
                counterparty_name=name,
                counterparty_iban=iban,
                remittance=remittance,
                bank_reference=bank_ref,
            )
        )
    return ParsedStatement("csv", None, None, credits, ignored)
