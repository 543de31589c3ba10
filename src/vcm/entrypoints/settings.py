"""Settings from VCM_* environment variables and an optional TOML file."""

from __future__ import annotations

import enum
import os
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vcm.domain.allocation import is_dns_name

DEFAULT_CONFIG_FILE = Path("/etc/vcm/vcm.toml")


class Driver(enum.StrEnum):
    VAGRANT = "vagrant"
    SIMULATED = "simulated"


class Provider(enum.StrEnum):
    DOCKER = "docker"
    LXC = "lxc"
    VIRTUALBOX = "virtualbox"
    LIBVIRT = "libvirt"


def _default_state_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "vcm"


def config_file() -> Path:
    return Path(os.environ.get("VCM_CONFIG_FILE", str(DEFAULT_CONFIG_FILE)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VCM_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(12121, ge=0, le=65535)
    state_dir: Path = Field(default_factory=_default_state_dir)
    driver: Driver = Driver.VAGRANT
    provider: Provider | None = None
    ip_pool: IPv4Network = IPv4Network("192.168.33.0/24")
    domain: str = "example.com"
    files_root: Path | None = None
    lxc_bridge: str = "vlxcbr1"
    guest: str | None = None
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    workers: int = Field(64, ge=1, le=1024)
    parallel_all: int = Field(4, ge=1, le=64)
    up_timeout: float = Field(900.0, gt=0)
    command_timeout: float = Field(300.0, gt=0)
    box_add_timeout: float = Field(300.0, gt=0)
    shutdown_grace: float = Field(60.0, ge=0)
    simulated_delay: float = Field(0.0, ge=0)
    simulated_boxes: list[str] = []
    simulated_failing_boxes: list[str] = []
    auth_token: SecretStr | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_connections: int = Field(256, ge=1, le=100_000)
    idle_timeout: float = Field(300.0, gt=0)
    watch_buffer: int = Field(1000, ge=1, le=1_000_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("domain")
    @classmethod
    def _domain_is_dns(cls, value: str) -> str:
        value = value.lower().rstrip(".")
        if not is_dns_name(value):
            raise ValueError(f"{value!r} is not a DNS name")
        return value

    @field_validator("ip_pool")
    @classmethod
    def _pool_has_room(cls, value: IPv4Network) -> IPv4Network:
        if value.num_addresses < 8:
            raise ValueError("the pool needs at least a /29")
        return value

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("VCM_TLS_CERT and VCM_TLS_KEY go together: set both or neither")
        return self

    @field_validator(
        "provider", "guest", "files_root", "auth_token", "tls_cert", "tls_key", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml, file_secret_settings)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def operations_file(self) -> Path:
        return self.state_dir / "operations.json"

    @property
    def machines_dir(self) -> Path:
        return self.state_dir / "machines"
