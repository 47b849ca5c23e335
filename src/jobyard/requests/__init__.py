"""Carrying out async requests: the processor loop and the handlers of each request type."""
