"""The gateway's routes, one mixin class per area of API.md; gateway.service composes them."""

from contracts.caller import Caller


def as_rpc(caller: Caller) -> dict:
    """The verified caller, as every service RPC takes it first."""
    return caller.model_dump(mode="json")


def query_dict(query) -> dict:
    """A validated query as the service validates it again: by its public names (`as`)."""
    return query.model_dump(mode="json", by_alias=True, exclude_none=True)
