"""The gateway's service is one class made of every routes and pages class: a method two
of them define under one name is silently the first one's for both (the netting preview
page once called the bookings routes' `_asked` and failed)."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from gateway.service import Service


def test_no_two_parts_of_the_gateway_define_the_same_method():
    defined: dict[str, list[str]] = {}
    for part in Service.__mro__[1:]:
        for name, value in vars(part).items():
            if name.startswith("__") or isinstance(value, DependencyProvider):
                continue  # the services they call are the same dependency for all
            defined.setdefault(name, []).append(part.__name__)
    assert {name: parts for name, parts in defined.items() if len(parts) > 1} == {}
