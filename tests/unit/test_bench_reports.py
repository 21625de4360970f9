"""The bench reports' arithmetic: growth exponents fitted on log-log, the scale targets,
`make bench`'s table of targets read from each bench's JSON (absent: not measured), and the
search report's ratios to the bare nameko floor and to our ping."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import lag, run, scale, summary
from bench.load import Result


def step(name, listings, p99, charges=None, run_s=None, communes=None, netting_s=None):
    out = {"step": name, "search": {"listings": listings, "p50_ms": p99 / 2, "p99_ms": p99}}
    if charges:
        out["billing_run"] = {"charges": charges, "seconds": run_s}
    if communes:
        out["netting"] = {"communes": communes, "seconds": netting_s}
    return out


def test_the_exponent_of_a_power_law_is_found_and_one_size_fits_nothing():
    assert scale.growth_exponent([(10, 3.0), (100, 30.0), (1000, 300.0)]) == pytest.approx(1.0)
    assert scale.growth_exponent([(10, 1.0), (100, 100.0)]) == pytest.approx(2.0)
    assert scale.growth_exponent([(10, 1.0), (10, 1.2)]) is None
    assert scale.growth_exponent([]) is None


def test_n_log_n_between_1k_and_10k_grows_a_little_faster_than_linear():
    assert scale.n_log_n_exponent(1_000, 10_000) == pytest.approx(1.125, abs=0.001)


def test_scale_targets_say_met_not_met_or_what_they_need():
    linear = [
        step("10k", 10_000, 20.0, 100_000, 2.0, 1_000, 0.5),
        step("100k", 100_000, 30.0, 1_000_000, 21.0, 10_000, 5.9),
        step("1M", 1_000_000, 38.0),
    ]
    found = {t["target"]: t for t in scale.targets(linear)}
    assert found["search p99 at 1,000,000 listings ≤ 2× at 10k"]["met"] is True
    assert found["billing run at most linear"]["met"] is True
    assert found["netting at most n log n"]["met"] is True

    quadratic = [
        step("10k", 10_000, 20.0, 100_000, 2.0, 1_000, 0.5),
        step("100k", 100_000, 50.0, 1_000_000, 200.0, 10_000, 50.0),
    ]
    found = {t["target"]: t for t in scale.targets(quadratic)}
    assert found["search p99 at 100,000 listings ≤ 2× at 10k"]["met"] is False
    assert "1M not run" in found["search p99 at 100,000 listings ≤ 2× at 10k"]["detail"]
    assert found["billing run at most linear"]["met"] is False
    assert found["netting at most n log n"]["met"] is False

    alone = {t["target"]: t for t in scale.targets([linear[0]])}
    assert all(t["met"] is None for t in alone.values())


def test_the_scale_report_has_its_table_and_its_plot(tmp_path):
    steps = [step("1k", 1_000, 10.0, 10_000, 0.2, 100, 0.05)]
    steps.append(step("10k", 10_000, 12.0, 100_000, 2.1, 1_000, 0.6))
    document = scale.write(scale.build_report(steps, ["1k", "10k"]), tmp_path)
    assert "| billing run (s) | 1.02 | 2 |" in document
    assert (tmp_path / "scale.svg").read_text().lstrip().startswith("<?xml")
    assert json.loads((tmp_path / "scale.json").read_text())["step_names"] == ["1k", "10k"]


def test_the_table_of_targets_reads_each_bench_and_says_what_was_not_measured(tmp_path):
    # against our own ping (now cheaper than bare nameko) search would miss its target and
    # booking meet its own: the table reads the bare nameko floor, as issue 20 defines it
    (tmp_path / "listings-search.json").write_text(
        json.dumps(
            {
                "search_to_floor_ratio": 0.55,
                "book_to_floor_ratio": 0.42,
                "search_to_nameko_ratio": 0.71,
                "book_to_nameko_ratio": 0.38,
                "book_p99_ms": 61,
            }
        )
    )
    (tmp_path / "event-lag.json").write_text(
        json.dumps(
            {
                "p50_ms": 6.1,
                "p99_ms": 24.0,
                "open_loop_rate": None,
                "open_loop_share": 0.7,
                "open_loop_p50_ms": 5.2,
                "open_loop_p99_ms": 19.0,
            }
        )
    )
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    search = found["search ≥ 0.6× the bare nameko floor's throughput"]
    assert (search.met, search.measured) == (True, "0.71×")
    booking = found["booking ≥ 0.4× the bare nameko floor's throughput"]
    assert (booking.met, booking.measured) == (False, "0.38×")
    assert found["booking p99 < 100 ms"].met is True
    assert found["event lag p50 ≤ 8 ms"].met is True
    assert found["event lag p99 ≤ 20 ms"].met is False
    # the paced traffic's lag is its own row, beside the target's closed loop
    paced = found["event lag p99 ≤ 20 ms at 70% of the closed loop's pace (open loop)"]
    assert (paced.met, paced.measured) == (True, "19.0 ms")
    assert found["PDF of an invoice ≤ 15 ms of CPU"].met is None
    assert found["netting at most n log n"].met is None
    document = summary.write(list(found.values()), tmp_path)
    assert "| event lag p99 ≤ 20 ms | **not met** | 24.0 ms | event-lag.json |" in document
    assert (tmp_path / "summary.md").read_text() == document


def test_an_open_loop_takes_its_share_of_its_rounds_closed_loop_or_is_skipped():
    assert lag.open_loop_rate(None, 20.0) == 14.0  # OPEN_LOOP_SHARE of it
    assert lag.open_loop_rate(12.0, None) == 12.0  # LAG_RATE's, whatever the closed loop
    assert lag.open_loop_rate(None, None) is None  # the round's closed loop lost: no pace
    assert lag.open_loop_rate(None, 0.01) is None  # too slow to take a share of


def lag_report(rounds: int, open_loop: int, skipped: list[int]) -> dict:
    """bench.lag's report of `rounds` rounds, `open_loop` of them also as an open loop."""
    stack_round = {"commit_p50_ms": 6.0, "commit_p99_ms": 18.0, "rate": 14.0}
    return {
        "when": "2026-12-07T04:00:00+00:00",
        "commit": "abc1234",
        "rounds": rounds,
        "returns_per_round": 200,
        "clients": 8,
        "rounds_lost": len(skipped),
        "stack_env": "",
        "broker_floor": {},
        "relay_alone": {},
        "stack": {"now": [stack_round] * (rounds - len(skipped))},
        "open_loop_rate": None,
        "open_loop_share": 0.7,
        "open_loop": [stack_round] * open_loop,
        "open_loop_skipped": skipped,
        "p50_ms": 6.0,
        "p99_ms": 18.0,
        "open_loop_p50_ms": 6.0 if open_loop else None,
        "open_loop_p99_ms": 18.0 if open_loop else None,
    }


