"""The page where a person chooses how each kind of notice reaches them (and, for an
operator, the mails the mail server refused for good)."""

from __future__ import annotations

from contracts.caller import Role
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

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
