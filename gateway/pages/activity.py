"""The activity report's pages: a commune's year (or any period) of lending and borrowing,
buy or borrow, its items' use; with its chart and table, CSV and PDF."""

from __future__ import annotations

from datetime import date

from contracts.caller import Role
from contracts.clock import paris_today
from contracts.errors import ServiceError
from contracts.french import of_commune
from contracts.listings import CATEGORIES
from gateway.pages import french
from gateway.pages.entrypoint import Page, Web, commune_name, page
from gateway.pages.finances import _download
from gateway.pages.forms import FormError, cents_from_euros, day, whole_number
from gateway.pages.reports import (
    DEFAULT_LIFETIME_YEARS,
    DEFAULT_MIN_DAYS,
    Activity,
    activity,
    as_csv,
    as_pdf,
    buy_or_borrow,
)
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

READERS = (Role.MANAGER, Role.FINANCE)
MAX_PAGES = 50  # 10,000 bookings a side: a commune's years, not a runaway loop
CHART_WIDTH = 420


def amount_bars(rows, width: int = CHART_WIDTH) -> list[dict]:
    """One bar per counterpart, on the scale of the largest amount."""
    largest = max([row.amount_cents for row in rows] + [1])
    return [
        {
            "name": commune_name(row.commune),
            "amount_cents": row.amount_cents,
            "width": round(
                row.amount_cents / largest * (width - 160 - 110), 1
            ),  # value on the right
            "y": 8 + i * 30,
        }
        for i, row in enumerate(rows)
    ]


class ActivityPages:
    bookings = ServiceRpc("bookings")
    listings = ServiceRpc("listings")

    def _all_bookings(self, web: Web) -> list[dict]:
        found: list[dict] = []
        for side in ("lender", "borrower"):
            cursor = None
            for _ in range(MAX_PAGES):
                query = {"as": side, "limit": 200} | ({"cursor": cursor} if cursor else {})
                answer = self.bookings.list_bookings(as_rpc(web.caller), query)
                found += answer["items"]
                cursor = answer["next_cursor"]
                if cursor is None:
                    break
        return found

    def _period(self, web: Web) -> tuple[date, date]:
        year = paris_today().year
        first = day(web.arg("du"), "du", False) or date(year, 1, 1)
        last = day(web.arg("au"), "au", False) or date(year, 12, 31)
        if last < first:
            raise FormError("au", "Le dernier jour doit suivre le premier.")
        return first, last

    def _report(self, web: Web) -> tuple[Activity, dict]:
        first, last = self._period(web)
        report = activity(self._all_bookings(web), web.visitor.commune, first, last)
        return report, {c.commune: commune_name(c.commune) for c in report.lent + report.borrowed}

    def _title(self, web: Web, report: Activity) -> str:
        return (
            f"Activité {of_commune(web.visitor.commune_name)} "
            f"{french.day_span(report.first, report.last)}"
        )

    @page("GET", "/rapports/activite", roles=READERS)
    def activity_page(self, request, web: Web):
        errors: dict[str, list[str]] = {}
        try:
            report, names = self._report(web)
            lifetime = whole_number(web.arg("duree_vie"), "duree_vie")
            min_days = whole_number(web.arg("seuil"), "seuil")
        except FormError as exc:
            errors[exc.field] = [exc.message]
            year = paris_today().year
            report, names = (
                activity([], web.visitor.commune, date(year, 1, 1), date(year, 12, 31)),
                {},
            )
            lifetime = min_days = None
        lifetime = lifetime or DEFAULT_LIFETIME_YEARS
        min_days = DEFAULT_MIN_DAYS if min_days is None else min_days
        by_category: dict[str, tuple[int, int]] = {}
        for listing_id, (days, spent) in report.borrowed_by_listing.items():
            try:
                category = self.listings.get(as_rpc(web.caller), listing_id)["category"]
            except ServiceError:  # withdrawn since, or gone: still money spent
                category = "autre"
            had = by_category.get(category, (0, 0))
            by_category[category] = (had[0] + days, had[1] + spent)
        prices = {}
        for category in by_category:
            try:
                prices[category] = (
                    cents_from_euros(
                        web.arg(f"prix_{category}"), f"prix_{category}", required=False
                    ),
                    cents_from_euros(
                        web.arg(f"entretien_{category}"), f"entretien_{category}", required=False
                    ),
                )
            except FormError as exc:
                errors[exc.field] = [exc.message]
        verdicts = buy_or_borrow(by_category, report.days_in_period, prices, lifetime, min_days)
        return Page(
            "activity.html",
            {
                "report": report,
                "names": names,
                "title": self._title(web, report),
                "lent_bars": amount_bars(report.lent),
                "borrowed_bars": amount_bars(report.borrowed),
                "chart_width": CHART_WIDTH,
                "verdicts": verdicts,
                "categories": CATEGORIES | {"autre": "Autre (annonce retirée)"},
                "lifetime": lifetime,
                "min_days": min_days,
                "asked": {k: web.arg(k) for k in ("du", "au")},
                "args": dict(web.request.args),
                "errors": errors,
            },
            422 if errors else 200,
        )

    @page("GET", "/rapports/activite/csv", roles=READERS)
    def activity_csv(self, request, web: Web):
        report, names = self._report(web)
        return _download(
            ("\ufeff" + as_csv(report, names)).encode("utf-8"),
            "text/csv; charset=utf-8",
            f"activite-{web.visitor.commune}-{report.first}-{report.last}.csv",
        )

    @page("GET", "/rapports/activite/pdf", roles=READERS)
    def activity_pdf(self, request, web: Web):
        report, names = self._report(web)
        document = as_pdf(report, names, self._title(web, report), french.money)
        return _download(
            document,
            "application/pdf",
            f"activite-{web.visitor.commune}-{report.first}-{report.last}.pdf",
        )
