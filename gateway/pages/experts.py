"""Experts: describe a need in words, see ranked experts with each score explained as bars,
request an engagement; missions with their timesheets (record, approve or reject, correct)
and decisions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from contracts.caller import Role
from contracts.clock import paris_today
from contracts.consultants import ENGAGEMENT_STEPS, TIMESHEET_STEPS, EngagementAction
from contracts.errors import ServiceError
from gateway.errors import status_of
from gateway.pages import french
from gateway.pages.drawing import score_bars
from gateway.pages.entrypoint import Page, PageProblem, Web, go, page
from gateway.pages.forms import FormError, cents_from_euros, day
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

PARTIES = (Role.AGENT, Role.MANAGER)
SIDES = {"demandees": "borrower", "pretees": "lender"}
# the timesheet actions of the pages: path segment -> (action, notice once done)
SHEET_ACTIONS = {
    "approuver": (EngagementAction.APPROVE_TIMESHEET, "temps-approuve"),
    "refuser": (EngagementAction.REJECT_TIMESHEET, "temps-refuse"),
    "corriger": (EngagementAction.CORRECT_TIMESHEET, "temps-corrige"),
}


def days_amount(text: str | None, field: str = "days") -> Decimal:
    """'2', '2,5' -> Decimal; whole or half days."""
    try:
        value = Decimal((text or "").strip().replace(",", "."))
    except InvalidOperation:
        raise FormError(field, "Indiquez un nombre de jours, par exemple 2 ou 2,5.") from None
    if value <= 0 or value % Decimal("0.5") != 0:
        raise FormError(field, "Les jours se comptent en jours entiers ou en demi-journées.")
    return value


def days_worked(form) -> dict:
    """Days, note and, for a weekend or a public holiday, the exceptional work's reason."""
    exceptional = bool(form.get("exceptionnel"))
    reason = (form.get("motif_exceptionnel") or "").strip()[:300]
    if exceptional and len(reason) < 3:
        raise FormError("motif_exceptionnel", "Indiquez pourquoi ce travail était exceptionnel.")
    return {
        "days": str(days_amount(form.get("jours"))),
        "note": (form.get("note") or "").strip()[:1000],
        "exceptional_work": exceptional,
        "exceptional_reason": reason if exceptional else None,
    }


# below this share of what was asked (skills and words, as weighed in the score), a
# candidate is not shown: a lawyer is no answer to a ransomware attack, however near
RELEVANCE_FLOOR = 0.3


def relevance(explanation: dict) -> float | None:
    """How well a candidate answers the need itself, in [0, 1]: the skills and text
    components, weighed as in the score; None when the need asked neither."""
    components, weights = explanation["components"], explanation["weights"]
    asked = [k for k in ("skills", "text") if k in weights]
    if not asked:
        return None
    total = sum(weights[k] for k in asked)
    return sum(weights[k] * components.get(k, 0.0) for k in asked) / total


def reasons(explanation: dict) -> dict[str, str]:
    """Each score component in words, next to its bar."""
    words = {}
    skills = explanation["skills"]
    if skills.get("asked"):
        # as the bar counts them: a related skill covers half of the one asked
        direct = sum(1 for m in skills["matched"] if m["via"] == "direct")
        related = len(skills["matched"]) - direct
        words["skills"] = f"{french.counted(direct, 'compétence')} sur {len(skills['asked'])}"
        if related:
            words["skills"] += (
                f", {french.counted(related, 'voisine')} "
                f"({french.plural(related, 'comptée')} à moitié)"
            )
        if skills["missing"]:
            words["skills"] += f" ; manque : {', '.join(skills['missing'])}"
    text = explanation["text"]
    shown = text.get("matched_words") or text.get("matched_terms")
    if shown:
        words["text"] = "mots trouvés : " + ", ".join(shown)
    if explanation.get("distance_km") is not None:
        words["distance"] = f"à {french.km(explanation['distance_km'])} km"
    availability = explanation["availability"]
    if availability.get("asked"):
        words["availability"] = (
            french.counted(availability["available_days"], "jour libre", "jours libres")
            + f" pour {french.number(availability['days_needed'])} "
            + french.plural(availability["days_needed"], "demandé")
            + ("" if availability["fits"] else " : pas assez")
        )
    rate = explanation["rate"]
    words["rate"] = f"{french.money(rate['day_rate_cents'])} par jour" + (
        ""
        if rate.get("max_day_rate_cents") is None
        else (" (dans le budget)" if rate["within"] else " (au-dessus du budget)")
    )
    return words


