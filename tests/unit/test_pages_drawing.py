"""The pictures the pages draw: results around my commune, score bars, aging, netting."""

import math
from dataclasses import replace

from gateway.pages.drawing import (
    CHAR_PX,
    MAX_R,
    MIN_R,
    Place,
    aging_chart,
    local_km,
    map_picture,
    marker_radius,
    netting_picture,
    score_bars,
)
from infra.communes import great_circle_km

SAINT_ETIENNE = (45.4347, 4.3903)
CHAMBON = Place("Le Chambon-Feugerolles", 45.3939, 4.3247, 2, 6.5)
SAINT_CHAMOND = Place("Saint-Chamond", 45.4757, 4.5147, 1, 11.4)


def test_offsets_are_kilometres_east_and_north_in_lambert_93():
    east, north = local_km(SAINT_ETIENNE, 45.4347 + 1, 4.3903)
    # grid north turns from true north away from Lambert-93's meridian (3° E): 1° here
    assert abs(east) < 2.5 and 110.5 < north < 111.5
    east, north = local_km(SAINT_ETIENNE, 45.4347, 4.3903 + 1)
    assert 77 < east < 79 and abs(north) < 2.5  # a degree of longitude shrinks with latitude
    # a conformal projection keeps a neighbour's distance as the crow flies
    east, north = local_km(SAINT_ETIENNE, CHAMBON.latitude, CHAMBON.longitude)
    crow = great_circle_km(*SAINT_ETIENNE, CHAMBON.latitude, CHAMBON.longitude)
    assert math.isclose(math.hypot(east, north), crow, rel_tol=0.002)


def test_the_map_puts_north_up_and_the_farthest_place_at_the_edge():
    picture = map_picture(SAINT_ETIENNE, [CHAMBON, SAINT_CHAMOND], size=320, margin=30)
    chambon, chamond = picture.markers  # the most results first
    assert (picture.cx, picture.cy) == (160, 160)
    assert chambon.x < 160 and chambon.y > 160  # south-west of Saint-Étienne
    assert chamond.x > 160 and chamond.y < 160  # north-east
    farthest = math.hypot(chamond.x - 160, chamond.y - 160)
    assert math.isclose(farthest, 130, abs_tol=0.2)  # half the size less the margin
    assert [ring.km for ring in picture.rings] == [2, 5, 10]
    assert chambon.count == 2 and chambon.label == "Le Chambon-Feugerolles"


def test_without_results_the_map_shows_the_search_radius():
    picture = map_picture(SAINT_ETIENNE, [], radius_km=30)
    assert picture.markers == []
    assert [ring.km for ring in picture.rings] == [5, 10, 20]
    assert math.isclose(picture.km_per_px, 30 / 130, rel_tol=1e-3)


def test_a_disc_grows_by_area_and_never_becomes_one_huge_bubble():
    assert marker_radius(1, 1) == MIN_R
    assert marker_radius(1, 50) == MIN_R and marker_radius(50, 50) == MAX_R
    quarter = marker_radius(13, 49)  # a quarter of the way in count, a quarter in area
    assert math.isclose(quarter**2 - MIN_R**2, (MAX_R**2 - MIN_R**2) / 4, rel_tol=0.02)


def test_neighbours_whose_discs_would_overlap_are_one_cluster_at_their_centre_of_mass():
    firminy = Place("Firminy", 45.3883, 4.2883, 19, 9.3, "42095")
    # Le Chambon is 3 km from Firminy: at a 100 km scale their discs overlap
    far = Place("Roanne", 46.0367, 4.0681, 1, 71.0, "42187")
    picture = map_picture(SAINT_ETIENNE, [firminy, replace(CHAMBON, code="42044"), far], size=320)
    cluster = next(m for m in picture.markers if m.count == 21)
    assert cluster.names == ("Firminy", "Le Chambon-Feugerolles")
    assert cluster.codes == ("42095", "42044")
    assert cluster.label == "Firminy et Le Chambon-Feugerolles"
    assert cluster.distance_km == 6.5  # the nearer of the two
    assert len(picture.markers) == 2
    alike = [replace(CHAMBON, label=name) for name in ("Le Chambon", "Fraisses", "Unieux")]
    many = map_picture(SAINT_ETIENNE, [SAINT_CHAMOND, *alike])
    assert many.markers[0].label == "Le Chambon et 2 autres communes"
    assert many.markers[0].count == 6


