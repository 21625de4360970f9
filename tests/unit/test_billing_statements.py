"""Bank statements: CAMT.053 (versions 02 and 08, single and batch entries) and CSV (French
and plain formats) read into the credits received, with fingerprints that are stable from
one reading to the next."""

from __future__ import annotations

from datetime import date

import pytest

from services.billing.bank_statements import (
    UnreadableStatement,
    cents_of,
    parse_camt053,
    parse_csv,
    parse_statement,
)

CAMT_02 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-03-05T18:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>STMT-2026-03-05</Id>
   <CreDtTm>2026-03-05T18:00:00</CreDtTm>
   <Acct><Id><IBAN>FR283000100794C420440000028</IBAN></Id></Acct>
   <Ntry>
    <Amt Ccy="EUR">990.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-03-05</Dt></BookgDt><ValDt><Dt>2026-03-05</Dt></ValDt>
    <AcctSvcrRef>BDF-0001</AcctSvcrRef>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>E2E-1</EndToEndId></Refs>
     <RltdPties><Dbtr><Nm>COMMUNE DE SAINT ETIENNE</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>FR28 3000 1007 94C4 2218 0000 093</IBAN></Id></DbtrAcct></RltdPties>
     <RmtInf><Ustrd>FACTURE 42044-2026-000001</Ustrd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">120.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-03-05</Dt></BookgDt>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">50.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>PDNG</Sts>
    <BookgDt><Dt>2026-03-05</Dt></BookgDt>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>"""

CAMT_08_BATCH = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>MSG-2</MsgId><CreDtTm>2026-03-06T18:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>STMT-2026-03-06</Id>
   <Acct><Id><IBAN>FR283000100794C420440000028</IBAN></Id></Acct>
   <Ntry>
    <Amt Ccy="EUR">1625.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><DtTm>2026-03-06T09:12:00</DtTm></BookgDt>
    <NtryDtls>
     <TxDtls>
      <Refs><AcctSvcrRef>BDF-0002</AcctSvcrRef></Refs>
      <Amt Ccy="EUR">1125.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
      <RltdPties><Dbtr><Pty><Nm>MAIRIE DE FIRMINY</Nm></Pty></Dbtr></RltdPties>
      <RmtInf><Strd><CdtrRefInf><Ref>42095-2026-000003</Ref></CdtrRefInf></Strd></RmtInf>
     </TxDtls>
     <TxDtls>
      <Refs><AcctSvcrRef>BDF-0003</AcctSvcrRef></Refs>
      <Amt Ccy="EUR">500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
      <RltdPties><Dbtr><Pty><Nm>COMMUNE DE ROCHE LA MOLIERE</Nm></Pty></Dbtr></RltdPties>
     </TxDtls>
    </NtryDtls>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>"""


def test_camt053_v02_reads_credits_and_skips_debits_and_pending_entries():
    statement = parse_camt053(CAMT_02.encode())
    assert statement.format == "camt.053"
    assert statement.reference == "STMT-2026-03-05"
    assert statement.account_iban == "FR283000100794C420440000028"
    assert statement.ignored == 2
    (credit,) = statement.credits
    assert credit.amount_cents == 99000
    assert credit.booking_date == date(2026, 3, 5)
    assert credit.counterparty_name == "COMMUNE DE SAINT ETIENNE"
    assert credit.counterparty_iban == "FR283000100794C422180000093"
    assert credit.remittance == "FACTURE 42044-2026-000001"
    assert credit.bank_reference == "E2E-1"


def test_camt053_v08_batch_entries_give_one_credit_per_transaction():
    statement = parse_statement(CAMT_08_BATCH.encode())
    assert [(c.amount_cents, c.counterparty_name, c.bank_reference) for c in statement.credits] == [
        (112500, "MAIRIE DE FIRMINY", "BDF-0002"),
        (50000, "COMMUNE DE ROCHE LA MOLIERE", "BDF-0003"),
    ]
    assert statement.credits[0].remittance == "42095-2026-000003"
    assert statement.credits[0].booking_date == date(2026, 3, 6)


def test_the_same_statement_read_twice_gives_the_same_fingerprints():
    first = [c.fingerprint for c in parse_statement(CAMT_08_BATCH.encode()).credits]
    again = [c.fingerprint for c in parse_statement(CAMT_08_BATCH.encode()).credits]
    assert first == again and len(set(first)) == 2


@pytest.mark.parametrize(
    "document",
    [
        b"<Document><oops>",
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/>'
        b"</Document>",
    ],
)
def test_what_is_not_a_camt053_statement_is_refused(document):
    with pytest.raises(UnreadableStatement):
        parse_statement(document)


def test_xml_entities_are_not_expanded():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        b"<Stmt><Id>&x;</Id><Ntry><Amt>1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
        b"<BookgDt><Dt>2026-03-05</Dt></BookgDt><AddtlNtryInf>&x;</AddtlNtryInf></Ntry></Stmt>"
        b"</BkToCstmrStmt></Document>"
    )
    statement = parse_statement(bomb)
    assert "root:" not in statement.credits[0].remittance


FRENCH_CSV = (
    "Date;Montant;Tiers;IBAN;Libellé\n"
    "05/03/2026;990,00;COMMUNE DE SAINT ETIENNE;FR283000100794C422180000093;"
    "FACT 42044-2026-000001\n"
    "05/03/2026;-120,00;EDF;;prélèvement\n"
    "06/03/2026;1 125,00;MAIRIE DE FIRMINY;;virement\n"
    "06/03/2026;1 125,00;MAIRIE DE FIRMINY;;virement\n"
).encode("latin-1")


def test_a_french_bank_csv_with_semicolons_and_decimal_commas():
    statement = parse_statement(FRENCH_CSV)
    assert statement.format == "csv"
    assert statement.ignored == 1
    assert [(c.booking_date, c.amount_cents) for c in statement.credits] == [
        (date(2026, 3, 5), 99000),
        (date(2026, 3, 6), 112500),
        (date(2026, 3, 6), 112500),
    ]
    assert statement.credits[0].remittance == "FACT 42044-2026-000001"
    # two identical lines are two payments, and they stay the same two on a second reading
    fingerprints = [c.fingerprint for c in statement.credits]
    assert len(set(fingerprints)) == 3
    assert fingerprints == [c.fingerprint for c in parse_statement(FRENCH_CSV).credits]


def test_a_plain_csv_with_a_bank_reference():
    statement = parse_csv(
        b"date,amount,counterparty,iban,remittance,bank_reference\n"
        b"2026-03-07,42.50,Firminy,,,TX-9\n"
    )
    (credit,) = statement.credits
    assert (credit.amount_cents, credit.bank_reference) == (4250, "TX-9")


def test_a_file_that_is_no_csv_is_refused_not_a_crash():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"  # a field with a bare CR
    with pytest.raises(UnreadableStatement):
        parse_statement(png)


def test_a_csv_without_date_or_amount_columns_is_refused():
    with pytest.raises(UnreadableStatement) as refused:
        parse_csv(b"when,how much\n2026-03-07,1\n")
    assert "date" in str(refused.value)
    with pytest.raises(UnreadableStatement) as refused:
        parse_csv(b"date,amount\n2026-03-07,12.345\n")
    assert refused.value.field == "line 2: amount"


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("990.00", 99000),
        ("990,5", 99050),
        ("1 234,56", 123456),
        ("1.234,56", 123456),
        ("1,234.56", 123456),
        ("-12", -1200),
        ("7 €", 700),
    ],
)
def test_amounts_are_read_exactly_in_cents(text, cents):
    assert cents_of(text, "amount") == cents
