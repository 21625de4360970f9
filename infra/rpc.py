"""The RPC entrypoint of our services: refusals (ServiceError) are expected, not logged as bugs."""

from nameko.rpc import Rpc

from contracts.errors import ServiceError


def rpc(fn):
    return Rpc.decorator(expected_exceptions=(ServiceError,))(fn)
