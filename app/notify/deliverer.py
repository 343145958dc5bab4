"""The notifier: claims due ``notices`` rows and sends them to PagerDuty or to a customer's
webhook; safe to run on any number of replicas.

**Claims.** One statement in one short transaction claims up to ``n`` due rows — ``pending``,
``next_attempt_at`` passed, not leased (``lease_until`` NULL or passed) and not waiting behind an
older notice (below) — setting ``lease_until`` = now + ``lease_s`` and ``attempts + 1``. On
PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so two replicas never take the
same row; SQLite has one writer. Times come from the database clock (:meth:`Database.now`).
The request is sent outside any transaction, through one shared HTTP session (10 s in all per
request); its outcome is written in a second transaction guarded by ``attempts`` (the claim's
fencing token), so a sender whose lease ran out and whose row was claimed again writes nothing.

**At least once, never after "sent".** A row marked ``sent`` is never claimed again. A crash
(or a lost database) between sending and marking leaves the lease to run out and the notice is
sent again: PagerDuty folds a repeated event into the incident of its ``dedup_key``, and a
webhook receiver sees the same ``X-Mhub-Delivery`` id again.

**Order per finding.** A notice is not sent while an older ``pending`` notice for the same
(destination, finding) exists, whatever its state (backing off, being sent): an acknowledge
never overtakes its trigger, a resolve never its acknowledge. An older notice that fails for
good stops holding the newer ones back.

**Outcomes.** 2xx: ``sent`` (``sent_at``). 429: again after ``Retry-After`` (seconds or a date;
meanwhile this process claims no other notice for that destination), else the backoff. 5xx,
408, timeouts and connection errors: again after ``backoff_base_s`` doubling with each attempt
(2, 4, 8 … s) up to ``backoff_cap_s`` (300 s), ±``jitter``, for as long as it takes (an
outage loses nothing), unless ``max_age_s`` is set. Any other answer (4xx, a redirect), a secret
variable unset or empty when sending, a customer no longer configured or no longer routing to
that destination: ``failed`` at once with ``last_error`` saying what to fix in plain words,
naming the *variable* (``PD_KEY_ACME``), never its value; ``next_attempt_at`` is then when it
failed (:func:`failures` reads them for the runboard and ``/readyz``).

**Logs.** One INFO line per delivery (notice id, destination, action, HTTP status), WARNING
for a notice that fails for good. Routing keys, webhook addresses, secrets and signatures are
never logged, at any level; text that came back from a destination is scrubbed of them too
before it is logged or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import and_, any_, exists, func, or_, select, type_coerce, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from app.catalog import Catalog
from app.config import LOOPBACK_HOSTS
from app.db import DB_TROUBLE, Database
from app.models import Notice, Stamp
from app.notify import pagerduty, webhooks
from app.notify.routes import PagerDutyTarget, Target, Unroutable, WebhookTarget, route

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
EVENTS_URL_VARIABLE = "HUB_PAGERDUTY_EVENTS_URL"
USER_AGENT = "MonitoringHub/1 (+notices)"
_READ_LIMIT = 4096


@dataclass(frozen=True)
class NotifyOptions:
    lease_s: float = 60.0
    """How long a claimed notice is left alone by other replicas while it is sent."""
    http_timeout_s: float = 10.0
    """Per request, connecting and answering included."""
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    jitter: float = 0.1
    """The backoff is stretched or shrunk by up to this fraction, so replicas spread out."""
    retry_after_cap_s: float = 3600.0
    """The longest ``Retry-After`` honoured."""
    max_age_s: float | None = None
    """A notice still failing this long after it was written gives up; None: never (an
    outage of PagerDuty or a receiver loses nothing, however long)."""
    concurrency: int = 8
    """Requests in flight at once, per notifier."""


@dataclass(frozen=True)
class Failure:
    """A notice refused for good: whose, where to, which action, why, when."""

    id: int
    customer_id: str
    destination: str
    action: str
    finding_id: int | None
    error: str
    at: datetime


@dataclass(frozen=True)
class _Outcome:
    kind: Literal["sent", "retry", "failed"]
    status: int | None = None
    """The HTTP status answered; None when there was no answer (or no request)."""
    error: str = ""
    retry_after: float | None = None
    asked: bool = True
    """False: the notice could not be sent at all (no request was made)."""


@dataclass(frozen=True)
class _Request:
    url: str
    body: bytes
    headers: dict[str, str]
    secrets: tuple[str, ...]
    """Values that must never reach a log line or ``last_error``."""


class Notifier:
    """Claims due notices and sends them; safe to run on any number of replicas."""

    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        environ: Mapping[str, str],
        pagerduty_url: str = pagerduty.EVENTS_URL,
        owner: str = "notifier",
        *,
        options: NotifyOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.catalog = catalog
        """The customers as they are now (a reload changes where notices go)."""
        self.environ = environ
        """Where the secret variables are read, when each notice is sent."""
        self.pagerduty_url = pagerduty_url
        self.owner = owner
        self.options = options or NotifyOptions()
        self.clock = clock
        """Unix seconds, for the webhooks' ``X-Mhub-Timestamp``."""
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._held: dict[tuple[str, str], float] = {}
        """(customer, destination) → when (monotonic) the ``Retry-After`` it was given ends:
        none of its notices is claimed in this process meanwhile."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (opened again on the next send)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def poke(self) -> None:
        """Notices were committed in this process: look now rather than at the next poll."""
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, poll_s: float = 1.0) -> None:
        """Deliver until ``stop``: up to ``concurrency`` notices in flight, topped up as each
        ends; otherwise asleep until a notice is due, :meth:`poke`, or ``poll_s`` (for notices
        other replicas wrote). In-flight requests get ``http_timeout_s`` to end after ``stop``."""
        tasks: set[asyncio.Task[bool]] = set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                free = self.options.concurrency - len(tasks)
                claimed = await self._fill(tasks, free) if free > 0 else 0
                nap = poll_s if claimed >= free else await self._idle_for(poll_s)
                waker = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait(
                        {stopping, waker, *tasks}, timeout=nap, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    waker.cancel()
        finally:
            stopping.cancel()
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=self.options.http_timeout_s + 1)
                for task in late:
                    task.cancel()  # its lease runs out and another claim sends it
                if late:
                    await asyncio.wait(late)
            await self.aclose()

    async def deliver_due(self, limit: int = 50) -> int:
        """Send what is due now (up to ``limit`` claims, ``concurrency`` at a time, including
        notices that become due because the one before them was sent) and wait for it.
        Each notice is tried at most once per call: one put back to retry with a short backoff
        waits for the next call, however long this one takes.
        Returns how many were sent or failed for good (not those put back to retry)."""
        done = 0
        tried: set[int] = set()
        while len(tried) < limit:
            notices = await self._claim(
                min(self.options.concurrency, limit - len(tried)), skip=tried
            )
            if not notices:
                break
            tried.update(n.id for n in notices)
            finished = await asyncio.gather(*(self._deliver(n) for n in notices))
            done += sum(finished)
        return done

    async def _fill(self, tasks: set[asyncio.Task[bool]], free: int) -> int:
        try:
            notices = await self._claim(free)
        except DB_TROUBLE as exc:
            log.warning("notices: cannot claim (%s); trying again shortly", type(exc).__name__)
            return 0
        for notice in notices:
            task = asyncio.create_task(self._deliver(notice), name=f"notice-{notice.id}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return len(notices)

    async def _idle_for(self, poll_s: float) -> float:
        """Seconds until the next notice may be claimed (at most ``poll_s``)."""
        due = aliased(Notice, name="due")
        later = type_coerce(
            func.max(due.next_attempt_at, func.coalesce(due.lease_until, due.next_attempt_at))
            if self.db.is_sqlite
            else func.greatest(due.next_attempt_at, due.lease_until),
            Stamp,
        )
        held = self._holding()
        query = select(func.min(later)).where(
            due.status == PENDING, ~_behind(due), *_not_held(due, held)
        )
        try:
            async with self.db.read() as session:
                soonest = (await session.execute(query)).scalar_one_or_none()
        except DB_TROUBLE:
            return poll_s
        if soonest is None:
            return poll_s
        if isinstance(soonest, str):  # SQLite may hand the aggregate back as text
            soonest = datetime.fromisoformat(soonest)
        if soonest.tzinfo is None:
            soonest = soonest.replace(tzinfo=UTC)
        gap = (soonest - datetime.now(UTC)).total_seconds()
        if held:
            gap = min(gap, min(held.values()) - time.monotonic())
        return min(poll_s, max(0.01, gap))

    # -- claiming -----------------------------------------------------------------------

    async def _claim(self, limit: int, skip: Collection[int] = ()) -> list[Notice]:
        """Lease up to ``limit`` due notices (none in ``skip``), oldest first, in one
        statement."""
        if limit <= 0:
            return []
        due = aliased(Notice, name="due")
        now = self.db.now()  # one expression: on SQLite two calls are two instants
        pick = (
            select(due.id)
            .where(
                due.status == PENDING,
                due.next_attempt_at <= now,
                or_(due.lease_until.is_(None), due.lease_until <= now),
                ~_behind(due),
                *_not_held(due, self._holding()),
                *([due.id.not_in(skip)] if skip else []),
            )
            .order_by(due.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=due)
        )
        picked = (
            Notice.id.in_(pick)
            if self.db.is_sqlite
            else Notice.id == any_(func.array(pick.scalar_subquery()))
        )
        async with self.db.write() as session:
            rows = (
                await session.execute(
                    update(Notice)
                    .where(
                        picked,
                        Notice.status == PENDING,
                        or_(Notice.lease_until.is_(None), Notice.lease_until <= now),
                    )
                    .values(
                        lease_until=self.db.now_plus(self.options.lease_s),
                        attempts=Notice.attempts + 1,
                    )
                    .returning(Notice)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
            notices = sorted(rows, key=lambda n: n.id)
        return notices

    # -- sending ------------------------------------------------------------------------

    async def _deliver(self, notice: Notice) -> bool:
        """Send one claimed notice and record how it went; True if it is now sent or failed."""
        secrets: tuple[str, ...] = ()
        try:
            try:
                target = route(self.catalog(), notice.customer_id, notice.destination)
                request = self._request(notice, target)
            except (Unroutable, _Refused) as refused:
                outcome = _Outcome("failed", error=str(refused), asked=False)
            else:
                secrets = request.secrets
                outcome = await self._send(request, target)
            return await self._record(notice, outcome, secrets)
        except asyncio.CancelledError:
            raise
        except DB_TROUBLE as exc:
            log.warning(
                "notice %s → %s %s: could not record the outcome (%s); it is tried again "
                "after its lease",
                notice.id, notice.destination, notice.action, type(exc).__name__,
            )  # fmt: skip
            return False
        except Exception as exc:
            # A bug, not the destination: logged (scrubbed), and the notice backs off like a
            # failed send rather than being retried at once.
            text = _scrub("".join(traceback.format_exception(exc)), secrets)
            log.error(
                "notice %s → %s %s: delivery crashed; it is tried again later\n%s",
                notice.id, notice.destination, notice.action, text,
            )  # fmt: skip
            crashed = _Outcome("retry", error=f"the hub crashed sending it ({type(exc).__name__})")
            with contextlib.suppress(Exception):
                return await self._record(notice, crashed, secrets)
            return False

    def _request(self, notice: Notice, target: Target) -> _Request:
        """The request for ``notice`` with its secrets read now; raises _Refused when it
        cannot be made (an unset variable, an address that is not one)."""
        payload = dict(notice.payload or {})
        if isinstance(target, PagerDutyTarget):
            key = self._secret(target.key_env, "the PagerDuty integration key (Events API v2)")
            try:
                event = pagerduty.event(notice.action, payload, key)
            except ValueError as exc:
                raise _Refused(f"notice {notice.id} cannot be sent to PagerDuty: {exc}") from None
            headers = {"Content-Type": "application/json"}
            return _Request(self.pagerduty_url, _json(event), headers, (key,))
        url = self._secret(target.url_env, f"the address of webhook {target.index}")
        secret = self._secret(target.secret_env, f"the signing secret of webhook {target.index}")
        try:
            parsed = urlsplit(url)
            host = parsed.hostname
        except ValueError:
            host = None
        if host is None or parsed.scheme not in ("http", "https") or "@" in parsed.netloc:
            raise _Refused(
                f"{target.url_env} does not hold a URL to post to; set it to the https:// "
                f"address of webhook {target.index}'s receiver, without user:password@"
            )
        if parsed.scheme == "http" and host not in LOOPBACK_HOSTS:
            raise _Refused(
                f"{target.url_env} is an http:// URL to another machine, which would send the "
                "finding unencrypted; set it to the receiver's https:// address"
            )
        content = webhooks.body(notice.action, payload)
        headers = webhooks.headers(notice.id, secret, content, int(self.clock()))
        signature = headers[webhooks.SIGNATURE_HEADER]
        hidden = (url, secret, signature, *((parsed.path,) if len(parsed.path) > 4 else ()))
        return _Request(url, content, headers, hidden)

    def _secret(self, variable: str, what: str) -> str:
        value = (self.environ.get(variable) or "").strip()
        if not value:
            raise _Refused(
                f"set {variable} to {what} in the hub's environment: it is unset or empty, "
                "so the notice was not sent"
            )
        return value

    async def _send(self, request: _Request, target: Target) -> _Outcome:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.options.http_timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
            )
        try:
            async with self._http.post(
                request.url, data=request.body, headers=request.headers, allow_redirects=False
            ) as response:
                text = (await response.content.read(_READ_LIMIT)).decode("utf-8", "replace")
                status = response.status
                retry_after = _retry_after(
                    response.headers.get("Retry-After"), self.options.retry_after_cap_s
                )
        except aiohttp.InvalidURL:
            variable = (
                EVENTS_URL_VARIABLE if isinstance(target, PagerDutyTarget) else target.url_env
            )
            return _Outcome("failed", error=f"{variable} does not hold a valid address; fix it")
        except TimeoutError:
            return _Outcome("retry", error=f"no answer within {self.options.http_timeout_s:g} s")
        except aiohttp.ClientConnectorError as exc:
            return _Outcome("retry", error=f"cannot connect ({type(exc).__name__})")
        except (aiohttp.ClientError, OSError) as exc:
            return _Outcome("retry", error=f"the connection failed ({type(exc).__name__})")
        return _judge(status, _scrub(text, request.secrets), retry_after, target)

    # -- recording ----------------------------------------------------------------------

    async def _record(self, notice: Notice, outcome: _Outcome, secrets: tuple[str, ...]) -> bool:
        """Write the outcome under the claim; True when the notice is now sent or failed."""
        error = _scrub(outcome.error, secrets)[:1000]
        kind = outcome.kind
        delay = 0.0
        if kind == "retry":
            age = (datetime.now(UTC) - notice.created_at).total_seconds()
            limit = self.options.max_age_s
            if limit is not None and age > limit:
                kind = "failed"
                error = f"gave up after {limit / 3600:g} h: {error}"
            else:
                delay = self._delay(notice.attempts, outcome.retry_after)
                if outcome.retry_after:
                    until = time.monotonic() + outcome.retry_after
                    self._held[(notice.customer_id, notice.destination)] = until
        values: dict[str, Any] = {"lease_until": None}
        if kind == "sent":
            values.update(status=SENT, sent_at=self.db.now(), last_error=None)
        elif kind == "failed":
            values.update(status=FAILED, last_error=error, next_attempt_at=self.db.now())
        else:
            values.update(last_error=error, next_attempt_at=self.db.now_plus(delay))
        async with self.db.write() as session:
            changed = (
                await session.execute(
                    update(Notice)
                    .where(
                        Notice.id == notice.id,
                        Notice.status == PENDING,
                        Notice.attempts == notice.attempts,
                    )
                    .values(**values)
                    .returning(Notice.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none() is not None
        code = outcome.status or ("no answer" if outcome.asked else "not sent")
        where = (notice.id, notice.destination, notice.action, code)
        if not changed:
            log.warning(
                "notice %s → %s %s: %s; the claim was lost meanwhile (%s), another sender "
                "records it",
                *where, self.owner,
            )  # fmt: skip
            return False
        if kind == "sent":
            log.info("notice %s → %s %s: %s, sent (attempt %s)", *where, notice.attempts)
            if notice.finding_id is not None or notice.sight_id is not None:
                self.poke()  # the notice behind it may go now
        elif kind == "failed":
            log.warning("notice %s → %s %s: %s, failed for good: %s", *where, error)
            if notice.finding_id is not None or notice.sight_id is not None:
                self.poke()
        else:
            log.info("notice %s → %s %s: %s, %s; next try in %.1f s", *where, error, delay)
        return kind != "retry"

    def _holding(self) -> dict[tuple[str, str], float]:
        """The destinations still inside a ``Retry-After`` they were given (others dropped)."""
        now = time.monotonic()
        self._held = {pair: until for pair, until in self._held.items() if until > now}
        return self._held

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after:
            return retry_after
        options = self.options
        delay = options.backoff_base_s * 2.0 ** min(max(attempts - 1, 0), 30)
        delay *= random.uniform(1 - options.jitter, 1 + options.jitter)
        return min(options.backoff_cap_s, delay)


class _Refused(Exception):
    """The notice cannot be sent and retrying will not help; the message says what to fix."""


def _behind(due: Any) -> ColumnElement[bool]:
    """``due`` waits behind an older pending notice for the same destination and finding (or
    blind spot)."""
    older = aliased(Notice, name="older")
    return exists().where(
        older.status == PENDING,
        older.destination == due.destination,
        or_(older.finding_id == due.finding_id, older.sight_id == due.sight_id),
        older.id < due.id,
    )


def _not_held(due: Any, held: Mapping[tuple[str, str], float]) -> list[ColumnElement[bool]]:
    """``due`` is not for a destination inside its ``Retry-After``."""
    return [
        ~and_(due.customer_id == customer, due.destination == destination)
        for customer, destination in held
    ]


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _judge(status: int, text: str, retry_after: float | None, target: Target) -> _Outcome:
    """What an HTTP answer means for the notice."""
    if 200 <= status < 300:
        return _Outcome("sent", status)
    if status == 429:
        return _Outcome("retry", status, "rate limited (429)", retry_after)
    if status >= 500 or status == 408:
        return _Outcome("retry", status, f"HTTP {status}", retry_after)
    if isinstance(target, PagerDutyTarget):
        said = pagerduty.refusal(text)
        if status == 400:
            error = (
                f"PagerDuty refused the event (400: {said or 'no reason given'}): check the "
                f"integration key in {target.key_env}"
            )
        else:
            error = (
                f"PagerDuty refused the event (HTTP {status}{': ' + said if said else ''}): check "
                f"the integration key in {target.key_env} and the address in "
                f"{EVENTS_URL_VARIABLE}"
            )
        return _Outcome("failed", status, error)
    return _Outcome("failed", status, _webhook_refusal(status, text, target))


def _webhook_refusal(status: int, text: str, target: WebhookTarget) -> str:
    hook = f"webhook {target.index}"
    said = " ".join(text.split())[:120]
    said = f" (it said: {said})" if said else ""
    if status == 410:
        return (
            f"the receiver of {hook} answered 410 Gone{said}: it takes no more notices; point "
            f"{target.url_env} at its new address, or remove {hook} from routing.webhooks"
        )
    if status in (401, 403):
        return (
            f"the receiver of {hook} refused the signature ({status}){said}: check that "
            f"{target.secret_env} holds the secret the receiver expects"
        )
    if status == 404:
        return f"the receiver of {hook} answered 404{said}: check the address in {target.url_env}"
    if 300 <= status < 400:
        return (
            f"the receiver of {hook} redirected ({status}); set {target.url_env} to the address "
            "it redirects to (redirects are not followed)"
        )
    return (
        f"the receiver of {hook} refused the notice ({status}){said}: check {target.url_env} "
        f"and {target.secret_env}, and the receiver's log"
    )


def _retry_after(value: str | None, cap_s: float) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), at most ``cap_s``; None if absent
    or unreadable."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        seconds = float(value.strip())
        return min(cap_s, max(0.0, seconds)) if seconds == seconds else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(cap_s, max(0.0, (when - datetime.now(UTC)).total_seconds()))


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first)."""
    for secret in sorted((s for s in secrets if s and s != "/"), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


async def failures(db: Database, since: datetime, limit: int = 20) -> list[Failure]:
    """Notices refused for good since ``since``, the latest first (a range of
    ``ix_notices_due``: a failed notice's ``next_attempt_at`` is when it failed)."""
    query = (
        select(
            Notice.id,
            Notice.customer_id,
            Notice.destination,
            Notice.action,
            Notice.finding_id,
            Notice.last_error,
            Notice.next_attempt_at,
        )
        .where(Notice.status == FAILED, Notice.next_attempt_at >= since)
        .order_by(Notice.next_attempt_at.desc(), Notice.id.desc())
        .limit(limit)
    )
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [
        Failure(id_, customer, destination, action, finding, error or "unknown", at)
        for id_, customer, destination, action, finding, error, at in rows
    ]


async def failed_count(db: Database, since: datetime) -> int:
    """How many notices were refused for good since ``since``."""
    query = select(func.count()).where(Notice.status == FAILED, Notice.next_attempt_at >= since)
    async with db.read() as session:
        return int((await session.execute(query)).scalar_one())
