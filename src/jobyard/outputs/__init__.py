"""A job's outputs: the files it leaves in ``JOBYARD_OUTPUT_DIR``, collected when it ends."""
