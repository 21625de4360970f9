"""docs/architecture.md's diagram is the one contracts/topology.py draws today."""

import pytest

from contracts.diagram import BEGIN, DOCUMENT, END, mermaid, published_events, with_diagram
from contracts.topology import SUBSCRIPTIONS


def test_the_committed_diagram_is_the_topology_of_today():
    committed = DOCUMENT.read_text()
    assert with_diagram(committed, mermaid(published_events())) == committed, (
        "docs/architecture.md's diagram is stale: refresh it with `make diagram` "
        "(python -m contracts.diagram) and commit the result"
    )


def test_every_subscription_is_an_arrow_from_its_source_exchange_to_its_consumer():
    arrows = mermaid(published_events()).splitlines()
    for subscription in SUBSCRIPTIONS:
        assert any(
            line.strip().startswith(f'{subscription.source}_events -- "{subscription.name}: ')
            and line.endswith(f"--> {subscription.consumer}")
            for line in arrows
        ), subscription


def test_every_service_has_its_relay_and_every_published_event_its_exchange():
    published = published_events()
    diagram = mermaid(published)
    for service, events in published.items():
        assert f'{service}_relay["{service} relay"]' in diagram
        if service != "gateway":  # which publishes events too (users)
            assert f"gateway -- RPC --> {service}" in diagram
        for event in events:
            assert f"<br/>{event}" in diagram


def test_rewriting_keeps_what_lies_outside_the_markers():
    document = f"# Title\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n"
    rewritten = with_diagram(document, "flowchart LR\n    a --> b\n")
    assert rewritten == (
        f"# Title\n\nbefore\n{BEGIN}\n```mermaid\nflowchart LR\n    a --> b\n```\n{END}\nafter\n"
    )
    assert with_diagram(rewritten, "flowchart LR\n    a --> b\n") == rewritten


def test_a_document_without_markers_is_refused():
    with pytest.raises(ValueError, match="markers"):
        with_diagram("# no markers\n", "flowchart LR\n")
