"""The bench reports' arithmetic: growth exponents fitted on log-log, the scale targets, and
`make bench`'s table of targets read from each bench's JSON (absent: not measured)."""

from __future__ import annotations

import json

import pytest

from bench import scale, summary


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
    (tmp_path / "listings-search.json").write_text(
        json.dumps({"search_to_floor_ratio": 0.71, "book_to_floor_ratio": 0.38, "book_p99_ms": 61})
    )
    (tmp_path / "event-lag.json").write_text(json.dumps({"p50_ms": 6.1, "p99_ms": 24.0}))
    found = {r.target: r for r in summary.rows(tmp_path, tmp_path / "no-drills.json")}
    assert found["search ≥ 0.6× the floor's throughput"].met is True
    assert found["booking ≥ 0.4× the floor's throughput"].met is False
    assert found["booking p99 < 100 ms"].met is True
    assert found["event lag p50 ≤ 8 ms"].met is True
    assert found["event lag p99 ≤ 20 ms"].met is False
    assert found["PDF of an invoice ≤ 15 ms of CPU"].met is None
    assert found["netting at most n log n"].met is None
    document = summary.write(list(found.values()), tmp_path)
    assert "| event lag p99 ≤ 20 ms | **not met** | 24.0 ms | event-lag.json |" in document
    assert (tmp_path / "summary.md").read_text() == document
