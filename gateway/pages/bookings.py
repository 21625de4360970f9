"""Mes réservations: as borrower and as lender, each booking's history, and the actions its
state allows (approve, reject with a reason, new dates, cancel, check out, return with
damages)."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.bookings import MOVES, BookingStatus
from contracts.caller import Role
from contracts.clock import PARIS
from contracts.errors import ServiceError
from gateway.errors import status_of
from gateway.pages import french
from gateway.pages.entrypoint import Page, PageProblem, Web, go, page
from gateway.pages.forms import FormError, booking_period, cents_from_euros
from gateway.pages.photos import STAGES, condition_photo_stages
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

SIDES = {"emprunteur": "borrower", "preteur": "lender"}
# action in the URL -> (the state machine's move, notice); who may take it when is the
# machine's (contracts.bookings.MOVES), which the service decides with
ACTIONS = {
    "approuver": ("approve", "approuvee"),
    "refuser": ("reject", "refusee"),
    "remettre": ("check_out", "remise"),
    "retour": ("return", "rendue"),
    "annuler": ("cancel", "annulee"),
    # new dates: the lender's manager moves an approved loan, the borrower edits its request
    "deplacer": ("reschedule", "deplacee"),
    "modifier-dates": ("change_dates", "dates-modifiees"),
}
NEW_DATES = ("deplacer", "modifier-dates")
# new dates the lender proposed (they cost the borrower more): the borrower's manager accepts
# or declines them, the lender's manager withdraws them -> (the service's RPC, notice)
ANSWERS = {
    "accepter-dates": ("accept_dates", "dates-acceptees"),
    "refuser-dates": ("decline_dates", "dates-refusees"),
    "retirer-dates": ("withdraw_dates", "dates-retirees"),
}
DATE_FIELDS = ("du", "au", "jour", "heure_debut", "heure_fin")  # as the booking form's
MAX_DAMAGE_LINES = 20


def allowed_actions(booking: dict, commune: str, roles: frozenset[Role]) -> list[str]:
    """What this person may do to this booking now, in the order the page shows them."""
    status = BookingStatus(booking["status"])
    borrower, lender = booking["borrower_commune"], booking["lender_commune"]
    return [
        name
        for name, (action, _) in ACTIONS.items()
        if status in MOVES[action].sources
        and MOVES[action].open_to(commune, roles, borrower, lender)
    ]


def proposal_actions(booking: dict, commune: str, roles: frozenset[Role]) -> list[str]:
    """What this person may do with the new dates proposed for this loan, if any: the
    borrower's manager accepts or declines them, the lender's manager withdraws them."""
    if booking.get("proposal") is None or Role.MANAGER not in roles:
        return []
    if commune == booking["borrower_commune"]:
        return ["accepter-dates", "refuser-dates"]
    if commune == booking["lender_commune"]:
        return ["retirer-dates"]
    return []


def damages_from(form) -> list[dict]:
    """The damage lines of the return form that were filled in."""
    damages = []
    descriptions = form.getlist("dommage_description")
    amounts = form.getlist("dommage_montant")
    reserves = form.getlist("dommage_reserve")
    reserves += [""] * (len(descriptions) - len(reserves))
    lines = zip(descriptions, amounts, reserves, strict=False)
    for i, (text, amount, reserve) in enumerate(lines):
        if i >= MAX_DAMAGE_LINES:
            break
        text = text.strip()
        if not text and not amount.strip():
            continue
        cents = cents_from_euros(amount, "damages")
        if not text:
            raise FormError("damages", "Décrivez chaque dommage chiffré.")
        damage = {"description": text, "amount_cents": cents}
        if reserve.strip():  # the borrower's manager contests it, there at the return
            damage["contest"] = reserve.strip()
        damages.append(damage)
    return damages


def dates_form(booking: dict) -> dict[str, str]:
    """The new-dates form filled with the booking's dates, as the booking form asks them
    (Paris days, the last one included; or a day and two hours)."""
    start = datetime.fromisoformat(booking["start"]).astimezone(PARIS)
    end = datetime.fromisoformat(booking["end"]).astimezone(PARIS)
    if booking["quote"]["pricing_unit"] == "hour":
        return {
            "jour": start.date().isoformat(),
            "heure_debut": f"{start:%H:%M}",
            "heure_fin": f"{end:%H:%M}",
        }
    last = end.date() - timedelta(days=1)
    return {"du": start.date().isoformat(), "au": last.isoformat()}


class BookingPages:
    bookings = ServiceRpc("bookings")

    @page("GET", "/reservations")
    def bookings_page(self, request, web: Web):
        side = web.arg("vue", "emprunteur")
        if side not in SIDES:
            side = "emprunteur"
        status = web.arg("statut")
        query = {"as": SIDES[side], "limit": 100}
        if status in french.BOOKING_STATUS:
            query["status"] = status
        items = self.bookings.list_bookings(as_rpc(web.caller), query)["items"]
        items.sort(key=lambda b: b["start"], reverse=True)
        return Page(
            "bookings.html",
            {
                "side": side,
                "status": status,
                "items": items,
                "statuses": french.BOOKING_STATUS,
            },
        )

    @page("GET", "/reservations/<booking_id>")
    def booking_page(self, request, web: Web, booking_id: str):
        return self._booking(web, booking_id, [], 200)

    @page("POST", "/reservations/<booking_id>/<action>", roles=(Role.AGENT, Role.MANAGER))
    def booking_action(self, request, web: Web, booking_id: str, action: str):
        if action not in ACTIONS and action not in ANSWERS:
            raise PageProblem(404, "Cette action n'existe pas.")
        notice = (ACTIONS.get(action) or ANSWERS[action])[1]
        caller = as_rpc(web.caller)
        reason = (web.form.get("motif") or "").strip()
        condition = (web.form.get("etat") or "").strip()
        try:
            if action == "accepter-dates":
                self.bookings.accept_dates(caller, booking_id)
            elif action == "refuser-dates":
                self.bookings.decline_dates(caller, booking_id, {"reason": reason})
            elif action == "retirer-dates":
                self.bookings.withdraw_dates(caller, booking_id)
            elif action == "approuver":
                self.bookings.approve(caller, booking_id)
            elif action == "refuser":
                if len(reason) < 3:
                    raise FormError("reason", "Indiquez le motif du refus (3 caractères au moins).")
                self.bookings.reject(caller, booking_id, {"reason": reason})
            elif action == "annuler":
                self.bookings.cancel(caller, booking_id, {"reason": reason})
            elif action in NEW_DATES:
                booking = self.bookings.get(caller, booking_id)
                form = {k: web.form.get(k, "") for k in DATE_FIELDS}
                start, end = booking_period(booking["quote"]["pricing_unit"], form)
                body = {"start": start.isoformat(), "end": end.isoformat(), "reason": reason}
                if self.bookings.reschedule(caller, booking_id, body).get("proposal"):
                    notice = "dates-proposees"  # dearer: the borrower is asked first
            elif action == "remettre":
                if len(condition) < 2:
                    raise FormError("condition", "Décrivez l'état du matériel remis.")
                self.bookings.check_out(caller, booking_id, {"condition": condition})
            else:
                if len(condition) < 2:
                    raise FormError("condition", "Décrivez l'état du matériel rendu.")
                body = {"condition": condition, "damages": damages_from(web.form)}
                self.bookings.return_(caller, booking_id, body)
        except FormError as exc:
            return self._booking(web, booking_id, [exc.message], 422)
        except ServiceError as exc:
            if exc.code in ("conflict", "invalid_input"):
                lines = french.explain_refusal(exc)
                return self._booking(web, booking_id, lines, status_of(exc))
            raise
        return go(f"/reservations/{booking_id}", notice)

    def _booking(self, web: Web, booking_id: str, problems: list[str], status: int) -> Page:
        booking = self.bookings.get(as_rpc(web.caller), booking_id)
        visitor = web.visitor
        return Page(
            "booking.html",
            {
                "booking": booking,
                "side": "lender" if booking["lender_commune"] == visitor.commune else "borrower",
                "actions": allowed_actions(booking, visitor.commune, visitor.roles),
                "answers": proposal_actions(booking, visitor.commune, visitor.roles),
                "photo_stages": condition_photo_stages(booking, visitor.commune, visitor.roles),
                "problems": problems,
                "damage_lines": range(3),
                "stages": STAGES,
                "dates": dates_form(booking),
                "conversation": self.conversation_seen(web, booking_id),
            },
            status,
        )
