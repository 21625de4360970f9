"""The authenticated caller, passed by the gateway with every RPC."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    """What a user may do for their commune.

    `coordinator` acts for a département or an EPCI (an intercommunality), reached through
    the user's commune: a coordinator declares and ends emergency episodes whose territory
    lies in the département of their commune or is their commune's EPCI (an operator may
    declare anywhere), and sees the urgent requests of those episodes, their state and the
    needs left unmet. A coordinator neither books, lends, approves nor pays for communes:
    that stays with their agents and managers.
    """

    AGENT = "agent"
    MANAGER = "manager"
    FINANCE = "finance"
    OPERATOR = "operator"
    COORDINATOR = "coordinator"


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
