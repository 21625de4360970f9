"""Users as the gateway announces them: who they are, their commune, roles and e-mail.

Services that must reach people (the notifications service) keep their own copy from these
events and never read the gateway's database."""

from contracts.caller import Role
from contracts.events import Event, Payload, register

PRODUCER = "gateway"  # the component that emits these events (the diagram reads it)


class UserSnapshot(Payload):
    user_id: str
    email: str
    name: str
    commune: str
    roles: list[Role]
    disabled: bool = False


@register
class UserCreated(Event):
    TYPE = "user.created"
    payload: UserSnapshot


@register
class UserUpdated(Event):
    TYPE = "user.updated"
    payload: UserSnapshot


@register
class UserDisabled(Event):
    TYPE = "user.disabled"
    payload: UserSnapshot


USER_EVENTS = (UserCreated.TYPE, UserUpdated.TYPE, UserDisabled.TYPE)
