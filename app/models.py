"""Tables: runs, per-target results, the append-only run events, and the Slack outbox.

The schema itself is owned by the Alembic migrations in ``app/migrations``; these classes are
how the code reads and writes it. A test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every back end (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Stamp = UtcDateTime()


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class Source(StrEnum):
    SLASH = "slash"
    MODAL = "modal"
    BUTTON = "button"
    SCHEDULE = "schedule"
    CLI = "cli"
    WEB = "web"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: Stamp,
    }


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    targets: Mapped[list[Any]] = mapped_column(JSON)
    """``[{"account": "arbel", "check": "rds"}, ...]``, fixed at submit time."""
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``{"window_s": 43200}`` and other run parameters."""
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED)
    outcome: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    cancel_requested_by: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    retry_of: Mapped[int | None] = mapped_column(BigId, ForeignKey("runs.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_runs_status_id", "status", "id"),
        Index("ix_runs_customer_id", "customer_id", "id"),
        Index("ix_runs_customer_created", "customer_id", "created_at"),  # reports: a month
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_outcome_id", "outcome", "id"),  # web: /runs?outcome=… keyset pages
        Index("ix_runs_retry_of", "retry_of"),  # retention: the retries of a pruned run
    )


class ShardStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


OPEN_SHARD_STATUSES = frozenset({ShardStatus.QUEUED, ShardStatus.RUNNING})


class RunShard(Base):
    """A slice of a large run's targets: the unit any replica claims (``app.engine.shards``).
    The run itself (its card, digest and end) stays one row, owned by one replica."""

    __tablename__ = "run_shards"

    run_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    targets: Mapped[list[Any]] = mapped_column(JSON)
    """``[{"account": "arbel", "check": "rds"}, ...]``: this shard's slice of the run's."""
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ShardStatus.QUEUED)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(128))
    """The executor that finished it (``host:pid:random``), or ``sweeper:…`` after it gave up."""
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_run_shards_status", "status", "run_id"),)


class Result(Base):
    __tablename__ = "results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("runs.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(64))
    check: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    series: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_results_target", "run_id", "account", "check", unique=True),
        Index("ix_results_check_run", "check", "run_id"),  # web: /runs?check=… pages
        Index("ix_results_check_severity_run", "check", "severity", "run_id"),  # …&outcome=…
    )


class RunEvent(Base):
    """Append-only timeline of a run; with ``run_id`` NULL it is an audit row."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("runs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_run_events_run", "run_id", "id"),
        # The live-update token: the newest event that is not a web read (app.engine.runboard).
        Index(
            "ix_run_events_changes",
            "id",
            sqlite_where=text("type != 'read'"),
            postgresql_where=text("type != 'read'"),
        ),
        # Retention: audit rows by age (app.engine.retention).
        Index(
            "ix_run_events_audit",
            "created_at",
            sqlite_where=text("run_id IS NULL"),
            postgresql_where=text("run_id IS NULL"),
        ),
    )


class Outbox(Base):
    """Slack deliveries waiting to be sent; one row per message (post once, then update)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    message_ts: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    sent_version: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_run", "run_id"),  # retention: a pruned run's rows
    )


class Finding(Base):
    """One problem a check reported about one resource of one customer, kept across runs by
    its ``fingerprint`` (see :mod:`app.engine.findings`)."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(1024))
    account: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64))
    check: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(1024))
    severity: Mapped[str] = mapped_column(String(16))
    """The last severity it was seen with (warn or crit)."""
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    """``open`` while the last look saw it, ``resolved`` once a look did not."""
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    """When a look last saw it (the result's finish time)."""
    resolved_at: Mapped[datetime | None]
    last_run_id: Mapped[int] = mapped_column(BigId)
    """The run that last saw it."""
    looked_run_id: Mapped[int] = mapped_column(BigId)
    """The run that last decided about it (saw it, or looked and did not): the newest run's
    look stands, whatever order results are recorded in."""
    returns: Mapped[int] = mapped_column(Integer, default=0)
    """How many times it came back after it was resolved."""
    history: Mapped[str] = mapped_column(String(16), default="")
    """Its recent looks, oldest first: ``1`` seen, ``0`` resolved (at most ``HISTORY``)."""
    ack_by: Mapped[str | None] = mapped_column(String(128))
    """Who acknowledged it ("I'm on it"); cleared when it resolves."""
    ack_at: Mapped[datetime | None]
    snooze_by: Mapped[str | None] = mapped_column(String(128))
    """Who snoozed it; kept after the snooze ends so it can come back marked as such, cleared
    when it resolves or is answered again."""
    snooze_at: Mapped[datetime | None]
    snooze_until: Mapped[datetime | None]
    """When the snooze ends (None while snoozed: until it resolves)."""
    snooze_reason: Mapped[str | None] = mapped_column(Text)
    snooze_severity: Mapped[str | None] = mapped_column(String(16))
    """Its severity when snoozed: worse than that, the snooze ends at once."""
    answers: Mapped[int] = mapped_column(Integer, default=0)
    """How many answers it has had: an answer applies only to the version it was given on, so
    of two people answering at once one wins and the other is told who did."""
    routed: Mapped[str | None] = mapped_column(String(16))
    """The worst severity it was sent out at (PagerDuty, webhooks) since it last opened; None:
    not sent, or resolved or muted since (see :mod:`app.engine.alerts`)."""
    told: Mapped[str | None] = mapped_column(String(32))
    """What its thread in the customer's alerts channel last said (``crit:open``,
    ``warn:acknowledged``, ``muted``, ``resolved``…); None: it has no thread."""

    __table_args__ = (
        Index("uq_findings_fingerprint", "customer_id", "fingerprint", unique=True),
        Index("ix_findings_open", "customer_id", "status", "account", "check"),
        Index("ix_findings_resolved", "customer_id", "status", "resolved_at"),
    )


class Mute(Base):
    """A suppression rule made from Slack or the CLI (rules in a customer's YAML are read from
    the configuration): the findings it matches are counted, never listed as problems."""

    __tablename__ = "mutes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    check: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(64))
    """None: every account of the customer."""
    region: Mapped[str | None] = mapped_column(String(64))
    """None: every region."""
    resource: Mapped[str] = mapped_column(String(1024))
    """A glob over the resource label or the fingerprint."""
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(128))
    until: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    ended_by: Mapped[str | None] = mapped_column(String(128))
    """Who unmuted it (an unmuted rule stays for the record)."""
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_mutes_customer", "customer_id", "ended_at"),)


