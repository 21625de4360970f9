"""Geometry of the small pictures the pages draw as inline SVG: where results lie around the
caller's commune, score bars, the aging chart, who pays whom. Pure: numbers in, numbers out."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from pyproj import Transformer

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
    code: str = ""  # its INSEE code, for a link to its results


@dataclass(frozen=True)
class Marker:
    """A cluster of communes with results, drawn as one disc: its area grows with its count
    (never one huge bubble), its label placed inside the picture."""

    label: str
    x: float
    y: float
    count: int
    distance_km: float | None
    r: float = 8.0
    label_x: float = 0.0
    label_y: float = 0.0
    codes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


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


@functools.cache
def _lambert93() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)


def local_km(origin: tuple[float, float], latitude: float, longitude: float) -> tuple[float, float]:
    """East and north offsets in km from `origin` in Lambert-93 (RGF93, France's official
    conformal projection: shapes and bearings as on a French map)."""
    project = _lambert93().transform
    x0, y0 = project(origin[1], origin[0])
    x, y = project(longitude, latitude)
    return (x - x0) / 1000, (y - y0) / 1000


MIN_R, MAX_R = 7.0, 22.0
CHAR_PX = 6.4  # the labels' average advance at 11 px
LABEL_GAP = 4


def marker_radius(count: int, largest: int) -> float:
    """A disc whose area grows with the count: the largest cluster MAX_R, one result MIN_R."""
    if largest <= 1:
        return MIN_R
    share = (count - 1) / (largest - 1)
    return round(math.sqrt(MIN_R**2 + share * (MAX_R**2 - MIN_R**2)), 1)


def _cluster_label(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} et {names[1]}"
    return f"{names[0]} et {len(names) - 1} autres communes"


def _place_label(x: float, y: float, r: float, text: str, size: int) -> tuple[float, float]:
    """Where a label (centred on its x) sits: above its disc, below it when the top edge is
    near, and shifted sideways so that it is never cut by the picture's edges."""
    half_width = len(text) * CHAR_PX / 2
    label_x = min(max(x, half_width + 2), size - half_width - 2)
    label_y = y - r - LABEL_GAP
    if label_y < 14:
        label_y = y + r + LABEL_GAP + 10
    return round(label_x, 1), round(label_y, 1)


def map_picture(
    origin: tuple[float, float],
    places: list[Place],
    size: int = 320,
    margin: int = 30,
    radius_km: float | None = None,
) -> MapPicture:
    """The caller's commune in the centre, each place where Lambert-93 puts it, north up;
    the scale fits the farthest place (the search radius when there is none), with
    round-numbered rings. Places whose discs would overlap are drawn as one cluster,
    at their centre of mass."""
    offsets = [local_km(origin, p.latitude, p.longitude) for p in places]
    farthest = max((math.hypot(e, n) for e, n in offsets), default=0.0)
    extent = max(farthest if farthest > 0 else (radius_km or 0.0), 1.0)
    half = size / 2
    px_per_km = (half - margin) / extent
    largest = max((p.count for p in places), default=1)
    # the most results first: a cluster grows around its largest commune
    ordered = sorted(zip(places, offsets, strict=True), key=lambda po: -po[0].count)
    clusters: list[dict] = []
    for place, (east, north) in ordered:
        x, y = half + east * px_per_km, half - north * px_per_km  # SVG's y grows down
        r = marker_radius(place.count, largest)
        for cluster in clusters:
            if math.hypot(cluster["x"] - x, cluster["y"] - y) < cluster["r"] + r:
                total = cluster["count"] + place.count
                cluster["x"] = (cluster["x"] * cluster["count"] + x * place.count) / total
                cluster["y"] = (cluster["y"] * cluster["count"] + y * place.count) / total
                cluster["count"] = total
                cluster["r"] = marker_radius(min(total, largest), largest)
                cluster["places"].append(place)
                break
        else:
            clusters.append({"x": x, "y": y, "r": r, "count": place.count, "places": [place]})
    markers = []
    for cluster in clusters:
        names = [p.label for p in cluster["places"]]
        label = _cluster_label(names)
        x, y = round(cluster["x"], 1), round(cluster["y"], 1)
        label_x, label_y = _place_label(x, y, cluster["r"], label, size)
        distances = [p.distance_km for p in cluster["places"] if p.distance_km is not None]
        markers.append(
            Marker(
                label=label,
                x=x,
                y=y,
                count=cluster["count"],
                distance_km=min(distances) if distances else None,
                r=cluster["r"],
                label_x=label_x,
                label_y=label_y,
                codes=tuple(p.code for p in cluster["places"] if p.code),
                names=tuple(names),
            )
        )
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
