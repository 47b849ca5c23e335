"""Where the SDK and CLI find the server URL and the API key.

Resolution order, first found wins:

1. explicit arguments (``Client(url=..., api_key=...)``, ``jobyard --url/--api-key``);
2. the environment: ``JOBYARD_URL`` and ``JOBYARD_API_KEY``;
3. the config file written by ``jobyard login``: ``$XDG_CONFIG_HOME/jobyard/config.toml``
   (default ``~/.config/jobyard/config.toml``), keys ``url`` and ``api_key``;
4. the URL defaults to ``http://127.0.0.1:8750``; a missing key is an error.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobyard.errors import JobyardError, Unauthorized

__all__ = ["DEFAULT_URL", "KEY_ENV", "URL_ENV", "Settings", "config_path", "read_config",
           "resolve", "resolve_url", "write_config"]

DEFAULT_URL = "http://127.0.0.1:8750"
URL_ENV = "JOBYARD_URL"
KEY_ENV = "JOBYARD_API_KEY"


@dataclass(frozen=True, slots=True)
class Settings:
    url: str
    api_key: str


def config_path() -> Path:
    """The config file ``jobyard login`` writes (whether or not it exists)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jobyard" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config file as a dict; empty when it does not exist."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise JobyardError(f"invalid config file {path}: {exc}") from exc


def _toml_string(value: str) -> str:
    # JSON's escapes (\", \\, \n, \uXXXX) are all valid in a TOML basic string.
    return json.dumps(value)


def write_config(url: str, api_key: str, path: Path | None = None) -> Path:
    """Write ``url`` and ``api_key`` to the config file, readable by its owner only (0600)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = f"url = {_toml_string(url)}\napi_key = {_toml_string(api_key)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


def resolve_url(url: str | None = None) -> str:
    """The server URL: argument, else ``JOBYARD_URL``, else the config file, else the default."""
    resolved = url or os.environ.get(URL_ENV) or read_config().get("url") or DEFAULT_URL
    return str(resolved).rstrip("/")


def resolve(url: str | None = None, api_key: str | None = None) -> Settings:
    """Resolve the URL and the API key; raise :class:`Unauthorized` when no key is found."""
    key = api_key or os.environ.get(KEY_ENV) or read_config().get("api_key")
    if not key:
        raise Unauthorized(
            f"no API key: pass api_key=/--api-key, set {KEY_ENV}, or run `jobyard login`"
        )
    return Settings(url=resolve_url(url), api_key=str(key))
