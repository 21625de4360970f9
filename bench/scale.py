"""`make bench-scale`: what search, matching, a billing run and a netting cost as the work grows.

Each step (`SCALE_STEPS`, default `10k,100k`; `make bench-scale` adds `1M`) grows the data
and measures again:

| step | listings | consultants | charges (billing run) | communes netting (50 invoices each) |
| --- | ---: | ---: | ---: | ---: |
| 1k | 1,000 | 1,000 | 10,000 | 100 |
| 10k | 10,000 | 10,000 | 100,000 | 1,000 |
| 100k | 100,000 | 100,000 | 1,000,000 | 10,000 |
| 1M | 1,000,000 | — | — | — |

- search p50/p99 through the gateway (`GET /api/v1/listings?near=…&radius_km=30`, the
  request of `make bench`), the stack's listings grown by COPY between steps (rows as the
  service writes them; no event, search reads only its table), then `VACUUM ANALYZE`;
- matching p95 in the consultants service's own code (its Catalogue, as the match RPC),
  consultants seeded as bench.consultants does;
- a billing run and a netting, timed as bench.billing does, on fresh databases.

`SCALE_ONLY=search` measures search alone (no consultants, billing run nor netting), and
`SCALE_TAG` names the stack's databases (`mutualis_<tag>_postgresql_*`; default `scale`).

Then a growth exponent per operation, fitted on log(cost) against log(size) over the steps
(cost ∝ sizeᵏ: k = 1 is linear), and the targets: search p99 at the largest step ≤ 2× its
p99 at 10k; billing at most linear, netting at most n log n (k within 0.1 of it). Every
database is `mutualis_scale_*`. Writes test-output/bench/scale.json, scale.md and scale.svg
(matplotlib).
"""

from __future__ import annotations

import warnings

# nameko (imported through infra) pulls in eventlet, which warns that it is deprecated; the
# bench never monkey-patches: plain threads drive the load
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import text  # noqa: E402

from bench.billing import bench_billing_run, bench_netting  # noqa: E402
from bench.consultants import needs, seed_consultants  # noqa: E402
from bench.load import measure, percentile  # noqa: E402
from bench.run import AGENT, OUTPUT, ensure_not_monkey_patched, search_path  # noqa: E402
from bench.seed import bench_communes, drafts  # noqa: E402
from infra.database import DatabaseAccess, make_engine  # noqa: E402
from services.consultants.dependencies import Catalogue  # noqa: E402
from services.listings.domain import search_text  # noqa: E402
from services.listings.models import ListingRow  # noqa: E402
from tests.support import Stack  # noqa: E402

INVOICES_PER_COMMUNE = 50  # bench.billing's netting: 50,000 invoices among 1,000 communes
RUN_COMMUNES = 500  # a billing run's suppliers stay as many: its charges grow
SEARCH_CONNECTIONS = 8
MATCHES = 200
SEARCH_P99_RATIO = 2.0  # search p99 at the largest step ≤ this × its p99 at 10k
SLACK = 0.1  # a fitted exponent within this of its bound still meets it (timing noise)
DEFAULT_STEPS = "10k,100k"


@dataclass(frozen=True)
class Step:
    name: str
    listings: int
    consultants: int | None
    charges: int | None
    netting_communes: int | None


STEPS = {
    s.name: s
    for s in (
        Step("1k", 1_000, 1_000, 10_000, 100),
        Step("10k", 10_000, 10_000, 100_000, 1_000),
        Step("100k", 100_000, 100_000, 1_000_000, 10_000),
        Step("1M", 1_000_000, None, None, None),
    )
}


def steps_asked() -> list[Step]:
    names = os.environ.get("SCALE_STEPS", DEFAULT_STEPS).split(",")
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise SystemExit(f"SCALE_STEPS: unknown step(s) {unknown}; known: {list(STEPS)}")
    return sorted((STEPS[n] for n in names), key=lambda s: s.listings)


# -- data -------------------------------------------------------------------------------


LISTING_COLUMNS = [c.name for c in ListingRow.__table__.columns]
cached_search_text = lru_cache(maxsize=None)(search_text)  # titles and blurbs repeat


def listing_rows(count: int, rng: random.Random, now: datetime):
    """`count` published listings as the service stores them (bench.seed's drafts and
    owners), newest spread over a year."""
    places = bench_communes()
    weights = [math.sqrt(max(c.population, 1)) for c in places]
    source = drafts(rng)
    for owner in rng.choices(places, weights=weights, k=count):
        terms = next(source).model_dump(mode="json")
        at = now - timedelta(seconds=rng.randint(0, 365 * 86_400))
        yield {
            **terms,
            "id": str(uuid.uuid4()),
            "owner_commune": owner.insee_code,
            "latitude": owner.latitude,
            "longitude": owner.longitude,
            "status": "published",
            "revision": 1,
            "search_text": cached_search_text(
                terms["title"], terms["description"], terms["category"]
            ),
            "created_at": at,
            "updated_at": at,
        }


