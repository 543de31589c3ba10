"""`vcmd` / `python -m vcm.entrypoints.daemon`: serve the vcm protocol until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import ssl
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from vcm.domain.errors import StateError
from vcm.entrypoints.container import Container, bootstrap
from vcm.entrypoints.settings import Driver, Settings, config_file

log = logging.getLogger("vcm.daemon")


class StartupError(Exception):
    pass


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as error:
        lines = [
            f"bad setting VCM_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            + (
                f" (got {e['input']!r})"
                if "input" in e and not isinstance(e["input"], dict)
                else ""
            )
            for e in error.errors()
        ]
        raise StartupError(f"{'; '.join(lines)} [config file: {config_file()}]") from error
    except SettingsError as error:
        raise StartupError(f"bad setting: {error}") from error
    if settings.auth_token is None and not _is_loopback(settings.host):
        raise StartupError(
            f"refusing to listen on {settings.host} without VCM_AUTH_TOKEN: anyone who can "
            "reach it could run scripts on your VMs; set a token or listen on 127.0.0.1"
        )
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(container: Container, settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; return how many commands were left running."""
    try:
        server = container.server()
    except (OSError, ssl.SSLError) as error:
        raise StartupError(f"cannot load VCM_TLS_CERT/VCM_TLS_KEY: {error}") from error
    try:
        await server.start()
    except OSError as error:
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {error}") from error
    host, port = server.address
    log.info(
        "vcm listening on %s:%d (driver %s, state %s%s)",
        host,
        port,
        settings.driver,
        settings.state_file,
        ", TLS" if settings.tls_cert else "",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    reconciling = loop.run_in_executor(None, _reconcile, container)
    await stopping.wait()
    log.info(
        "stopping: no new connections; waiting up to %.0f s for running commands",
        settings.shutdown_grace,
    )
    left = await server.stop(settings.shutdown_grace)
    if not reconciling.done():
        log.info("reconciliation still running; it resumes at the next start")
    return left


def _reconcile(container: Container) -> None:
    changes = container.service().reconcile()
    for change in changes:
        log.warning("reconciled %s", change)
    log.info("reconciled state with the backend: %d changes", len(changes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vcmd",
        description="The vcm daemon. Configure it with VCM_* variables or $VCM_CONFIG_FILE "
        "(default /etc/vcm/vcm.toml); see README.md.",
    )
    parser.parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if settings.driver == Driver.SIMULATED:
            log.warning("SIMULATED backend: no real VMs are created (VCM_DRIVER=simulated)")
        container = bootstrap(settings)
        try:
            container.service()
            container.operations()
        except StateError as error:
            raise StartupError(str(error)) from error
        gc.freeze()  # the loaded state lives long: keep it out of every full collection
        left = asyncio.run(serve(container, settings))
    except StartupError as error:
        print(f"vcmd: {error}", file=sys.stderr)
        return 1
    if left:
        log.warning(
            "vcm stopped with %d commands interrupted; the next start reconciles them", left
        )
        logging.shutdown()
        os._exit(0)
    log.info("vcm stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
