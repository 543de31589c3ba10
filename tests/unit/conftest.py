from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from tests.unit.fakes import FakeHostFiles, FakeVagrant, InMemoryStore
from vcm.domain.allocation import IpPool
from vcm.domain.model import HostCapacity
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService


@pytest.fixture
def vagrant() -> FakeVagrant:
    return FakeVagrant()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def host_files() -> FakeHostFiles:
    return FakeHostFiles({"payload.txt", "setup.sh", "site.pp"})


def make_service(
    vagrant: FakeVagrant,
    store: InMemoryStore,
    host_files: FakeHostFiles | None = None,
    pool: str = "192.168.33.0/24",
    capacity: HostCapacity | None = None,
) -> VcmService:
    return VcmService(
        registry=Registry(store),
        vagrant=vagrant,
        host_files=host_files or FakeHostFiles(),
        pool=IpPool.with_host_sides(IPv4Network(pool)),
        domain="example.com",
        capacity=capacity,
    )


@pytest.fixture
def service(vagrant: FakeVagrant, store: InMemoryStore, host_files: FakeHostFiles) -> VcmService:
    return make_service(vagrant, store, host_files)
