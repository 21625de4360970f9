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