def test_the_open_loop_rounds_skipped_are_counted_and_named(tmp_path):
    report = lag_report(rounds=3, open_loop=2, skipped=[2])
    said = "1 of 3 open-loop rounds skipped (round 2: its closed loop lost)"
    assert said in lag.render(report)
    (tmp_path / "event-lag.json").write_text(json.dumps(report))
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    paced = found["event lag p99 ≤ 20 ms at 70% of the closed loop's pace (open loop)"]
    assert (paced.met, paced.measured) == (True, f"18.0 ms; {said}")
    assert found["event lag p99 ≤ 20 ms"].measured == "18.0 ms"  # the closed loop's, as is

    none_left = lag_report(rounds=2, open_loop=0, skipped=[1, 2])
    said = "2 of 2 open-loop rounds skipped (rounds 1, 2: their closed loops lost)"
    assert f"Open loop not measured: {said}." in lag.render(none_left)
    (tmp_path / "event-lag.json").write_text(json.dumps(none_left))
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    paced = found["event lag p50 ≤ 8 ms at 70% of the closed loop's pace (open loop)"]
    assert (paced.met, paced.measured) == (None, said)


def test_an_open_loop_with_every_round_says_nothing_skipped(tmp_path):
    report = lag_report(rounds=2, open_loop=2, skipped=[])
    assert "skipped" not in lag.render(report)
    (tmp_path / "event-lag.json").write_text(json.dumps(report))
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    paced = found["event lag p50 ≤ 8 ms at 70% of the closed loop's pace (open loop)"]
    assert (paced.met, paced.measured) == (True, "6.0 ms")


