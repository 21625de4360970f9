"""Geometry of the small pictures the pages draw as inline SVG: where results lie around the
caller's commune, score bars, the aging chart, who pays whom. Pure: numbers in, numbers out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON_AT_EQUATOR = 111.320
NICE_RINGS_KM = (1, 2, 5, 10, 20, 50, 100, 200)


# -- the map of results -----------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A commune with results: where it is and how many results it has."""

    label: str
    latitude: float
    longitude: float
    count: int = 1
    distance_km: float | None = None


@dataclass(frozen=True)
class Marker:
    label: str
    x: float
    y: float
    count: int
    distance_km: float | None


@dataclass(frozen=True)
class Ring:
    km: int
    r: float


@dataclass(frozen=True)
class MapPicture:
    size: int
    cx: float
    cy: float
    markers: list[Marker]
    rings: list[Ring]
    km_per_px: float


def local_km(origin: tuple[float, float], latitude: float, longitude: float) -> tuple[float, float]:
    """East and north offsets in km from `origin` (equirectangular: exact enough over the
    tens of km between neighbouring communes)."""
    lat0, lon0 = origin
    east = (longitude - lon0) * KM_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat0))
    north = (latitude - lat0) * KM_PER_DEGREE_LAT
    return east, north


def map_picture(
    origin: tuple[float, float],
    places: list[Place],
    size: int = 320,
    margin: int = 30,
    radius_km: float | None = None,
) -> MapPicture:
    """The caller's commune in the centre, each place at its bearing and distance, north up;
    the scale fits the farthest place (the search radius when there is none), with
    round-numbered rings."""
    offsets = [local_km(origin, p.latitude, p.longitude) for p in places]
    farthest = max((math.hypot(e, n) for e, n in offsets), default=0.0)
    extent = max(farthest if farthest > 0 else (radius_km or 0.0), 1.0)
    half = size / 2
    px_per_km = (half - margin) / extent
    markers = [
        Marker(
            label=place.label,
            x=round(half + east * px_per_km, 1),
            y=round(half - north * px_per_km, 1),  # SVG's y grows downwards
            count=place.count,
            distance_km=place.distance_km,
        )
        for place, (east, north) in zip(places, offsets, strict=True)
    ]
    rings = [Ring(km, round(km * px_per_km, 1)) for km in NICE_RINGS_KM if km <= extent][-3:]
    return MapPicture(size, half, half, markers, rings, round(1 / px_per_km, 4))


# -- score bars -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float  # in [0, 1]
    weight: float  # its share of the score, in [0, 1]
    width: float  # px
    percent: int


SCORE_LABELS = {
    "skills": "Compétences",
    "text": "Description",
    "distance": "Distance",
    "availability": "Disponibilité",
    "rate": "Tarif",
}


def score_bars(
    components: dict[str, float], weights: dict[str, float], width: int = 160
) -> list[Bar]:
    """One bar per component that counted in the score, in a fixed order."""
    bars = []
    for key, label in SCORE_LABELS.items():
        if key not in components:
            continue
        value = min(1.0, max(0.0, float(components[key])))
        bars.append(
            Bar(
                key=key,
                label=label,
                value=value,
                weight=float(weights.get(key, 0.0)),
                width=round(value * width, 1),
                percent=round(value * 100),
            )
        )
    return bars


# -- aging chart ------------------------------------------------------------------------

AGING_BUCKETS = (
    ("not_due_cents", "Pas encore échu"),
    ("days_0_30_cents", "0 à 30 jours"),
    ("days_31_60_cents", "31 à 60 jours"),
    ("days_61_90_cents", "61 à 90 jours"),
    ("days_over_90_cents", "Plus de 90 jours"),
)


@dataclass(frozen=True)
class Segment:
    bucket: str
    label: str
    index: int  # which bucket: 0 (not due) … 4 (over 90 days), for the colour
    x: float
    width: float
    cents: int


@dataclass(frozen=True)
class ChartRow:
    label: str
    y: float
    total_cents: int
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class AgingChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    rows: list[ChartRow]


def aging_chart(
    rows: list[dict], width: int = 640, label_width: int = 190, bar_height: int = 26, gap: int = 12
) -> AgingChart:
    """Stacked horizontal bars, one per counterparty, all on the scale of the largest total."""
    plot = width - label_width - 90  # room on the right for the total
    largest = max([row["total_cents"] for row in rows] + [1])
    chart_rows = []
    for i, row in enumerate(rows):
        x = float(label_width)
        segments = []
        for index, (key, label) in enumerate(AGING_BUCKETS):
            cents = int(row.get(key, 0))
            if cents <= 0:
                continue
            w = round(cents / largest * plot, 1)
            segments.append(Segment(key, label, index, round(x, 1), max(w, 1.0), cents))
            x += w
        y = gap + i * (bar_height + gap)
        chart_rows.append(ChartRow(row["counterparty_name"], y, row["total_cents"], segments))
    height = gap + len(rows) * (bar_height + gap)
    return AgingChart(width, max(height, bar_height + 2 * gap), label_width, bar_height, chart_rows)


# -- netting: who pays whom -------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    commune: str
    label: str
    net_cents: int
    x: float
    y: float


@dataclass(frozen=True)
class Arrow:
    payer: str
    payee: str
    amount_cents: int
    x1: float
    y1: float
    x2: float
    y2: float
    label_x: float
    label_y: float


@dataclass(frozen=True)
class NettingPicture:
    width: int
    height: int
    nodes: list[Node]
    arrows: list[Arrow]


def netting_picture(
    positions: list[dict],
    transfers: list[dict],
    names: dict[str, str],
    width: int = 640,
    row_height: int = 70,
    box_width: int = 190,
) -> NettingPicture:
    """Communes that pay on the left, those that receive on the right, one arrow per
    transfer from the payer's box to the payee's, labelled with its amount."""
    payers = sorted((p for p in positions if p["net_cents"] < 0), key=lambda p: p["net_cents"])
    payees = sorted((p for p in positions if p["net_cents"] > 0), key=lambda p: -p["net_cents"])
    rows = max(len(payers), len(payees), 1)
    height = rows * row_height + 20
    nodes: dict[str, Node] = {}
    for column, group in ((box_width / 2 + 10, payers), (width - box_width / 2 - 10, payees)):
        top = (height - len(group) * row_height) / 2
        for i, position in enumerate(group):
            commune = position["commune"]
            nodes[commune] = Node(
                commune,
                names.get(commune, commune),
                position["net_cents"],
                column,
                round(top + (i + 0.5) * row_height, 1),
            )
    arrows = []
    for transfer in transfers:
        a, b = nodes.get(transfer["payer"]), nodes.get(transfer["payee"])
        if a is None or b is None:
            continue
        x1, x2 = a.x + box_width / 2, b.x - box_width / 2 - 6  # room for the arrow head
        arrows.append(
            Arrow(
                transfer["payer"],
                transfer["payee"],
                transfer["amount_cents"],
                x1,
                a.y,
                x2,
                b.y,
                round((x1 + x2) / 2, 1),
                round((a.y + b.y) / 2 - 6, 1),
            )
        )
    return NettingPicture(width, height, list(nodes.values()), arrows)
