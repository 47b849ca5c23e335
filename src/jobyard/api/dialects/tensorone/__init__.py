"""The TensorOne dialect: job status (one, a batch, an SSE stream) and endpoint runs under
``/v2``, with TensorOne's field names, states and error envelopes. See ``docs/tensorone.md``."""
