"""Why a check could not look, as one small tree::

    CheckError                 a check could not look; becomes an ``error`` result
    ├── PermanentError         retrying will not help (access denied, role not assumable)
    └── TransientError         retrying may help (throttling, timeouts, 5xx)

The message says what to do; the retry policy (:mod:`app.engine.retry`) reads ``permanent``.
"""

from __future__ import annotations


class CheckError(Exception):
    """A check could not look. The message says what to do; it becomes an ``error`` result."""

    permanent: bool = False


class PermanentError(CheckError):
    permanent = True


class TransientError(CheckError):
    permanent = False
