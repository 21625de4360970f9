"""The page where a person chooses how each kind of notice reaches them (and, for an
operator, the mails the mail server refused for good); the conversation on a booking's or
an engagement's page."""

from __future__ import annotations

import logging

from nameko.exceptions import RemoteError

from contracts.caller import Role
from contracts.errors import ServiceError
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

log = logging.getLogger(__name__)

MESSAGE_RULE = "Le message doit compter de 1 à 5 000 caractères, sans caractère de contrôle."
MODES = {
    "immediately": "Tout de suite",
    "daily": "Dans le résumé du jour",
    "never": "Jamais",
}


def change_of(form, kinds: list[str]) -> dict:
    """The choices the form sends, as the API takes them: `mode-<kind>`, `heure-<kind>`."""
    preferences = []
    for kind in kinds:
        hour = form.get(f"heure-{kind}") or "7"
        preferences.append(
            {
                "kind": kind,
                "mode": form.get(f"mode-{kind}") or "immediately",
                "digest_hour": int(hour) if hour.isdigit() else -1,  # refused: 422
            }
        )
    return {"preferences": preferences}


class NotificationPages:
    notifications = ServiceRpc("notifications")

    @page("GET", "/compte/notifications")
    def notifications_page(self, request, web: Web):
        caller = as_rpc(web.caller)
        refused = None
        if web.caller.has(Role.OPERATOR):
            refused = self.notifications.refused(caller)
        return Page(
            "notifications.html",
            {
                "preferences": self.notifications.preferences(caller)["items"],
                "modes": MODES,
                "refused": refused,
                "saved": web.arg("enregistre") == "1",
            },
        )

    @page("POST", "/compte/notifications")
    def notifications_submit(self, request, web: Web):
        caller = as_rpc(web.caller)
        kinds = [p["kind"] for p in self.notifications.preferences(caller)["items"]]
        self.notifications.set_preferences(caller, change_of(web.form, kinds))
        return go("/compte/notifications?enregistre=1")

    def conversation_seen(self, web: Web, subject_id: str) -> dict | None:
        """The conversation of a booking or engagement shown on its page, read by the
        visitor's commune up to now; None while the notifications service does not answer,
        fails, or does not know it yet: the rest of the page still shows."""
        try:
            return self.notifications.mark_read(as_rpc(web.caller), subject_id)
        except ServiceError:
            return None
        except RemoteError as exc:
            log.warning("no conversation on the page of %s: %s", subject_id, exc)
            return None

    @page("POST", "/reservations/<booking_id>/messages", roles=(Role.AGENT, Role.MANAGER))
    def booking_message(self, request, web: Web, booking_id: str):
        return self._post_message(web, booking_id, "/reservations", self._booking)

    @page("POST", "/missions/<engagement_id>/messages", roles=(Role.AGENT, Role.MANAGER))
    def engagement_message(self, request, web: Web, engagement_id: str):
        return self._post_message(web, engagement_id, "/missions", self._engagement)

    def _post_message(self, web: Web, subject_id: str, pages: str, shown):
        """A message from the form on a booking's or engagement's page; refused (too long,
        control characters), the same page again, saying why, with nothing posted."""
        text = web.form.get("message") or ""
        try:
            self.notifications.post_message(as_rpc(web.caller), subject_id, {"text": text})
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return shown(web, subject_id, [MESSAGE_RULE], 422)
        return go(f"{pages}/{subject_id}#conversation")