def test_a_report_without_the_bare_nameko_floor_leaves_its_targets_unmeasured(tmp_path):
    """A JSON of before the nameko floor has only ratios of our ping: not the issue's."""
    (tmp_path / "listings-search.json").write_text(
        json.dumps({"search_to_floor_ratio": 0.71, "book_to_floor_ratio": 0.45, "book_p99_ms": 61})
    )
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    assert found["search ≥ 0.6× the bare nameko floor's throughput"].met is None
    assert found["booking ≥ 0.4× the bare nameko floor's throughput"].met is None
    assert found["booking p99 < 100 ms"].met is True


def measured(name, requests, seconds=2.0, latency=0.01):
    return Result(
        name=name,
        connections=16,
        seconds=seconds,
        latencies=[latency] * requests,
        errors=0,
        statuses=Counter({200: requests}),
        failures=Counter(),
        generator_cpu_seconds=0.1,
    )


def test_the_search_report_compares_with_the_bare_nameko_floor_and_with_our_ping():
    results = [
        measured(run.NAMEKO_FLOOR, 1200),
        measured("floor", 1800),
        measured("search", 900),
        measured("book", 600, latency=0.05),
    ]
    shares = {"nameko http:1": 40.0, "rabbitmq": 30.0, "postgresql": 5.0, "machine busy": 90.0}
    cpu = {
        r.name: {
            "percent_of_one_core": shares,
            "ms_per_request": {k: v / r.requests for k, v in shares.items()},
        }
        for r in results
    }
    cpu_ms = {
        name: run.tracked_cpu_ms(c, run.OUTSIDE_PATH.get(name, ())) for name, c in cpu.items()
    }
    # PostgreSQL is not in the bare nameko floor's path; it is in ours
    assert cpu_ms[run.NAMEKO_FLOOR] == pytest.approx(70.0 / 1200)
    assert cpu_ms["search"] == pytest.approx(75.0 / 900)
    compared = run.throughput_ratios(results, cpu_ms)
    assert compared["search_to_nameko_ratio"] == pytest.approx(900 / 1200, abs=1e-3)
    assert compared["book_to_nameko_ratio"] == pytest.approx(600 / 1200, abs=1e-3)
    assert compared["search_to_floor_ratio"] == pytest.approx(900 / 1800, abs=1e-3)
    assert compared["ping_to_nameko_ratio"] == pytest.approx(1800 / 1200, abs=1e-3)
    assert compared["nameko_floor"]["throughput_rps"] == pytest.approx(600.0)

    report = compared | {
        "when": "2026-12-07T00:00:00+00:00",
        "environment": {
            "commit": "abc1234",
            "cpus": 2,
            "cpu": "test",
            "python": "3.11",
            "processes": ["gateway", "listings"],
        },
        "connections": 16,
        "seconds": 6.0,
        "rounds": 2,
        "warmup_seconds": 1.0,
        "seed": {
            "listings_total": 10,
            "listings_seeded": 10,
            "owner_communes": 2,
            "seed_seconds": 1.0,
            "outbox_drain_seconds": 0.1,
            "bookings_copy_seconds": 0.2,
        },
        "search_check": {},
        "cpu_ms_per_request": cpu_ms,
        "cpu_cost_ratio": 0.5,
        "nameko_cpu_cost_ratio": 0.7,
        "book_p99_ms": 50.0,
        "booking_returned_lag": {
            "events_handled": 15,
            "lag_p50_ms": 5,
            "lag_p99_ms": 9,
            "lag_max_ms": 9,
        },
        "consultants": {},
    }
    markdown = run.render_markdown(report, results, cpu) + run.more_markdown(report)
    assert "**search / bare nameko floor throughput: 75%** (target ≥ 60%: met)" in markdown
    assert "search / our ping: 50%" in markdown
    assert "search / bare nameko floor 70%, search / our ping 50% (every listed" in markdown
    assert "Our ping answers 1.50× as fast as the bare nameko floor" in markdown
    assert "no longer a floor" in markdown
    assert "no longer a floor" not in run.ping_versus_nameko(0.9)
    assert "**50% of the bare nameko floor's throughput** (target ≥ 40%)" in markdown
    assert f"| {run.NAMEKO_FLOOR} | 1,200 | 0 | 600.0 |" in markdown
