"""Readable random identifiers with no confusable characters."""

from __future__ import annotations

import hashlib
import secrets

# Lower-case base32 without 0/1/l/o: ids survive being read aloud or typed by hand.
_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"


def random_token(length: int) -> str:
    # 32 symbols divide 256 evenly, so taking each random byte modulo 32 is unbiased.
    return "".join(_ALPHABET[b % 32] for b in secrets.token_bytes(length))


def job_uid() -> str:
    """A new string job id, e.g. ``job_k3n9x2m4p7q8``."""
    return "job_" + random_token(12)


def request_uid() -> str:
    """A new async request id, e.g. ``req_k3n9x2m4p7q8``."""
    return "req_" + random_token(12)


def volume_uid() -> str:
    """A new storage volume id, e.g. ``vol_k3n9x2m4p7q8``."""
    return "vol_" + random_token(12)


def api_key() -> str:
    """A new API key secret (shown once, stored only as a hash)."""
    return "jy_" + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    """What the store keeps of an API key: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def cluster_uid() -> str:
    """A new cluster id, e.g. ``clu_k3n9x2m4p7q8``."""
    return "clu_" + random_token(12)
