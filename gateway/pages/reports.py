"""A commune's activity report over a year or any period: what it lent and borrowed, to and
from whom, days and amounts; buy or borrow per category; each of its items' utilisation.
The figures are pure functions of the bookings (`activity`, `buy_or_borrow`); the pages
draw them (server-side SVG beside their tables) and export them as CSV and PDF."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from contracts.bookings import BookingStatus
from contracts.clock import PARIS
from gateway.pages.french import counted

# the Unicode font of the PDF (Debian's fonts-dejavu-core, as the invoices use)
FONTS = Path("/usr/share/fonts/truetype/dejavu")

# the loans that took place: handed over, then returned or still out
TOOK_PLACE = frozenset({BookingStatus.CHECKED_OUT.value, BookingStatus.RETURNED.value})
DEFAULT_LIFETIME_YEARS = 8
DEFAULT_MIN_DAYS = 10


@dataclass
class Counterpart:
    commune: str
    loans: int = 0
    days: int = 0
    amount_cents: int = 0


@dataclass
class ItemUse:
    listing_id: str
    title: str
    loans: int = 0
    days: int = 0
    days_in_period: int = 0

    @property
    def share(self) -> float:
        """Days lent over the days of the period (closures not deducted)."""
        return self.days / self.days_in_period if self.days_in_period else 0.0


@dataclass
class Activity:
    commune: str
    first: date
    last: date  # included
    lent: list[Counterpart] = field(default_factory=list)
    borrowed: list[Counterpart] = field(default_factory=list)
    items: list[ItemUse] = field(default_factory=list)
    # listing id -> (days borrowed, amount spent), for buy or borrow
    borrowed_by_listing: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def days_in_period(self) -> int:
        return (self.last - self.first).days + 1

    def total(self, side: str, what: str) -> int:
        return sum(getattr(row, what) for row in getattr(self, side))


def _local_day(value: str) -> date:
    moment = datetime.fromisoformat(value)
    return moment.astimezone(PARIS).date() if moment.tzinfo else moment.date()


def days_within(booking: dict, first: date, last: date) -> int:
    """The days of a loan inside [first, last], Paris days: a day loan's days (its end is
    exclusive), an hour loan's days it touches."""
    start = _local_day(booking["start"])
    end = datetime.fromisoformat(booking["end"])
    if booking["quote"]["pricing_unit"] == "hour":
        end_day = (end - timedelta(microseconds=1)).astimezone(PARIS).date()
    else:
        end_day = _local_day(booking["end"]) - timedelta(days=1)
    lo, hi = max(start, first), min(end_day, last)
    return max((hi - lo).days + 1, 0)


def activity(bookings: list[dict], commune: str, first: date, last: date) -> Activity:
    """What `commune` lent and borrowed in [first, last]: the loans that took place and
    overlap the period, each counterpart's loans, days inside the period and amounts (a
    loan's whole amount, as its quote says, counted in the period it starts in)."""
    report = Activity(commune, first, last)
    lent: dict[str, Counterpart] = {}
    borrowed: dict[str, Counterpart] = {}
    items: dict[str, ItemUse] = {}
    for booking in bookings:
        if booking["status"] not in TOOK_PLACE:
            continue
        days = days_within(booking, first, last)
        if days == 0:
            continue
        starts_inside = first <= _local_day(booking["start"]) <= last
        amount = booking["quote"]["amount_cents"] if starts_inside else 0
        if booking["lender_commune"] == commune:
            row = lent.setdefault(
                booking["borrower_commune"], Counterpart(booking["borrower_commune"])
            )
            use = items.setdefault(
                booking["listing_id"],
                ItemUse(
                    booking["listing_id"], booking["listing_title"], 0, 0, report.days_in_period
                ),
            )
            use.loans += 1
            use.days += days
        elif booking["borrower_commune"] == commune:
            row = borrowed.setdefault(
                booking["lender_commune"], Counterpart(booking["lender_commune"])
            )
            had = report.borrowed_by_listing.get(booking["listing_id"], (0, 0))
            report.borrowed_by_listing[booking["listing_id"]] = (had[0] + days, had[1] + amount)
        else:
            continue
        row.loans += 1
        row.days += days
        row.amount_cents += amount
    order = lambda row: (-row.amount_cents, row.commune)  # noqa: E731
    report.lent = sorted(lent.values(), key=order)
    report.borrowed = sorted(borrowed.values(), key=order)
    report.items = sorted(items.values(), key=lambda use: (-use.share, use.title))
    return report