def test_labels_never_leave_the_picture():
    size = 320
    west = Place("Saint-Just-Saint-Rambert", 45.4347, 4.3903 - 0.4, 3, 31.0)
    north = Place("Saint-Galmier", 45.4347 + 0.3, 4.3903, 40, 33.0)  # the largest disc
    picture = map_picture(SAINT_ETIENNE, [west, north], size=size)
    for m in picture.markers:
        half_width = len(m.label) * CHAR_PX / 2
        assert m.label_x - half_width >= 0 and m.label_x + half_width <= size, m.label
        assert 10 <= m.label_y <= size, m.label
    top = next(m for m in picture.markers if m.label == "Saint-Galmier")
    assert top.r == MAX_R and top.label_y > top.y  # no room above its disc: below it


def test_score_bars_follow_the_components_that_counted_in_a_fixed_order():
    bars = score_bars(
        {"rate": 0.5, "skills": 1.0, "distance": 1.4, "text": -0.1},
        {"skills": 0.4, "text": 0.3, "distance": 0.2, "rate": 0.1},
        width=200,
    )
    assert [b.key for b in bars] == ["skills", "text", "distance", "rate"]
    assert [b.width for b in bars] == [200, 0, 200, 100]  # values clamped to [0, 1]
    assert [b.percent for b in bars] == [100, 0, 100, 50]
    assert bars[0].label == "Compétences" and bars[0].weight == 0.4


def test_aging_bars_share_one_scale_and_stack_the_buckets_in_order():
    rows = [
        {
            "counterparty_name": "Firminy",
            "not_due_cents": 0,
            "days_0_30_cents": 10000,
            "days_31_60_cents": 30000,
            "days_61_90_cents": 0,
            "days_over_90_cents": 0,
            "total_cents": 40000,
        },
        {
            "counterparty_name": "Saint-Chamond",
            "not_due_cents": 20000,
            "days_0_30_cents": 0,
            "days_31_60_cents": 0,
            "days_61_90_cents": 0,
            "days_over_90_cents": 0,
            "total_cents": 20000,
        },
    ]
    chart = aging_chart(rows, width=640, label_width=190)
    plot = 640 - 190 - 90
    firminy, chamond = chart.rows
    assert [s.index for s in firminy.segments] == [1, 2]
    assert firminy.segments[0].x == 190
    assert firminy.segments[1].x == 190 + firminy.segments[0].width
    assert math.isclose(sum(s.width for s in firminy.segments), plot)
    assert math.isclose(chamond.segments[0].width, plot / 2)
    assert chamond.y > firminy.y


def test_netting_draws_payers_left_payees_right_and_one_arrow_per_transfer():
    positions = [
        {"commune": "42044", "net_cents": -40000},
        {"commune": "42218", "net_cents": 20000},
        {"commune": "42095", "net_cents": 20000},
    ]
    transfers = [
        {"payer": "42044", "payee": "42218", "amount_cents": 20000},
        {"payer": "42044", "payee": "42095", "amount_cents": 20000},
    ]
    names = {"42044": "Le Chambon-Feugerolles", "42218": "Saint-Étienne", "42095": "Firminy"}
    picture = netting_picture(positions, transfers, names, width=640)
    nodes = {n.commune: n for n in picture.nodes}
    assert nodes["42044"].x < 320 < nodes["42218"].x == nodes["42095"].x
    assert nodes["42218"].label == "Saint-Étienne"
    assert len(picture.arrows) == 2
    for arrow in picture.arrows:
        assert arrow.x1 < arrow.x2 and arrow.y1 == nodes[arrow.payer].y
        assert arrow.y2 == nodes[arrow.payee].y
