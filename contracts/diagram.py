"""The Mermaid diagram of the processes and the events between them, drawn from the contracts.

docs/architecture.md carries it between two marker comments; `make diagram` (which runs
`python -m contracts.diagram`) rewrites it there, and a unit test fails when it is stale, so
the picture cannot drift from `contracts/topology.py`.

Each service declares its events in `contracts/<service>.py` and publishes them, through its
outbox and relay, to its `<service>.events` exchange; the subscriptions say who consumes what.
"""

import pkgutil
import sys
from collections import defaultdict
from importlib import import_module
from pathlib import Path

import contracts
from contracts.events import event_classes
from contracts.topology import SUBSCRIPTIONS, Subscription, event_exchange

BEGIN = "<!-- diagram: generated from contracts/topology.py by `make diagram`; do not edit -->"
END = "<!-- /diagram -->"
DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def published_events() -> dict[str, list[str]]:
    """Each producing service's event types, from the registry of every contract module."""
    for module in pkgutil.iter_modules(contracts.__path__):
        import_module(f"{contracts.__name__}.{module.name}")  # registers its events
    by_service: dict[str, list[str]] = defaultdict(list)
    for cls in event_classes():
        # a contract module is named after its producer, unless it says otherwise
        module = sys.modules[cls.__module__]
        service = getattr(module, "PRODUCER", cls.__module__.rpartition(".")[2])
        if cls.TYPE not in by_service[service]:
            by_service[service].append(cls.TYPE)
    return dict(by_service)


def _subscribed(subscription: Subscription, published: list[str]) -> str:
    """An edge's label: the consumer's name for it, and the events it takes."""
    if set(subscription.event_types) == set(published):
        return f"{subscription.name}: every event"
    return f"{subscription.name}: {', '.join(subscription.event_types)}"


def mermaid(
    published: dict[str, list[str]], subscriptions: tuple[Subscription, ...] = SUBSCRIPTIONS
) -> str:
    """The flowchart: gateway → services by RPC; service → relay → exchange → consumers."""
    services = sorted(
        set(published) | {s.source for s in subscriptions} | {s.consumer for s in subscriptions}
    )
    lines = [
        "flowchart LR",
        '    clients(["browsers and API clients"]) -- "HTTP :8000" --> gateway',
    ]
    # the gateway publishes events too (users), and calls every other one
    lines += [f"    gateway -- RPC --> {service}" for service in services if service != "gateway"]
    for service in services:
        events = published.get(service, [])
        lines.append(f'    {service} -- outbox --> {service}_relay["{service} relay"]')
        carried = "<br/>".join([f"<b>{event_exchange(service)}</b>", *events])
        lines.append(f'    {service}_relay -- publish --> {service}_events{{{{"{carried}"}}}}')
    for subscription in subscriptions:
        label = _subscribed(subscription, published.get(subscription.source, []))
        lines.append(f'    {subscription.source}_events -- "{label}" --> {subscription.consumer}')
    return "\n".join(lines) + "\n"


def with_diagram(document: str, diagram: str) -> str:
    """The document with the fenced diagram between its markers (which must be there)."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the document lacks the markers {BEGIN!r} … {END!r}")
    return f"{head}{BEGIN}\n```mermaid\n{diagram}```\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT
    path.write_text(with_diagram(path.read_text(), mermaid(published_events())))
    print(f"wrote the diagram into {path}")
