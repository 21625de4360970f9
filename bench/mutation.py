"""`python -m bench.mutation` (after `mutmut run`, as `make mutation` does): the mutation score
of every domain module, from mutmut's results under mutants/, as a table in
test-output/mutation/summary.md, with each surviving mutant's change; prints the table and
whether every module meets the target.

A mutant is caught when a test failed or ran out of time on it. "Not run by any test" are the
mutants of functions no unit test calls; the score on code the tests run leaves them out.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

OUTPUT = Path("test-output/mutation/summary.md")
# the target: on code the tests run, at least this share of mutants caught
TARGET = 0.90
CAUGHT = {"killed", "timeout", "caught by type check"}


@dataclass
class ModuleScore:
    module: str
    statuses: Counter
    survivors: list[tuple[str, str]]  # (mutant, the lines it changes)

    @property
    def mutants(self) -> int:
        return sum(self.statuses.values())

    @property
    def caught(self) -> int:
        return sum(self.statuses[s] for s in CAUGHT)

    @property
    def not_run(self) -> int:
        return self.statuses["no tests"]

    @property
    def run(self) -> int:
        return self.mutants - self.not_run - self.statuses["skipped"]

    @property
    def score(self) -> float:
        return self.caught / self.mutants if self.mutants else 1.0

    @property
    def score_run(self) -> float:
        return self.caught / self.run if self.run else 1.0

    @property
    def meets_target(self) -> bool:
        return self.score_run >= TARGET and not self.statuses["not checked"]


def changed_lines(diff: str) -> str:
    """The removed and added lines of a mutant's diff, without the file headers."""
    return "\n".join(
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def scores() -> list[ModuleScore]:
    results = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        statuses = Counter(status_by_exit_code[code] for code in data.exit_code_by_key.values())
        if not statuses:
            continue
        survivors = [
            (name, changed_lines(get_diff_for_mutant(name, path=path)))
            for name, code in sorted(data.exit_code_by_key.items())
            if status_by_exit_code[code] == "survived"
        ]
        module = str(path).removeprefix("services/")
        results.append(ModuleScore(module, statuses, survivors))
    return results


def percent(share: float) -> str:
    return f"{share:.0%}".replace("%", " %")


def verdict(r: ModuleScore) -> str:
    unchecked = r.statuses["not checked"]
    if unchecked:
        return f"NOT met ({unchecked:,} mutants not checked yet)"
    return "met" if r.meets_target else "NOT met"


def targets(rows: list[ModuleScore]) -> str:
    """The target of each module, first: met or not, on the score on code the tests run."""
    lines = [
        f"| module | score on code the tests run | target (≥ {percent(TARGET)}) |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {r.module} | {percent(r.score_run)} | {verdict(r)} |" for r in rows]
    return "\n".join(lines)


def table(rows: list[ModuleScore]) -> str:
    lines = [
        "| module | mutants | caught | survived | score | score on code the tests run "
        "| not run by any test | caught by timing out |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.module} | {r.mutants:,} | {r.caught:,} | {r.statuses['survived']:,} "
            f"| {percent(r.score)} | {percent(r.score_run)} | {r.not_run:,} "
            f"| {r.statuses['timeout']:,} |"
        )
    return "\n".join(lines)


def report(rows: list[ModuleScore]) -> str:
    parts = [
        "# Mutation score of the domain modules",
        "",
        f"mutmut on each `services/*/domain` module, on the bookings' emergency and agreement "
        f"rules and on billing's accountant's export, "
        f"with their unit tests (tests/unit); target: "
        f"≥ {percent(TARGET)} of the mutants caught on code the tests run.",
        "",
        targets(rows),
        "",
        table(rows),
        "",
        "## Surviving mutants",
        "",
        "`mutmut show NAME` (from the checkout's root) shows one in full.",
    ]
    for r in rows:
        parts += ["", f"### {r.module} ({len(r.survivors)})", ""]
        for name, change in r.survivors:
            parts += [f"- `{name}`", "", "  ```diff", *(f"  {c}" for c in change.splitlines())]
            parts += ["  ```"]
    return "\n".join(parts) + "\n"


def main() -> int:
    os.chdir(Path(__file__).resolve().parent.parent)
    config()  # mutmut reads pyproject.toml from the current directory
    rows = scores()
    if not rows:
        print("no mutation results: run `mutmut run` first (make mutation)", file=sys.stderr)
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(report(rows), encoding="utf-8")
    print(targets(rows))
    print()
    print(table(rows))
    print(f"\nwritten to {OUTPUT}")
    missed = [r.module for r in rows if not r.meets_target]
    if missed:
        print(f"target not met: {', '.join(missed)}")
    else:
        print(f"target met for every module (≥ {percent(TARGET)} on code the tests run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
