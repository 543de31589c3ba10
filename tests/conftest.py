"""Tests that drive real Vagrant take a host-wide lock, one at a time.

Every fresh daemon leases the same first addresses of the same pools on the same bridges, so two
test runs on one host (two checkouts, say) must not overlap; CI runs one and never waits.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

REAL_VAGRANT_LOCK = Path("/run/lock/vcm-real-vagrant-tests.lock")


@pytest.fixture(autouse=True)
def one_real_vagrant_test_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("vagrant") is None:
        yield
        return
    with REAL_VAGRANT_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
