"""Carrying out async operations: the processor loop and the handlers of each operation type."""
