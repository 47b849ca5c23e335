"""Clients of vendor APIs that Jobyard speaks, shipped with it: :mod:`.tensorone`
(``TensorOneClient``, the SDK surface of TensorOne's job-status page)."""
