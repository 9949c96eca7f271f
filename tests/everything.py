"""``make test`` promises that every test ran. There (``IMOVSP_TEST_EVERYTHING=1``, set by
``.ci/with-services``) and in CI, a test whose service is missing fails instead of skipping:
a green run never tests less than it claims."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

EVERYTHING = "IMOVSP_TEST_EVERYTHING"


def required() -> bool:
    return os.environ.get(EVERYTHING) == "1" or os.environ.get("CI", "") not in ("", "false")


def unavailable(reason: str, *, module: bool = False) -> NoReturn:
    """Skip for ``reason`` where a partial run is fine; fail where every test must run."""
    if required():
        pytest.fail(f"{reason}; `make test` must run every test", pytrace=False)
    pytest.skip(reason, allow_module_level=module)
