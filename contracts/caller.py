"""The authenticated caller, passed by the gateway with every RPC."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    FINANCE = "finance"
    OPERATOR = "operator"


class Caller(BaseModel):
    """Who asks: taken by the gateway from a verified token, never from a request body."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    commune: str
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def ensure_manages(self, commune: str, things: str, this: str) -> None:
        """Only a manager of the commune that owns a thing (a listing, a consultant's profile)
        publishes or changes it: `things` names their kind, `this` the one at hand."""
        from contracts.errors import Forbidden

        if not self.has(Role.MANAGER):
            raise Forbidden(f"Only a manager may publish or change {things}")
        if self.commune != commune:
            raise Forbidden(f"{this} belongs to another commune")
