"""The locks hold every dependency pyproject.toml declares, at a version its range allows."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REFRESH = "refresh the locks with `make lock` and commit them"


def pinned(lock: str) -> dict[str, str]:
    """Each locked distribution's version, by canonical name."""
    text = (ROOT / lock).read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, flags=re.M)
    }


@pytest.mark.parametrize(
    ("lock", "declared"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        (
            "requirements-dev.lock",
            PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"],
        ),
    ],
)
def test_every_declared_dependency_is_locked_within_its_range(lock, declared):
    versions = pinned(lock)
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{requirement.name} is not in {lock}: {REFRESH}"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"{lock} has {name}=={versions[name]}, outside {requirement}: {REFRESH}"
        )


def test_the_image_lock_runs_the_versions_the_tests_ran():
    runtime, dev = pinned("requirements.lock"), pinned("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime, REFRESH


def test_every_locked_distribution_carries_its_hashes():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        for entry in entries[1:]:
            assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash in {lock}"