class Notice(Base):
    """A change of a finding sent outside Slack (PagerDuty, a webhook): written in the
    transaction that makes the change, sent by :mod:`app.notify` until the destination takes it
    (see docs/routing.md). One row per destination and transition: ``dedupe_key`` keeps a
    transition from being queued twice, whichever replica decides it."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    destination: Mapped[str] = mapped_column(String(32))
    """``pagerduty``, or ``webhook:N`` (the Nth of the customer's ``routing.webhooks``, from 0)."""
    action: Mapped[str] = mapped_column(String(16))
    """``trigger``, ``acknowledge`` or ``resolve`` (PagerDuty's event actions)."""
    finding_id: Mapped[int | None] = mapped_column(BigId)
    sight_id: Mapped[int | None] = mapped_column(BigId)
    """The blind spot (``sights`` row) it is about, when it is not about a finding."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What is sent, less the secrets (read from the environment when sending)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending`` (due at ``next_attempt_at``), ``sent``, or ``failed`` (refused for good)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    """While a replica is sending it: others leave it alone until then."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_notices_due", "status", "next_attempt_at"),)


class ChannelPace(Base):
    """When a Slack channel may next be sent an alert message (at most one a second per
    channel, whichever replica sends it: a guarded update takes the turn)."""

    __tablename__ = "channel_paces"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[datetime]


class Maintenance(Base):
    """A maintenance window started from Slack or the CLI (windows in a customer's YAML are
    read from the configuration): findings in its scope are labelled, not routed, and do not
    raise an outcome while it lasts."""

    __tablename__ = "maintenance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    accounts: Mapped[list[Any] | None] = mapped_column(JSON)
    """Account aliases; None: every account of the customer."""
    checks: Mapped[list[Any] | None] = mapped_column(JSON)
    """Check kinds; None: every check."""
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    ended_by: Mapped[str | None] = mapped_column(String(128))
    """Who ended it early (an ended window stays for the record)."""
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_maintenance_customer", "customer_id", "ends_at"),)


class Sight(Base):
    """How one (account, check) of a customer last fared at looking: when it last looked
    successfully, and how many looks in a row could not, and why. One that cannot look for
    2 looks in a row or 24 h is a blind spot (:mod:`app.engine.blind`)."""

    __tablename__ = "sights"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    check: Mapped[str] = mapped_column(String(32))
    last_ok_at: Mapped[datetime | None]
    """When a look last succeeded; None: never yet."""
    failed: Mapped[int] = mapped_column(Integer, default=0)
    """Looks in a row that could not look (0: the last one could)."""
    failing_since: Mapped[datetime | None]
    """When the first of those failed looks was made."""
    reason: Mapped[str | None] = mapped_column(String(32))
    """Why the last look could not: ``role``, ``access``, ``throttled``, ``subscription``,
    ``timeout``, ``region``, ``other``."""
    detail: Mapped[str | None] = mapped_column(Text)
    """What the check said, including which call was refused."""
    looked_at: Mapped[datetime]
    looked_run_id: Mapped[int] = mapped_column(BigId)
    """The run that last looked: an older run recorded later changes nothing."""
    routed: Mapped[str | None] = mapped_column(String(16))
    """``crit`` once it was sent out as a blind spot; None: not sent, or seeing again since."""
    told: Mapped[str | None] = mapped_column(String(32))
    """What its thread in the alerts channel last said; None: no thread."""

    __table_args__ = (Index("uq_sights_target", "customer_id", "account", "check", unique=True),)


class ApiToken(Base):
    """A token for automation (``mhub token create``; docs/api.md): the customers it may see,
    what it may do, and the digest of its secret — never the secret itself."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    """Audit rows name it (``token:<name>``), so a name is never reused, even once revoked."""
    customers: Mapped[list[Any]] = mapped_column(JSON)
    """The customer ids it may see."""
    scope: Mapped[str] = mapped_column(String(8))
    """``read`` (runs, findings, reports) or ``run`` (also start, cancel and retry runs)."""
    digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the secret. The secret is 256 random bits (``secrets.token_urlsafe``),
    not a password a person chose: no dictionary to try and nothing to precompute, so an
    unsalted fast hash is right (a salt or a slow hash would protect nothing more, and would
    stop the lookup by digest)."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    """None: it never expires."""
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    """Written at most once a minute."""
    created_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("uq_api_tokens_digest", "digest", unique=True),)
