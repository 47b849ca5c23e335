"""The client tests use the TensorOne tests' shared server (one per backend and process)."""

from tests.api.dialects.tensorone.conftest import backend, release, server  # noqa: F401
