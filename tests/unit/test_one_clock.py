"""Every "today" and "now" of the product is read from one clock, contracts/clock.py: the
communes' day is Paris's, and a test pins it in one place (time_machine)."""

import re

from infra.settings import PROJECT_ROOT

# reading the machine's clock directly: its date is UTC's, not the communes'
DIRECT = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time\(\)")


def test_the_product_reads_time_from_the_communes_clock_only():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for folder in ("services", "gateway", "contracts", "demo")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if path != PROJECT_ROOT / "contracts" / "clock.py" and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DIRECT.search(line)
    ]
    assert offenders == []