@dataclass
class Verdict:
    category: str
    days: int
    spent_cents: int
    borrowing_per_year_cents: int
    price_cents: int | None
    upkeep_cents: int | None
    owning_per_year_cents: int | None

    @property
    def buy(self) -> bool | None:
        """True: owning costs less a year than borrowing did; None: no price entered."""
        if self.owning_per_year_cents is None:
            return None
        return self.owning_per_year_cents < self.borrowing_per_year_cents


def buy_or_borrow(
    spent_by_category: dict[str, tuple[int, int]],
    days_in_period: int,
    prices: dict[str, tuple[int | None, int | None]],
    lifetime_years: int = DEFAULT_LIFETIME_YEARS,
    min_days: int = DEFAULT_MIN_DAYS,
) -> list[Verdict]:
    """For each category borrowed more than `min_days` days in the period:

        borrowing a year = spent in the period × 365 ÷ days of the period
        owning a year    = purchase price ÷ lifetime in years + yearly upkeep

    buy when owning a year costs less than borrowing a year (prices as the commune enters
    them; no price, no verdict)."""
    verdicts = []
    for category, (days, spent) in sorted(spent_by_category.items()):
        if days <= min_days:
            continue
        yearly = round(Decimal(spent) * 365 / max(days_in_period, 1))
        price, upkeep = prices.get(category, (None, None))
        owning = None
        if price is not None:
            owning = round(Decimal(price) / max(lifetime_years, 1)) + (upkeep or 0)
        verdicts.append(Verdict(category, days, spent, int(yearly), price, upkeep, owning))
    return verdicts


# -- exports ----------------------------------------------------------------------------


def as_csv(report: Activity, names: dict[str, str]) -> str:
    """One line per counterpart and side, then one per item lent; amounts in euros with a
    dot (for spreadsheets), the separator a semicolon (French spreadsheets' default)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["section", "commune", "code_insee", "prets", "jours", "montant_eur"])
    for side, rows in (("prete", report.lent), ("emprunte", report.borrowed)):
        for row in rows:
            writer.writerow(
                [
                    side,
                    names.get(row.commune, row.commune),
                    row.commune,
                    row.loans,
                    row.days,
                    f"{Decimal(row.amount_cents) / 100:.2f}",
                ]
            )
        writer.writerow(
            [
                f"total_{side}",
                "",
                "",
                report.total(side_attr(side), "loans"),
                report.total(side_attr(side), "days"),
                f"{Decimal(report.total(side_attr(side), 'amount_cents')) / 100:.2f}",
            ]
        )
    writer.writerow([])
    writer.writerow(["section", "annonce", "id", "prets", "jours", "jours_periode", "taux"])
    for use in report.items:
        writer.writerow(
            [
                "utilisation",
                use.title,
                use.listing_id,
                use.loans,
                use.days,
                use.days_in_period,
                f"{use.share:.4f}",
            ]
        )
    return out.getvalue()


def side_attr(side: str) -> str:
    return "lent" if side == "prete" else "borrowed"


def as_pdf(report: Activity, names: dict[str, str], title: str, money) -> bytes:
    """The report on A4: its totals first, then each side's table and the items' use."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(title)
    pdf.add_page()
    regular, bold = (FONTS / name for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 10)
    for side, label in (("lent", "Prêté"), ("borrowed", "Emprunté")):
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(
            0,
            7,
            f"{label} : {counted(report.total(side, 'loans'), 'prêt')} · "
            f"{counted(report.total(side, 'days'), 'jour')} · "
            f"total {money(report.total(side, 'amount_cents'))}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_font("DejaVu", "", 10)
        for row in getattr(report, side):
            pdf.cell(90, 6, names.get(row.commune, row.commune))
            pdf.cell(25, 6, str(row.loans), align="R")
            pdf.cell(25, 6, str(row.days), align="R")
            pdf.cell(0, 6, money(row.amount_cents), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if report.items:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, "Utilisation de nos annonces", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("DejaVu", "", 10)
        for use in report.items:
            pdf.cell(120, 6, use.title[:60])
            pdf.cell(30, 6, f"{use.days}/{use.days_in_period} j", align="R")
            pdf.cell(
                0,
                6,
                f"{use.share:.0%}".replace("%", " %"),
                align="R",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
    return bytes(pdf.output())
