"""Signed webhooks: what a customer's receiver gets for each notice, and how it checks that
the hub sent it.

**The request.** ``POST`` to the address in the customer's ``url_env`` variable, with the body
the JSON of ``{"action": <trigger|acknowledge|resolve>, **payload}`` (the notice's payload:
customer, account, region, check, resource, fingerprint, severity, state, summary, first and
last seen, run id, ``dedup_key``, who answered, links), written compactly (no spaces) with its
keys sorted, in UTF-8, and these headers:

- ``Content-Type: application/json``
- ``X-Mhub-Timestamp``: when it was signed, in whole seconds since the Unix epoch;
- ``X-Mhub-Delivery``: the notice's id. A notice whose answer was lost is sent again with the
  same id (the hub is at-least-once), so a receiver that must act once keeps the ids it has
  seen; ``dedup_key`` in the body names the finding across notices;
- ``X-Mhub-Signature-256``: ``sha256=`` and the lower-case hex HMAC-SHA256, keyed with the
  secret in the customer's ``secret_env`` variable (its UTF-8 bytes), of the timestamp, a dot
  and the body exactly as received: ``f"{timestamp}.".encode() + body``.

**Checking it.** Recompute the HMAC over the raw body (before any JSON parsing), compare it in
constant time, and refuse a timestamp more than five minutes from your clock (a replayed
request): :func:`verify` does all three. Answer 2xx to take the notice; 429 (with
``Retry-After`` in seconds) or 5xx to have it sent again later; 410 when the endpoint is gone
for good. Any other 4xx fails the notice for good, shown on the hub's runboard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-Mhub-Signature-256"
TIMESTAMP_HEADER = "X-Mhub-Timestamp"
DELIVERY_HEADER = "X-Mhub-Delivery"
PREFIX = "sha256="
TOLERANCE_S = 300.0
"""How far a timestamp may be from the receiver's clock (either way) by default."""


def body(action: str, payload: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON with sorted keys, UTF-8."""
    document = {"action": action, **payload}
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: int | str, content: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + content, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def headers(notice_id: int, secret: str, content: bytes, timestamp: int) -> dict[str, str]:
    """Every header of the request carrying ``content`` (a secret: never log them)."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: str(notice_id),
        SIGNATURE_HEADER: sign(secret, timestamp, content),
    }


def verify(
    secret: str,
    timestamp: int | str | None,
    content: bytes,
    signature: str | None,
    *,
    tolerance_s: float | None = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Did the holder of ``secret`` sign ``content`` at ``timestamp``, within ``tolerance_s`` of
    ``now`` (the receiver's clock; None for ``tolerance_s``: any time)? Compared in constant
    time; any malformed header is False, never an exception."""
    if not secret or timestamp is None or signature is None:
        return False
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    if tolerance_s is not None:
        clock = time.time() if now is None else now
        if abs(clock - int(stamp)) > tolerance_s:
            return False
    expected = sign(secret, stamp, content)
    return hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace"))
