"""``jobyard.sdk.job`` is :mod:`jobyard.job`: reporting from inside a job.

The code lives in :mod:`jobyard.job` because importing ``jobyard.sdk`` pulls in the HTTP client
(httpx); a job that only reports should not pay for that. Import ``jobyard.job`` in jobs.
"""

from jobyard.job import flush, metric, output, progress, substate

__all__ = ["flush", "metric", "output", "progress", "substate"]
