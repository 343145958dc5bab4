"""Why a check could not look, as one small tree::

    CheckError                 a check could not look; becomes an ``error`` result
    ├── PermanentError         retrying will not help (access denied, role not assumable)
    └── TransientError         retrying may help (throttling, timeouts, 5xx)

The message says what to do; the retry policy (:mod:`app.engine.retry`) reads ``permanent``.
Each error also says why in a word a machine can read (:class:`Reason`), the AWS call it was
making when it knows it (``call``, as IAM spells the action: ``backup:ListBackupJobs``) and the
error code AWS answered (``code``): blind spots (:mod:`app.engine.blind`) are kept from them.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a check could not look."""

    ROLE = "role"
    """Could not get into the account: the role cannot be assumed, no credentials, no profile."""
    ACCESS = "access"
    """Got in, but a call was refused (``call`` names it)."""
    THROTTLED = "throttled"
    """AWS kept throttling the calls, retries included."""
    SUBSCRIPTION = "subscription"
    """The account is not subscribed (or opted in) to the service."""
    TIMEOUT = "timeout"
    """AWS did not answer in time, or could not be reached."""
    REGION = "region"
    """The region is not enabled for the account (an opt-in region not opted in)."""
    OTHER = "other"
    """Anything else: a 5xx, a bad parameter, a bug in the check, invalid settings."""


class CheckError(Exception):
    """A check could not look. The message says what to do; it becomes an ``error`` result."""

    permanent: bool = False
    retried: bool = False
    """The failing call was already retried where it was made (botocore's standard retries,
    ``checks.aws``): the retry policy does not try the whole check again."""

    def __init__(
        self,
        message: str,
        *,
        reason: Reason = Reason.OTHER,
        call: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.call = call
        """The AWS call being made, as IAM names it (``backup:ListBackupJobs``), when known."""
        self.code = code
        """The error code AWS answered (``AccessDeniedException``), when there was one."""


class PermanentError(CheckError):
    permanent = True


class TransientError(CheckError):
    permanent = False