def copy_listings(url: str, count: int, rng: random.Random, chunk: int = 50_000) -> float:
    """Adds `count` listings with PostgreSQL's COPY, `chunk` rows at a time; then VACUUM
    ANALYZE, so that the planner knows the table's new size. Returns the seconds taken."""
    started = time.perf_counter()
    engine = make_engine(url)
    rows = listing_rows(count, rng, datetime.now(UTC))
    columns = ", ".join(f'"{c}"' for c in LISTING_COLUMNS)
    done = 0
    while done < count:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in (next(rows) for _ in range(min(chunk, count - done))):
            writer.writerow([_csv(row.get(c)) for c in LISTING_COLUMNS])
            done += 1
        buffer.seek(0)
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(
                    f"COPY listings ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
                )
            raw.commit()
        finally:
            raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) listings"))
    engine.dispose()
    return time.perf_counter() - started


def _csv(value):
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# -- measurements -----------------------------------------------------------------------


def search_latency(stack: Stack, seconds: float) -> dict:
    token = stack.login(AGENT).headers["Authorization"]
    result = measure(
        "search",
        search_path,
        url=stack.url,
        connections=SEARCH_CONNECTIONS,
        seconds=seconds,
        warmup=2.0,
        headers={"Authorization": token},
    )
    summary = result.summary()
    return {
        "requests": summary["requests"],
        "errors": summary["errors"],
        "throughput_rps": summary["throughput_rps"],
        "p50_ms": summary["latency_ms"]["p50"],
        "p99_ms": summary["latency_ms"]["p99"],
    }


def matching_latency(url: str, rng: random.Random) -> dict:
    """The match RPC's own work (the index brought up to date, the ranking, the views),
    in process, over MATCHES needs; the first, which loads the index, is not counted."""
    access = DatabaseAccess(
        make_engine(url), producer="consultants", correlation_id="bench", consumer="bench"
    )
    catalogue = Catalogue()
    started = time.perf_counter()
    with access.reading() as session:
        profiles = len(catalogue.current(session))
    load_seconds = time.perf_counter() - started
    took = []
    for _, need in needs(rng, MATCHES):
        t0 = time.perf_counter()
        with access.reading() as session:
            catalogue.match(session, need)
        took.append(time.perf_counter() - t0)
    took.sort()
    return {
        "profiles": profiles,
        "index_load_seconds": round(load_seconds, 2),
        "p50_ms": round(percentile(took, 50) * 1000, 2),
        "p95_ms": round(percentile(took, 95) * 1000, 2),
    }


def measure_step(step: Step, stack: Stack, have: dict, rng: random.Random) -> dict:
    """Grows the stack's listings and consultants to the step's sizes, then measures."""
    seconds = float(os.environ.get("SCALE_SEARCH_SECONDS", "10"))
    out: dict = {"step": step.name}
    print(f"== step {step.name}", flush=True)
    added = step.listings - have["listings"]
    copy_seconds = copy_listings(stack.urls["listings"], added, rng)
    have["listings"] = step.listings
    print(f"   {added:,} listings copied in {copy_seconds:.1f} s", flush=True)
    out["search"] = {"listings": step.listings, **search_latency(stack, seconds)}
    print(f"   search {out['search']}", flush=True)
    if os.environ.get("SCALE_ONLY") == "search":
        return out
    if step.consultants is not None:
        added = step.consultants - have["consultants"]
        seeded = seed_consultants(stack.urls["consultants"], added, rng)
        have["consultants"] = step.consultants
        print(f"   {added:,} consultants seeded in {seeded:.1f} s", flush=True)
        out["matching"] = {
            "consultants": step.consultants,
            **matching_latency(stack.urls["consultants"], rng),
        }
        print(f"   matching {out['matching']}", flush=True)
    if step.charges is not None:
        run = bench_billing_run(rng, step.charges, RUN_COMMUNES, "mutualis_scale_billing_run")
        out["billing_run"] = {"charges": step.charges, **run}
        print(f"   billing run {run['seconds']} s ({run['invoices']} invoices)", flush=True)
    if step.netting_communes is not None:
        netting = bench_netting(
            rng,
            step.netting_communes,
            step.netting_communes * INVOICES_PER_COMMUNE,
            "mutualis_scale_netting",
        )
        out["netting"] = {"communes": step.netting_communes, **netting}
        print(f"   netting {netting['seconds']} s", flush=True)
    return out


# -- growth -----------------------------------------------------------------------------

# (operation, its section of a step, the size it grows with, the figure in ms or s)
OPERATIONS = (
    ("search p99 (ms)", "search", "listings", "p99_ms"),
    ("search p50 (ms)", "search", "listings", "p50_ms"),
    ("matching p95 (ms)", "matching", "consultants", "p95_ms"),
    ("billing run (s)", "billing_run", "charges", "seconds"),
    ("netting (s)", "netting", "communes", "seconds"),
)


def series(steps: list[dict], section: str, size: str, figure: str) -> list[tuple[int, float]]:
    return [(s[section][size], s[section][figure]) for s in steps if section in s]


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """k of cost ∝ sizeᵏ, least squares on the logarithms; None under two sizes."""
    points = [(n, c) for n, c in points if n > 0 and c > 0]
    if len({n for n, _ in points}) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(c) for _, c in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def n_log_n_exponent(low: int, high: int) -> float:
    """The exponent n log n shows between two sizes (a little over 1)."""
    return math.log((high * math.log(high)) / (low * math.log(low))) / math.log(high / low)


