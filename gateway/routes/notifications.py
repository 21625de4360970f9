"""Notifications: how each user wants to be told, per kind of notice; the mails the mail
server refused for good, for the operator; the conversation of each booking and engagement."""

from contracts.caller import Caller, Role
from contracts.notifications import (
    ConversationView,
    MessageDraft,
    PreferenceList,
    PreferencesChange,
    RefusedMailList,
)
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

    # -- conversations ----------------------------------------------------------------

    @api(
        "GET",
        "/api/v1/conversations/<subject_id>",
        response=ConversationView,
        tag=NOTIFICATIONS,
        summary="The conversation of a booking or an engagement, with each commune's read receipt",
        description="Only the booking's or engagement's two communes see it: 404 for anyone "
        "else, as for an unknown id.",
    )
    def get_conversation(self, request, caller: Caller, subject_id: str):
        return self.notifications.conversation(as_rpc(caller), subject_id)

    @api(
        "POST",
        "/api/v1/conversations/<subject_id>/messages",
        body=MessageDraft,
        response=ConversationView,
        status=201,
        idempotent=True,
        tag=NOTIFICATIONS,
        summary="Write to the other commune of a booking or an engagement",
        description="At most 5,000 characters, no control characters (422). Messages are "
        "never edited, only added; the other commune's agents and managers are told by "
        "e-mail (per their preferences). 404 for anyone but the two communes.",
    )
    def post_message(self, request, caller: Caller, subject_id: str, body: MessageDraft):
        return self.notifications.post_message(
            as_rpc(caller), subject_id, body.model_dump(mode="json")
        )

    @api(
        "POST",
        "/api/v1/conversations/<subject_id>/read",
        response=ConversationView,
        tag=NOTIFICATIONS,
        summary="Mark the conversation read by the caller's commune, up to now",
    )
    def mark_conversation_read(self, request, caller: Caller, subject_id: str):
        return self.notifications.mark_read(as_rpc(caller), subject_id)
