"""What every test that drives real Vagrant shares: the check that it is there, the pools the
host set-up made for each provider, and a daemon configured for one of them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess

BOX = "vcm/bookworm-test"
POOLS = {"lxc": "192.168.33.0/24", "docker": "192.168.34.0/24"}


def need_vagrant() -> None:
    if shutil.which("vagrant") is None:
        if os.environ.get("VCM_REQUIRE_VAGRANT") == "1":
            pytest.fail("vagrant is not installed; run scripts/provision-host all first")
        pytest.skip("vagrant is not installed (scripts/provision-host all installs it)")


def vagrant_daemon(
    state_dir: Path, provider: str, pool: str | None = None, **settings: str
) -> DaemonProcess:
    """A daemon (not started) driving real Vagrant with `provider`, its guests on `pool`."""
    return DaemonProcess(
        state_dir,
        VCM_DRIVER="vagrant",
        VCM_PROVIDER=provider,
        VCM_IP_POOL=pool or POOLS[provider],
        VCM_GUEST="debian",
        **settings,
    )
