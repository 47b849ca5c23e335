"""The one configuration object: defaults, then an optional TOML file, then ``JOBYARD_*`` env.

Built once per process by :func:`load_config` and passed down; nothing else reads the
environment for settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBYARD_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8750
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".jobyard")
    # Defaults to a SQLite file in data_dir; set a postgresql:// URL to scale out.
    database_url: str | None = None
    # When the store is new, make this exact key the admin key (deployment scripts).
    bootstrap_admin_key: str | None = None
    # URL that jobs and printed examples use to reach this server; defaults from host/port.
    public_url: str | None = None

    # Inventory. None means "detect": NVML for GPUs, the machine for CPUs and memory.
    virtual_gpus: int | None = None
    cpus: float | None = None
    memory_mb: int | None = None

    # Executor.
    log_cap_bytes: int = 10 * 1024 * 1024
    kill_grace_s: float = 5.0
    # With NVML: after a cancel or timeout, wait up to this long for the job's GPUs to be free.
    gpu_release_timeout_s: float = 30.0

    # Scheduler: how often the daemon looks even without a wake-up (other replicas, retries).
    tick_interval_s: float = 0.5

    # Limits on what a request may carry.
    max_request_bytes: int = 1024 * 1024
    max_command_chars: int = 65536
    max_env_vars: int = 256
    max_env_bytes: int = 65536

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'jobyard.db'}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.public_url or f"http://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("JOBYARD_CONFIG")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_config(**overrides: Any) -> Config:
    """Build the config: explicit overrides win over env, env over the TOML file."""
    return Config(**{k: v for k, v in overrides.items() if v is not None})
