"""Commitments: the days engagements hold, laid on a calendar and monthly maxima as a
max-flow network, to tell whether they fit and how many days are still free."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from services.consultants.domain.working_days import (
    Calendar,
    Period,
    month_start,
    months,
    next_month,
)


@dataclass(frozen=True)
class Commitment:
    """Days an engagement holds somewhere in its period, in half days."""

    engagement_id: str
    start: date
    end: date
    half_days: int


class _FlowNetwork:
    """Max flow by shortest augmenting paths (Edmonds-Karp); small graphs only."""

    def __init__(self) -> None:
        self.capacity: list[dict[int, int]] = []

    def node(self) -> int:
        self.capacity.append({})
        return len(self.capacity) - 1

    def edge(self, a: int, b: int, capacity: int) -> None:
        self.capacity[a][b] = self.capacity[a].get(b, 0) + capacity
        self.capacity[b].setdefault(a, 0)

    def augment(self, source: int, sink: int) -> int:
        """Pushes as much more flow as the residual network allows; returns how much."""
        pushed = 0
        while True:
            parent = {source: source}
            queue = deque([source])
            while queue and sink not in parent:
                a = queue.popleft()
                for b, residual in self.capacity[a].items():
                    if residual > 0 and b not in parent:
                        parent[b] = a
                        queue.append(b)
            if sink not in parent:
                return pushed
            b = parent[sink]
            bottleneck = self.capacity[b][sink]
            while b != source:
                bottleneck = min(bottleneck, self.capacity[parent[b]][b])
                b = parent[b]
            b = sink
            while b != source:
                a = parent[b]
                self.capacity[a][b] -= bottleneck
                self.capacity[b][a] += bottleneck
                b = a
            pushed += bottleneck


def entangled(commitments: Iterable[Commitment], span: Period) -> list[Commitment]:
    """The commitments that can weigh on days of `span`: those sharing a month with it, or
    (through a chain of shared months) with one that does. Days and monthly maxima are
    only shared within a month, so the others cannot change what fits in `span`."""
    pending = sorted(commitments, key=lambda c: (c.start, c.engagement_id))
    low, high = month_start(span.start), span.end
    kept: list[Commitment] = []
    grew = True
    while grew:
        grew = False
        for c in pending:
            if c in kept or c.half_days <= 0:
                continue
            if month_start(c.start) < high and c.end > low:
                kept.append(c)
                low, high = min(low, month_start(c.start)), max(high, next_month_end(c.end))
                grew = True
    return sorted(kept, key=lambda c: (c.start, c.engagement_id))


def next_month_end(end: date) -> date:
    """The first day after the month holding the last day of a half-open period ending at
    `end`: its month span's end."""
    return next_month(end - timedelta(days=1))


def free_half_days(
    calendar: Calendar,
    max_days_per_month: int,
    commitments: Sequence[Commitment],
    window: Period | None = None,
) -> tuple[bool, int]:
    """Whether the commitments fit the calendar and the monthly maximum together, and how
    many more half days fit inside `window` on top of them.

    Each commitment's half days must be laid on open working days of its period, at most
    two half days a day and 2 × max_days_per_month a month: a flow from commitments through
    runs of days (cut where a period or a month starts or ends) to months. The commitments
    fit when the max flow carries all their half days; the window's share is what a last
    commitment over the window can add once they are placed (augmenting paths never take
    flow back from the source, so placed half days stay placed)."""
    spans = [Period(c.start, c.end) for c in commitments if c.half_days > 0]
    if window is not None:
        spans.append(window)
    if not spans:
        return True, 0
    first, last = min(p.start for p in spans), max(p.end for p in spans)
    cuts = {first, last} | {p.start for p in spans} | {p.end for p in spans}
    cuts |= {m.end for m in months(first, last)}
    edges = sorted(cuts)
    net = _FlowNetwork()
    source, sink = net.node(), net.node()
    month_nodes: dict[date, int] = {}
    runs: list[tuple[Period, int]] = []
    for a, b in pairwise(edges):
        capacity = 2 * calendar.open_days(a, b)
        if capacity == 0:
            continue
        m = month_start(a)
        if m not in month_nodes:
            month_nodes[m] = net.node()
            net.edge(month_nodes[m], sink, 2 * max_days_per_month)
        run = net.node()
        net.edge(run, month_nodes[m], capacity)
        runs.append((Period(a, b), run))

    def demand(span: Period, half_day_count: int) -> int:
        node = net.node()
        net.edge(source, node, half_day_count)
        for run_period, run in runs:
            if run_period.start >= span.start and run_period.end <= span.end:
                net.edge(node, run, 2 * (run_period.end - run_period.start).days)
        return node

    needed = 0
    for c in commitments:
        if c.half_days > 0:
            demand(Period(c.start, c.end), c.half_days)
            needed += c.half_days
    fits = net.augment(source, sink) == needed
    if window is None:
        return fits, 0
    demand(window, 2 * (window.end - window.start).days)
    return fits, net.augment(source, sink)


def commitments_fit(
    calendar: Calendar, max_days_per_month: int, commitments: Sequence[Commitment]
) -> bool:
    return free_half_days(calendar, max_days_per_month, commitments)[0]
