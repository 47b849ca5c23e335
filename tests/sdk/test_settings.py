"""URL and key resolution: args, then env, then the config file; no server needed."""

from __future__ import annotations

import stat

import pytest

import jobyard
from jobyard.errors import Unauthorized
from jobyard.sdk import settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.delenv(settings.URL_ENV, raising=False)
    monkeypatch.delenv(settings.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return monkeypatch


def test_resolution_order_and_config_file(clean_env: pytest.MonkeyPatch, tmp_path) -> None:
    # Nothing anywhere: the default URL, and a clear error for the key.
    assert settings.resolve_url() == settings.DEFAULT_URL
    with pytest.raises(Unauthorized, match="jobyard login"):
        settings.resolve()
    with pytest.raises(Unauthorized):
        jobyard.Client()

    path = settings.write_config("http://file:1/", 'jy_"file"\\key')
    assert path == tmp_path / "xdg" / "jobyard" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.read_config() == {"url": "http://file:1/", "api_key": 'jy_"file"\\key'}
    assert settings.resolve() == settings.Settings("http://file:1", 'jy_"file"\\key')

    # An existing, looser file is tightened on rewrite.
    path.chmod(0o644)
    settings.write_config("http://file:2", "jy_file2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    clean_env.setenv(settings.URL_ENV, "http://env:1")
    clean_env.setenv(settings.KEY_ENV, "jy_env")
    assert settings.resolve() == settings.Settings("http://env:1", "jy_env")
    assert settings.resolve("http://arg:1", "jy_arg") == settings.Settings("http://arg:1", "jy_arg")
    with jobyard.Client() as client:
        assert (client.url, client.api_key) == ("http://env:1", "jy_env")


def test_default_config_location(clean_env: pytest.MonkeyPatch, tmp_path) -> None:
    clean_env.delenv("XDG_CONFIG_HOME")
    clean_env.setenv("HOME", str(tmp_path))
    assert settings.config_path() == tmp_path / ".config" / "jobyard" / "config.toml"
    assert settings.read_config() == {}
