"""The daemon's plug-ins: attempt hooks (``daemon/hooks.py``) built by ``runtime.attempt_hooks``.

sampler.py (process-tree and GPU samples, cost, budgets) · tqdm_watch.py (progress off tqdm
bars) · outputs.py (an attempt's output files) · mounts.py (attached volumes inside jobs on
clusters) · teardown.py (release the cluster a job asked to tear down). Each imports only
``daemon/hooks.py`` of the daemon, and is given what it needs by its constructor.
"""
