"""Notifications: how each user wants to be told, per kind of notice; the mails the mail
server refused for good, for the operator."""

from contracts.caller import Caller, Role
from contracts.notifications import PreferenceList, PreferencesChange, RefusedMailList
from gateway.http import api
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

NOTIFICATIONS = "Notifications"


class NotificationRoutes:
    notifications = ServiceRpc("notifications")

    @api(
        "GET",
        "/api/v1/notifications/preferences",
        response=PreferenceList,
        tag=NOTIFICATIONS,
        summary="Every kind of notice and how the caller wants it (immediately by default)",
    )
    def get_notification_preferences(self, request, caller: Caller):
        return self.notifications.preferences(as_rpc(caller))

    @api(
        "PUT",
        "/api/v1/notifications/preferences",
        body=PreferencesChange,
        response=PreferenceList,
        tag=NOTIFICATIONS,
        summary="Choose, per kind of notice: immediately, a daily digest at an hour, or never",
        description="The kinds given change, the others stay. The digest hour is Paris time. "
        "422 for an unknown kind, or `never` for a security notice (an emergency declared), "
        "and nothing changes.",
    )
    def put_notification_preferences(self, request, caller: Caller, body: PreferencesChange):
        return self.notifications.set_preferences(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/notifications/refused",
        response=RefusedMailList,
        roles=(Role.OPERATOR,),
        tag=NOTIFICATIONS,
        summary="Mails the mail server refused for good (an address that does not exist)",
        description="The latest 200. Correct the user's e-mail (`mutualis users update`): "
        "the next mails go to the new address.",
    )
    def refused_mails(self, request, caller: Caller):
        return {"items": self.notifications.refused(as_rpc(caller))}
