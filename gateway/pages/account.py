"""Signing in and out, and the dashboard: what waits for my commune, upcoming loans both
ways, recent activity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import eventlet
from sqlalchemy import select

from contracts.billing import OPEN_STATUSES
from contracts.caller import Role
from contracts.clock import now as clock_now
from contracts.clock import paris_today
from contracts.emergencies import NEED_LABELS
from contracts.errors import ServiceError
from gateway.errors import TooManyLogins
from gateway.login_attempts import authenticate_slowly
from gateway.models import User
from gateway.pages import french
from gateway.pages.emergencies import urgent_first
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.pages.second_factor import SecondFactorPages
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc
from gateway.second_factor import MissingFactor

OPEN_BOOKINGS = ("approved", "checked_out")


def attempt(call: Callable[[], Any], default: Any) -> tuple[Any, bool]:
    """A block of the dashboard: its data, or the default and False when its service is
    unavailable (the rest of the page still shows)."""
    try:
        return call(), True
    except ServiceError:
        return default, False


def attempt_together(blocks: list[tuple[Callable[[], Any], Any]]) -> list[tuple[Any, bool]]:
    """`attempt` of each (call, default) at the same time, in green threads: the page waits
    for the slowest RPC, not for the sum of them."""
    pile = eventlet.GreenPile(len(blocks) or 1)
    for call, default in blocks:
        pile.spawn(attempt, call, default)
    return list(pile)


class AccountPages(SecondFactorPages):
    listings = ServiceRpc("listings")
    bookings = ServiceRpc("bookings")
    consultants = ServiceRpc("consultants")
    billing = ServiceRpc("billing")

    @page("GET", "/", public=True)
    def home_page(self, request, web: Web):
        return go("/tableau-de-bord" if web.visitor else "/connexion")

    @page("GET", "/connexion", public=True)
    def login_page(self, request, web: Web):
        return Page("login.html", {"target": web.arg("suite"), "email": "", "error": None})

    @page("POST", "/connexion", public=True)
    def login_submit(self, request, web: Web):
        email = (web.form.get("email") or "").strip().lower()[:254].replace("\x00", "")
        password = (web.form.get("password") or "")[:200]
        try:
            user = authenticate_slowly(self.db, self.config, request, email, password, "pages")
        except MissingFactor as missing:
            return self.second_step(request, web, missing.user_id, missing.extra["enrolled"])
        except TooManyLogins as exc:
            wait = exc.retry_after_seconds
            return Page(
                "login.html",
                {
                    "target": web.form.get("suite", ""),
                    "email": email,
                    "error": f"Trop d'essais manqués : réessayez dans {wait} s.",
                },
                429,
                headers={"Retry-After": str(wait)},
            )
        if user is None:
            return Page(
                "login.html",
                {
                    "target": web.form.get("suite", ""),
                    "email": email,
                    "error": "E-mail ou mot de passe incorrect.",
                },
                401,
            )
        return web.sign_in(user.id, web.form.get("suite", ""))

    @page("POST", "/deconnexion")
    def logout_submit(self, request, web: Web):
        return web.sign_out()

    @page("GET", "/tableau-de-bord")
    def dashboard_page(self, request, web: Web):
        caller, visitor = as_rpc(web.caller), web.visitor
        now = clock_now()
        finances = visitor.has(Role.FINANCE, Role.MANAGER)

        def items(call: Callable[..., dict], query: dict) -> Callable[[], list]:
            return lambda: call(caller, query | {"limit": 200})["items"]

        (
            (lent, ok_lent),
            (borrowed, ok_borrowed),
            (engaged, ok_engaged),
            (lending_experts, _),
            (received, ok_invoices),
            (profile, _),
            (money, _),
        ) = attempt_together(
            [
                (items(self.bookings.list_bookings, {"as": "lender"}), []),
                (items(self.bookings.list_bookings, {"as": "borrower"}), []),
                (items(self.consultants.list_engagements, {"as": "borrower"}), []),
                (items(self.consultants.list_engagements, {"as": "lender"}), []),
                (
                    items(self.billing.list_invoices, {"direction": "received"})
                    if finances
                    else lambda: [],
                    [],
                ),
                # a profile that cannot produce a valid invoice holds the commune's invoices
                (partial(self.billing.get_profile, caller) if finances else lambda: None, None),
                # nettings to accept, transfers owed, open disputes: both sides see them
                (
                    (lambda: self.billing.money_to_watch(caller)) if finances else lambda: None,
                    None,
                ),
            ]
        )
        to_decide = urgent_first([b for b in lent if b["status"] == "requested"])
        sided = [b | {"side": "lender"} for b in lent] + [
            b | {"side": "borrower"} for b in borrowed
        ]
        upcoming = sorted(
            (
                b
                for b in sided
                if b["status"] in OPEN_BOOKINGS and datetime.fromisoformat(b["end"]) > now
            ),
            key=lambda b: b["start"],
        )[:8]
        # loans not returned by their end, on both communes' dashboards (the service says)
        overdue = sorted((b for b in sided if b.get("overdue")), key=lambda b: b["end"])

        timesheets = [
            (e, t) for e in engaged for t in e.get("timesheets", []) if t["status"] == "recorded"
        ]
        missions_to_decide = [e for e in lending_experts if e["status"] == "requested"]

        invoices_due = sorted(
            (i for i in received if i["status"] in OPEN_STATUSES),
            key=lambda i: i["due_date"],
        )

        activity = self._recent_activity(caller, lent + borrowed, engaged + lending_experts)
        # who asked and who recorded, by name: the gateway knows every commune's users
        people = self._names(
            [b.get("requested_by") for b in lent + borrowed]
            + [e.get("requested_by") for e in lending_experts]
            + [t.get("recorded_by") for _, t in timesheets]
        )
        return Page(
            "dashboard.html",
            {
                "to_decide": to_decide if visitor.has(Role.MANAGER) else [],
                "needs": NEED_LABELS,
                "requested_by_us": [b for b in borrowed if b["status"] == "requested"],
                "timesheets": timesheets,
                "missions_to_decide": missions_to_decide if visitor.has(Role.MANAGER) else [],
                "invoices_due": invoices_due,
                "profile_problems": french.profile_problems((profile or {}).get("problems", [])),
                "money": money,
                "today": paris_today(now).isoformat(),
                "upcoming": upcoming,
                "overdue": overdue,
                "activity": activity,
                "people": people,
                "unavailable": not (ok_lent and ok_borrowed and ok_engaged and ok_invoices),
            },
        )

    def _names(self, user_ids: list[str | None]) -> dict[str, str]:
        """The names of these users (those the gateway no longer knows are left out)."""
        wanted = sorted({u for u in user_ids if u})
        if not wanted:
            return {}
        with self.db.reading() as session:
            found = session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
            return {user_id: name for user_id, name in found}

    def _recent_activity(self, caller: dict, bookings: list[dict], engagements: list[dict]):
        """The latest transitions of the most recent bookings and engagements."""
        recent = sorted(bookings, key=lambda b: b["created_at"], reverse=True)[:6]
        histories = attempt_together(
            [(partial(self.bookings.get, caller, b["id"]), None) for b in recent]
        )
        entries = []
        for booking, (full, _) in zip(recent, histories, strict=True):
            for step in (full or {}).get("history", []):
                entries.append(
                    {
                        "at": step["at"],
                        "what": "booking",
                        "status": step["status"],
                        "title": booking["listing_title"],
                        "href": f"/reservations/{booking['id']}",
                        "by_commune": step["by_commune"],
                    }
                )
        for engagement in engagements:
            for step in engagement.get("history", []):
                entries.append(
                    {
                        "at": step["at"],
                        "what": "engagement",
                        "status": step["status"],
                        "title": engagement["consultant_name"],
                        "href": f"/missions/{engagement['id']}",
                        "by_commune": step["by_commune"],
                    }
                )
        entries.sort(key=lambda e: e["at"], reverse=True)
        return entries[:10]