class ExpertPages:
    consultants = ServiceRpc("consultants")

    @page("GET", "/experts")
    def experts_page(self, request, web: Web):
        asked = {k: web.arg(k) for k in ("besoin", "du", "au", "jours", "tarif_max")}
        return self._experts(web, asked, {}, None)

    def _experts(self, web: Web, asked: dict, errors: dict, request_for, status: int = 200):
        query: dict = {"limit": 10}
        matches: list[dict] = []
        left_out = 0
        searched = any(asked.values())
        if searched:
            try:
                if asked["besoin"]:
                    query["need"] = asked["besoin"]
                first, last = day(asked["du"], "du", False), day(asked["au"], "au", False)
                if (first is None) != (last is None):
                    raise FormError("du", "Indiquez les deux dates, ou aucune.")
                if first is not None:
                    query["from"], query["to"] = first.isoformat(), last.isoformat()
                if asked["jours"]:
                    if first is None:
                        raise FormError("jours", "Indiquez aussi la période.")
                    query["days"] = str(days_amount(asked["jours"], "jours"))
                ceiling = cents_from_euros(asked["tarif_max"], "tarif_max", required=False)
                if ceiling is not None:
                    query["max_day_rate_cents"] = ceiling
                found = self.consultants.match(as_rpc(web.caller), query)
                relevant = [
                    m
                    for m in found["items"]
                    if (relevance(m["explanation"]) or RELEVANCE_FLOOR) >= RELEVANCE_FLOOR
                ]
                left_out = len(found["items"]) - len(relevant)
                matches = [
                    m
                    | {
                        "bars": score_bars(
                            m["explanation"]["components"], m["explanation"]["weights"]
                        ),
                        "reasons": reasons(m["explanation"]),
                    }
                    for m in relevant
                ]
            except FormError as exc:
                errors = errors | {exc.field: [exc.message]}
            except ServiceError as exc:
                if exc.code != "invalid_input":
                    raise
                errors = errors | {"besoin": french.explain_refusal(exc)}
        return Page(
            "experts.html",
            {
                "asked": asked,
                "errors": errors,
                "matches": matches,
                "left_out": left_out,
                "floor": round(RELEVANCE_FLOOR * 100),
                "searched": searched,
                "request_for": request_for,
                "may_request": web.visitor.has(*PARTIES),
            },
            status,
        )

    @page("POST", "/experts/<consultant_id>/demande", roles=PARTIES)
    def engagement_submit(self, request, web: Web, consultant_id: str):
        form = web.form
        asked = {k: form.get(k, "") for k in ("besoin", "du", "au", "jours", "tarif_max")}
        try:
            first, last = day(form.get("du"), "du"), day(form.get("au"), "au")
            if last < first:
                raise FormError("au", "Le dernier jour doit suivre le premier.")
            mission = (form.get("mission") or "").strip()
            if len(mission) < 3:
                raise FormError("mission", "Décrivez la mission en quelques mots.")
            body = {
                "consultant_id": consultant_id,
                "start": first.isoformat(),
                "end": (last + timedelta(days=1)).isoformat(),
                "days": str(days_amount(form.get("jours"), "jours")),
                "mission": mission,
            }
            created = self.consultants.request_engagement(as_rpc(web.caller), body)
        except FormError as exc:
            return self._experts(web, asked, {exc.field: [exc.message]}, consultant_id, 422)
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            lines = french.explain_refusal(exc)
            return self._experts(web, asked, {"demande": lines}, consultant_id, status_of(exc))
        return go(f"/missions/{created['id']}", "mission-demandee")

    # -- missions ---------------------------------------------------------------------

    @page("GET", "/missions")
    def engagements_page(self, request, web: Web):
        side = web.arg("vue", "demandees")
        if side not in SIDES:
            side = "demandees"
        items = self.consultants.list_engagements(
            as_rpc(web.caller), {"as": SIDES[side], "limit": 100}
        )["items"]
        return Page("engagements.html", {"side": side, "items": items})

    @page("GET", "/missions/<engagement_id>")
    def engagement_page(self, request, web: Web, engagement_id: str):
        return self._engagement(web, engagement_id, [], 200)

    @page("POST", "/missions/<engagement_id>/<action>", roles=PARTIES)
    def engagement_action(self, request, web: Web, engagement_id: str, action: str):
        caller, form = as_rpc(web.caller), web.form
        reason = (form.get("motif") or "").strip()
        notices = {
            "accepter": "mission-acceptee",
            "refuser": "mission-refusee",
            "annuler": "mission-annulee",
            "terminer": "mission-terminee",
            "temps": "temps-saisi",
        }
        if action not in notices:
            raise PageProblem(404, "Cette action n'existe pas.")
        try:
            if action == "accepter":
                self.consultants.accept(caller, engagement_id, consent_given(form))
            elif action == "refuser":
                if len(reason) < 3:
                    raise FormError("reason", "Indiquez le motif du refus.")
                self.consultants.reject(caller, engagement_id, {"reason": reason})
            elif action == "annuler":
                self.consultants.cancel(caller, engagement_id, {"reason": reason})
            elif action == "terminer":
                self.consultants.complete(caller, engagement_id)
            else:
                entry = {"date": day(form.get("date"), "date").isoformat()} | days_worked(form)
                self.consultants.record_timesheet(caller, engagement_id, entry)
        except FormError as exc:
            return self._engagement(web, engagement_id, [exc.message], 422)
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            lines = french.explain_refusal(exc)
            return self._engagement(web, engagement_id, lines, status_of(exc))
        return go(f"/missions/{engagement_id}", notices[action])

    @page("POST", "/missions/<engagement_id>/temps/<timesheet_id>/<action>", roles=PARTIES)
    def timesheet_action(
        self, request, web: Web, engagement_id: str, timesheet_id: str, action: str
    ):
        if action not in SHEET_ACTIONS:
            raise PageProblem(404, "Cette action n'existe pas.")
        step, notice = SHEET_ACTIONS[action]
        caller, form = as_rpc(web.caller), web.form
        try:
            if step == EngagementAction.APPROVE_TIMESHEET:
                self.consultants.approve_timesheet(caller, engagement_id, timesheet_id)
            elif step == EngagementAction.REJECT_TIMESHEET:
                reason = (form.get("motif") or "").strip()
                if len(reason) < 3:
                    raise FormError("motif", "Indiquez le motif du refus.")
                self.consultants.reject_timesheet(
                    caller, engagement_id, timesheet_id, {"reason": reason[:1000]}
                )
            else:
                self.consultants.correct_timesheet(
                    caller, engagement_id, timesheet_id, days_worked(form)
                )
        except FormError as exc:
            return self._engagement(web, engagement_id, [exc.message], 422)
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            lines = french.explain_refusal(exc)
            return self._engagement(web, engagement_id, lines, status_of(exc))
        return go(f"/missions/{engagement_id}", notice)

    def _engagement(self, web: Web, engagement_id: str, problems: list[str], status: int):
        engagement = self.consultants.get_engagement(as_rpc(web.caller), engagement_id)
        visitor = web.visitor
        lender = engagement["lender_commune"] == visitor.commune

        def may(action: EngagementAction) -> bool:
            # the actions the engagement's state machine leaves open to this visitor
            return ENGAGEMENT_STEPS[action].allowed(
                engagement["status"],
                visitor.commune,
                visitor.roles,
                engagement["borrower_commune"],
                engagement["lender_commune"],
            )

        def sheet_actions(sheet: dict) -> list[str]:
            # the actions the timesheet's state machine leaves open on this one
            return [
                segment
                for segment, (action, _) in SHEET_ACTIONS.items()
                if may(action) and sheet["status"] in TIMESHEET_STEPS[action].sources
            ]

        return Page(
            "engagement.html",
            {
                "engagement": engagement,
                "sheet_actions": {t["id"]: sheet_actions(t) for t in engagement["timesheets"]},
                "lender": lender,
                "problems": problems,
                "may_decide": may(EngagementAction.ACCEPT),
                "may_cancel": may(EngagementAction.CANCEL),
                "may_record": may(EngagementAction.RECORD_TIMESHEET),
                "may_complete": may(EngagementAction.COMPLETE),
                "today": paris_today().isoformat(),
                "conversation": self.conversation_seen(web, engagement_id),
            },
            status,
        )


def consent_given(form) -> dict:
    """The accept form's consent of the official: ticked, with its date (and how given)."""
    if form.get("accord") != "1":
        raise FormError(
            "consent", "Cochez l'accord de l'agent : sans lui, pas de mise à disposition."
        )
    given_on = day(form.get("accord_date"), "consent.given_on")
    return {
        "consent": {
            "given_on": given_on.isoformat(),
            "note": (form.get("accord_note") or "").strip(),
        }
    }
