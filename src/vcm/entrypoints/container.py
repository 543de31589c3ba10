"""The composition root: one container that builds vcm from its settings."""

from __future__ import annotations

import ssl
from operator import attrgetter
from typing import Any

from dependency_injector import containers, providers

from vcm.adapters.events import EventHub
from vcm.adapters.host_files import FilesRoot
from vcm.adapters.json_store import JsonStateStore
from vcm.adapters.operations import OperationManager
from vcm.adapters.protocol import RequestHandler
from vcm.adapters.resources import host_capacity
from vcm.adapters.simulated import SimulatedVagrant
from vcm.adapters.socket_server import SocketServer
from vcm.adapters.vagrant_cli import VagrantCli
from vcm.domain.allocation import IpPool
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService
from vcm.entrypoints.settings import Settings


def _token(settings: Settings) -> str | None:
    return settings.auth_token.get_secret_value() if settings.auth_token else None


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    # Gateways
    store = providers.ThreadSafeSingleton(JsonStateStore, path=settings.provided.state_file)
    events = providers.ThreadSafeSingleton(EventHub, buffer=settings.provided.watch_buffer)
    host_files = providers.ThreadSafeSingleton(FilesRoot, root=settings.provided.files_root)
    vagrant = providers.Selector(
        settings.provided.driver,
        vagrant=providers.ThreadSafeSingleton(
            VagrantCli,
            machines_dir=settings.provided.machines_dir,
            files=host_files,
            provider=providers.Callable(attrgetter("provider"), settings),
            guest=settings.provided.guest,
            lxc_bridge=settings.provided.lxc_bridge,
            up_timeout=settings.provided.up_timeout,
            command_timeout=settings.provided.command_timeout,
            box_add_timeout=settings.provided.box_add_timeout,
        ),
        simulated=providers.ThreadSafeSingleton(
            SimulatedVagrant,
            delay=settings.provided.simulated_delay,
            boxes=providers.Callable(frozenset, settings.provided.simulated_boxes),
            failing_boxes=providers.Callable(frozenset, settings.provided.simulated_failing_boxes),
            machines_file=providers.Callable(
                lambda directory: directory / "simulated-machines.json",
                settings.provided.state_dir,
            ),
        ),
    )
    registry = providers.ThreadSafeSingleton(Registry, store=store, events=events)
    operations = providers.ThreadSafeSingleton(
        OperationManager,
        path=settings.provided.operations_file,
        events=events,
        workers=settings.provided.workers,
    )
    pool = providers.Singleton(IpPool.with_host_sides, network=settings.provided.ip_pool)
    capacity = providers.Singleton(host_capacity)

    # Services
    service = providers.ThreadSafeSingleton(
        VcmService,
        registry=registry,
        vagrant=vagrant,
        host_files=host_files,
        pool=pool,
        domain=settings.provided.domain,
        parallelism=settings.provided.parallel_all,
        capacity=capacity,
    )
    handler = providers.Singleton(
        RequestHandler,
        service=service,
        token=providers.Callable(_token, settings),
        operations=operations,
    )
    server = providers.Singleton(
        SocketServer,
        handler=handler,
        host=settings.provided.host,
        port=settings.provided.port,
        max_request_bytes=settings.provided.max_request_bytes,
        workers=settings.provided.workers,
        max_connections=settings.provided.max_connections,
        idle_timeout=settings.provided.idle_timeout,
        ssl_context=providers.Callable(_tls, settings),
        events=events,
    )


def bootstrap(settings: Settings | None = None, **overrides: Any) -> Container:
    """Build vcm; `overrides` replace providers by name, e.g. vagrant=FakeVagrant()."""
    container = Container(settings=settings if settings is not None else Settings())
    for name, value in overrides.items():
        getattr(container, name).override(providers.Object(value))
    return container
