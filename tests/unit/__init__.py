"""The unit tests: pure code, milliseconds, no broker or database.

`HYPOTHESIS_PROFILE=mutation` (set by `make mutation`) runs every property on a few fixed
examples: mutmut runs the tests once per mutant, without any conftest.py, so the profile is
registered here, where every test module's package is imported first. Properties that ask
for more examples than usual ask for a multiple of `settings.default.max_examples`.
"""

import os

from hypothesis import settings

settings.register_profile(
    "mutation", max_examples=20, derandomize=True, database=None, deadline=None
)
if profile := os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(profile)