def targets(steps: list[dict]) -> list[dict]:
    """The scale targets, each met, not met or not measured (with why)."""
    rows = []
    search = series(steps, "search", "listings", "p99_ms")
    base = dict(search).get(10_000)
    if base is None or len(search) < 2:
        rows.append(_target("search p99 at the largest step ≤ 2× at 10k", None, "10k and more"))
    else:
        largest, p99 = search[-1]
        ratio = p99 / base
        rows.append(
            _target(
                f"search p99 at {largest:,} listings ≤ 2× at 10k",
                ratio <= SEARCH_P99_RATIO,
                f"{p99:.1f} ms / {base:.1f} ms = {ratio:.2f}×"
                + ("" if largest >= 1_000_000 else " (1M not run)"),
            )
        )
    for name, section, size, bound_of in (
        ("billing run at most linear", "billing_run", "charges", lambda lo, hi: 1.0),
        ("netting at most n log n", "netting", "communes", n_log_n_exponent),
    ):
        points = series(steps, section, size, "seconds")
        k = growth_exponent(points)
        if k is None:
            rows.append(_target(name, None, "two sizes or more"))
            continue
        bound = bound_of(points[0][0], points[-1][0])
        rows.append(_target(name, k <= bound + SLACK, f"k = {k:.2f} (bound {bound:.2f} + {SLACK})"))
    return rows


def _target(name: str, met: bool | None, detail: str) -> dict:
    return {"target": name, "met": met, "detail": detail if met is not None else f"needs {detail}"}


# -- report -----------------------------------------------------------------------------


def markdown(report: dict) -> str:
    steps = report["steps"]
    lines = [
        "# Cost as the work grows",
        "",
        f"Generated {report['when']} on {report['cpus']} CPUs; steps {report['step_names']}.",
        "",
        "| target | met | measured |",
        "| --- | --- | --- |",
    ]
    for t in report["targets"]:
        met = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {met} | {t['detail']} |")
    lines += [
        "",
        "| step | listings | search p50 ms | search p99 ms | consultants | matching p95 ms "
        "| charges | billing run s | netting communes | netting s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in steps:
        m, b, n = s.get("matching", {}), s.get("billing_run", {}), s.get("netting", {})
        lines.append(
            f"| {s['step']} | {s['search']['listings']:,} | {s['search']['p50_ms']} "
            f"| {s['search']['p99_ms']} | {m.get('consultants', '—')} | {m.get('p95_ms', '—')} "
            f"| {b.get('charges', '—')} | {b.get('seconds', '—')} | {n.get('communes', '—')} "
            f"| {n.get('seconds', '—')} |"
        )
    lines += [
        "",
        "| operation | growth exponent k (cost ∝ sizeᵏ) | points |",
        "| --- | ---: | ---: |",
    ]
    for name, k in report["exponents"].items():
        points = report["points"][name]
        shown = "— (one size)" if k is None else f"{k:.2f}"
        lines.append(f"| {name} | {shown} | {len(points)} |")
    lines += ["", "![cost against size, log-log](scale.svg)", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Each operation's cost against its size, log-log, one panel each."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    names = [name for name, points in report["points"].items() if points]
    figure, axes = pyplot.subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        sizes, costs = zip(*report["points"][name], strict=True)
        axis.loglog(sizes, costs, "o-")
        k = report["exponents"][name]
        axis.set_title(name if k is None else f"{name}, k = {k:.2f}", fontsize=9)
        axis.set_xlabel(
            {"search": "listings", "matching": "consultants", "billing": "charges"}.get(
                name.split()[0], "communes"
            )
        )
        axis.grid(True, which="both", linewidth=0.3)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def build_report(steps: list[dict], names: list[str]) -> dict:
    points = {name: series(steps, *rest) for name, *rest in OPERATIONS}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "step_names": names,
        "steps": steps,
        "points": points,
        "exponents": {name: growth_exponent(p) for name, p in points.items()},
        "targets": targets(steps),
    }


def write(report: dict, output: Path = OUTPUT) -> str:
    output.mkdir(parents=True, exist_ok=True)
    (output / "scale.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    plot(report, output / "scale.svg")
    document = markdown(report)
    (output / "scale.md").write_text(document)
    return document


def main() -> int:
    ensure_not_monkey_patched()
    chosen = steps_asked()
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="mutualis-scale-") as workdir:
        tag = os.environ.get("SCALE_TAG", "scale")
        stack = Stack("postgresql", Path(workdir), tag_prefix=tag)
        try:
            print("starting the stack on PostgreSQL …", flush=True)
            stack.start()
            have = {"listings": 0, "consultants": 0}
            steps = [measure_step(step, stack, have, rng) for step in chosen]
        finally:
            stack.stop()
    document = write(build_report(steps, [s.name for s in chosen]))
    print(document)
    print(f"written to {OUTPUT}/scale.md, scale.json and scale.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
