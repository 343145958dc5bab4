"""The morning digest: one message per scheduled run, problems first.

::

    ☀️ Aryanoble — daily digest · Mon 23 Nov, 07:00 WIB
    🔴 Critical — 🔴 1 critical · 🟠 1 warning · 💤 2 snoozed · 🔕 3 muted · ✅ 37 OK · 10 accounts
    New since yesterday 07:00 WIB: 🔴 arbel · arbel-prod-db CPU max 93 % …
    Came back since yesterday 07:00 WIB: 🟠 billing · billing-monthly forecast 106 % …
    Snooze ended since yesterday 07:00 WIB: ⏰ 🔴 cargo · cargo-db — snooze ended …
    Resolved since yesterday 07:00 WIB: ✅ …
    🔴 RDS — 40 instances: 1 critical, 1 warning · 10 accounts
    🔴 arbel · arbel-prod-db CPU max 93 % (crit ≥ 90 %)  ▂▃▅▇█ · open 2 h · 🆕 new    [ ⋯ ]
    🟠 Budgets — 10 budgets: 1 warning · 10 accounts
    🟠 billing · billing-monthly forecast 106 % ▕███░▏ · open 3 d · ↩️ came back · 👀 @alice [ ⋯ ]
    💤 2 snoozed — until Wed 09:00 WIB by @bob · 🔕 3 muted
    ✅ OK: Alarms in 10 accounts · Budgets in 9 accounts
    #1842 · 41 s · Full report ↗

Problems are grouped by check kind across accounts, one section per problem line, each with
its age, what changed (new, came back, flapping), who answered it, and the ``⋯`` menu that
answers it (:mod:`blocks.findings`). Snoozed and muted lines leave the list and do not raise
the outcome or the tally (:func:`app.engine.answers.settle`): they are counted and folded into
one line, and a run whose only problems are quiet reads OK and says so. OK results are folded
into counts.

"What changed" compares the resources' fingerprints with the previous digest of the same
schedule: a problem is *new* when that run looked at the same account and check and did not
have it, *came back* when it is new to that digest but its finding was first seen before it,
*resolved* when this run looked and no longer has it (a check that could not look says nothing
either way); *snooze ended* lists findings whose snooze ran out (or that got worse than they
were when snoozed) since the previous digest and are still there.

However many accounts, the message stays within Slack's 50 blocks: the worst
:data:`MAX_LINES` problem lines get a section and a menu, the rest are counted ("… and N more
in the web view"), and each section is cut to 3,000 characters.

Pure: domain values in, Block Kit (or plain text for the terminal) out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from app.engine.answers import Line, Standing, settle
from app.engine.findings import WIDE, change
from blocks import findings as answered
from blocks import maintenance as maintenance_words
from blocks import text as t
from blocks.card import checks_count, clock
from blocks.findings import BACK_MARK, BACK_WORD, Standings
from blocks.marks import (
    BLIND_MARK,
    SEVERITY_MARK,
    SEVERITY_WORD,
    STANDING_MARK,
    STATUS_MARK,
    bar,
    duration,
    mark,
    trend,
    unit_of,
)
from checks import kinds
from checks.base import Severity

if TYPE_CHECKING:
    from app.engine.blind import BlindSpot
    from app.engine.maintenance import Window
    from app.engine.runs import RunView
    from app.models import Finding

MAX_LINES = 20
"""Problem lines shown with their ``⋯`` menu, the worst first; the rest are counted (the web
view lists them all)."""
MAX_LINES_PER_GROUP = 12
"""Of those, under one check kind."""
MAX_GROUPS = 8
"""Check kinds with problems shown as sections; the rest are counted."""
MAX_CHANGES = 8
"""New, returned, snooze-ended or resolved problems listed by name; the rest are counted."""
MAX_SUMMARY = 160
_ORDER = {"crit": 0, "error": 1, "warn": 2, "skipped": 3, "ok": 4}
_QUIET = ("ok", "skipped")
_BACKUP_STATES = ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL")
_BACKUP_RUNNING = ("CREATED", "PENDING", "RUNNING", "ABORTING")
_FIXED_BLOCKS = 6
"""Blocks besides the problem groups: title, overall, changes, quiet lines, OK, footer (and
the blind spots and the maintenance windows, when there are any)."""
MAX_BLIND = 5
"""Blind spots listed by name at the top; the rest are counted."""


@dataclass(frozen=True)
class Previous:
    """The previous digest of the same schedule: its run and results."""

    run_id: int
    at: datetime
    results: Sequence[Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: a resource finding, or a whole result without findings (a check that
    could not look, a backup plan with no jobs)."""

    fingerprint: str
    account: str
    check: str
    severity: str
    name: str | None
    summary: str
    drawing: str = ""

    @property
    def scope(self) -> tuple[str, str]:
        return self.account, self.check

    @property
    def rank(self) -> int:
        return _ORDER.get(self.severity, 9)


@dataclass(frozen=True)
class Changes:
    new: list[tuple[Problem, str | None]]
    """Problems that are new (or worse: the earlier severity)."""
    resolved: list[Problem]


# -- reading results --------------------------------------------------------------------------


def problems(results: Iterable[Any]) -> dict[str, Problem]:
    """Every problem in ``results`` by fingerprint (stable across runs, and the same as its
    finding's: :func:`app.engine.findings.lines_of`)."""
    return {p.fingerprint: p for result in results for p in _problems_of(result)}


def _problems_of(result: Any) -> list[Problem]:
    """A result's problem lines: its resources that are not fine, or the whole result."""
    if result.severity in _QUIET:
        return []
    details: Mapping[str, Any] = result.details or {}
    resources = [
        r
        for r in details.get("resources") or []
        if isinstance(r, Mapping) and r.get("severity") not in _QUIET
    ]
    found = []
    for res in resources:
        name = str(res.get("id", "?"))
        fingerprint = str(res.get("fingerprint") or f"{result.check}:{result.account}:{name}")
        found.append(
            Problem(
                fingerprint[:WIDE],
                result.account,
                result.check,
                str(res.get("severity")),
                name,
                str(res.get("summary", "")),
                _drawing(res, result.series or {}),
            )
        )
    if not resources:
        fingerprint = f"{result.check}:{result.account}:*"
        found.append(
            Problem(
                fingerprint, result.account, result.check, result.severity, None, result.summary
            )
        )
    return found


def changes(current: Sequence[Any], previous: Sequence[Any]) -> Changes:
    """New (or worse) and resolved problems between two runs of the same schedule."""
    now, before = problems(current), problems(previous)
    now_scopes = {(r.account, r.check): r.severity for r in current}
    before_scopes = {(r.account, r.check): r.severity for r in previous}

    def comparable(problem: Problem, other: Mapping[tuple[str, str], str]) -> bool:
        severity = other.get(problem.scope)
        return severity is not None and (severity != "error" or problem.name is None)

    new: list[tuple[Problem, str | None]] = []
    for fingerprint, problem in now.items():
        earlier = before.get(fingerprint)
        if earlier is None and comparable(problem, before_scopes):
            new.append((problem, None))
        elif earlier is not None and problem.rank < earlier.rank:
            new.append((problem, earlier.severity))
    resolved = [
        problem
        for fingerprint, problem in before.items()
        if fingerprint not in now and comparable(problem, now_scopes)
    ]
    return Changes(sorted(new, key=lambda n: _sort(n[0])), sorted(resolved, key=_sort))


@dataclass(frozen=True)
class Reading:
    """A run's results read with the standings of their problem lines."""

    results: Sequence[Any]
    severities: list[str]
    """Each result's severity with its snoozed and muted lines left out (:func:`settle`)."""
    loud: dict[str, Problem]
    """The problems still on the list, by fingerprint."""
    quiet: list[Standing]
    """The snoozed and muted lines."""
    standings: Standings = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return Severity.worst(self.severities).value

    def finding(self, problem: Problem) -> tuple[Finding, Standing] | None:
        return self.standings.get(problem.fingerprint)

    def count(self, state: str) -> int:
        return sum(1 for s in self.quiet if s.state == state)


def read(results: Sequence[Any], standings: Standings | None = None) -> Reading:
    """``results`` with ``standings`` (their findings by fingerprint: ``Answers.standings``)."""
    kept: Standings = standings or {}
    severities: list[str] = []
    loud: dict[str, Problem] = {}
    quiet: list[Standing] = []
    for result in results:
        lines = []
        for problem in _problems_of(result):
            pair = kept.get(problem.fingerprint)
            standing = pair[1] if pair is not None else None
            lines.append(Line(problem.fingerprint, problem.severity, standing))
            if standing is not None and standing.quiet:
                quiet.append(standing)
            else:
                loud[problem.fingerprint] = problem
        severities.append(settle(result.severity, lines))
    return Reading(results, severities, loud, quiet, kept)


def _sort(problem: Problem) -> tuple[int, str, str, str]:
    return problem.rank, problem.account, problem.check, problem.name or ""


def _drawing(res: Mapping[str, Any], series: Mapping[str, Any]) -> str:
    points = series.get(str(res.get("series"))) if res.get("series") else None
    if isinstance(points, Sequence) and points:
        numbers = [float(p) for p in points if isinstance(p, int | float)]
        if numbers:
            return trend(numbers, unit_of(str(res.get("series"))))
    if isinstance(res.get("fraction"), int | float):
        return bar(float(res["fraction"]))
    return ""


# -- styles: Slack mrkdwn (escaped) or plain text -----------------------------------------------

_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,20})>")


@dataclass(frozen=True)
class _Style:
    esc: Callable[[object], str]
    bold: Callable[[str], str]
    code: Callable[[str], str]
    link: Callable[[str, str], str]
    user: Callable[[str], str]
    mrkdwn: Callable[[str], str]
    """Text made for Slack (:mod:`blocks.findings`' notes), in this style."""
    menus: bool


SLACK = _Style(
    esc=t.escape,
    bold=lambda s: f"*{s}*",
    code=lambda s: f"`{s}`",
    link=lambda url, label: f"<{url}|{label}>",
    user=t.user,
    mrkdwn=lambda s: s,
    menus=True,
)
PLAIN = _Style(
    esc=str,
    bold=str,
    code=str,
    link=lambda url, label: f"{label}: {url}",
    user=str,
    mrkdwn=lambda s: (
        _MENTION.sub(r"@\1", s).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    ),
    menus=False,
)


# -- the digest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    kind: str  # "section" | "context"
    text: str
    block_id: str
    accessory: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Digest:
    """What one rendering needs, read once."""

    view: RunView
    reading: Reading
    customer_name: str
    schedule: str
    tz: tzinfo
    now: datetime
    previous: Previous | None
    web_url: str | None
    style: _Style
    blind: Sequence[BlindSpot] = ()
    """The customer's blind spots as the digest is rendered (listed first)."""
    windows: Sequence[Window] = ()
    """The maintenance windows that were open while the run looked."""


def digest_message(
    view: RunView,
    *,
    customer_name: str,
    schedule: str,
    tz: tzinfo,
    previous: Previous | None,
    web_url: str | None = None,
    standings: Standings | None = None,
    now: datetime | None = None,
    blind: Sequence[BlindSpot] = (),
    windows: Sequence[Window] = (),
) -> dict[str, Any]:
    """The digest as a Slack message: ``{"text": fallback, "blocks": [...]}``. ``standings``
    are the findings of its problem lines by fingerprint, read at ``now`` (by default when the
    run finished); ``blind`` the customer's blind spots, listed first."""
    digest = _Digest(
        view, read(view.results, standings), customer_name, schedule, tz,
        now or _finished(view), previous, web_url, SLACK, tuple(blind), tuple(windows),
    )  # fmt: skip
    blocks = []
    for part in _compose(digest):
        if part.kind == "context":
            blocks.append(t.context([part.text], part.block_id))
            continue
        block = t.section(part.text, part.block_id)
        if part.accessory is not None:
            block["accessory"] = part.accessory
        blocks.append(block)
    first = _headline(digest)
    return {
        "text": t.fallback(f"{first} · {_tally(digest.reading, blind=len(digest.blind))}"),
        "blocks": blocks[: t.MAX_BLOCKS],
    }


def digest_text(
    view: RunView,
    *,
    customer_name: str,
    schedule: str,
    tz: tzinfo,
    previous: Previous | None,
    web_url: str | None = None,
    standings: Standings | None = None,
    now: datetime | None = None,
    blind: Sequence[BlindSpot] = (),
    windows: Sequence[Window] = (),
) -> str:
    """The same digest as plain text (``mhub digest send`` with Slack off)."""
    digest = _Digest(
        view, read(view.results, standings), customer_name, schedule, tz,
        now or _finished(view), previous, web_url, PLAIN, tuple(blind), tuple(windows),
    )  # fmt: skip
    return "\n".join(p.text for p in _compose(digest))


def _compose(digest: _Digest) -> list[_Part]:
    parts = [
        _Part("section", _headline(digest), "digest_title"),
        *_blind(digest),
        _Part("section", _overall(digest), "digest_overall"),
        *_changes(digest),
    ]
    groups = _problem_groups(digest.reading.loud.values())
    shown = groups[:MAX_GROUPS]
    fixed = _FIXED_BLOCKS + bool(digest.blind) + bool(digest.windows)
    room = t.MAX_BLOCKS - fixed - 2 * len(shown) - (len(groups) > len(shown))
    picked = _pick(shown, max(0, min(MAX_LINES, room)))
    for index, (kind, group) in enumerate(shown):
        parts.extend(_group(digest, index, kind, group, picked))
    if len(groups) > len(shown):
        rest = [p for _, group in groups[len(shown) :] for p in group]
        names = ", ".join(digest.style.esc(kinds.group(kind)) for kind, _ in groups[len(shown) :])
        parts.append(
            _Part("context", f"… and {_more(rest)} in {names}{_see(digest)}", "digest_groups_more")
        )
    quiet = answered.folded(digest.reading.quiet, digest.tz, digest.now)
    if quiet:
        text = t.truncate(digest.style.mrkdwn(quiet), t.SECTION_TEXT)
        parts.append(_Part("context", text, "digest_quiet"))
    held = maintenance_words.during_run(digest.windows, digest.tz, digest.now)
    if held:
        parts.append(_Part("context", digest.style.mrkdwn(held), "digest_maintenance"))
    ok = _ok(digest)
    if ok:
        parts.append(_Part("context", ok, "digest_ok"))
    parts.append(_Part("context", _footer(digest), "digest_footer"))
    return parts


def _headline(digest: _Digest) -> str:
    style = digest.style
    moment = fired_at(digest.view)
    when = moment.astimezone(digest.tz).strftime("%a %d %b, %H:%M %Z") if moment else ""
    title = style.bold(f"{style.esc(digest.customer_name)} — {style.esc(digest.schedule)} digest")
    return f"☀️ {title} · {when}" if when else f"☀️ {title}"


def _blind(digest: _Digest) -> list[_Part]:
    """``🕳️ Not checked: arbel · backup since Tue 01 Dec 07:00 WIB — AccessDenied on
    backup:ListBackupJobs; the role needs backup:ListBackupJobs``, first of all."""
    style = digest.style
    lines = [
        f"{BLIND_MARK} {style.bold('Not checked:')} {style.esc(spot.account)} · "
        f"{style.esc(spot.check)} since {clock(spot.since, digest.tz, digest.now)} — "
        f"{style.esc(spot.why)}"
        for spot in digest.blind
    ]
    if not lines:
        return []
    if len(lines) > MAX_BLIND:
        rest = len(lines) - MAX_BLIND + 1
        lines = [*lines[: MAX_BLIND - 1], f"{BLIND_MARK} … and {rest} more not checked"]
    text = "\n".join(lines)
    return [_Part("section", t.truncate(text, t.SECTION_TEXT), "digest_blind")]


def _overall(digest: _Digest) -> str:
    view, reading, style = digest.view, digest.reading, digest.style
    run = view.run
    tally = _tally(reading, blind=len(digest.blind))
    if run.status == "failed":
        why = f": {style.esc(t.truncate(run.error or '', 300))}" if run.error else ""
        return (
            f"{SEVERITY_MARK['error']} {style.bold('The run failed')}{why} — {view.done} of "
            f"{checks_count(view.total)} finished, so this digest is partial. {tally}"
        )
    if run.status == "cancelled":
        by = f" by {style.user(run.cancel_requested_by)}" if run.cancel_requested_by else ""
        return (
            f"{STATUS_MARK['cancelled']} {style.bold('Cancelled' + by)} after {view.done} of "
            f"{checks_count(view.total)}. {tally}"
        )
    # What is left once snoozed and muted lines are left out, as they stand now (the outcome
    # stored when the run finished may have been settled under other answers).
    outcome = reading.outcome if reading.results else run.outcome or "ok"
    word = SEVERITY_WORD.get(outcome, "Done")
    head = f"{mark(run.status, outcome)} {style.bold(word)}"
    if outcome == "ok" and digest.blind:  # no "all clear" while something is not checked
        return f"{BLIND_MARK} {style.bold('Not all checked')} — {tally}"
    if outcome == "ok" and reading.quiet:  # only quiet problems: OK, and it says so
        return f"{head} — {_quiet_words(reading)} · {_tally(reading, quiet=False)}"
    return f"{head} — {tally}"


def _tally(reading: Reading, *, quiet: bool = True, blind: int = 0) -> str:
    """``🕳️ 1 not checked · 🔴 1 critical · 🟠 1 warning · 💤 2 snoozed · 🔕 3 muted · ✅ 37 OK
    · 10 accounts``: blind spots, results by their severity once quiet lines are left out, and
    the quiet lines."""
    counts = Counter(reading.severities)
    parts = [f"{BLIND_MARK} {blind} not checked"] if blind else []
    parts += [
        f"{SEVERITY_MARK[s]} {counts[s]} {word}"
        for s, word in (("crit", "critical"), ("warn", "warning"), ("error", "could not check"))
        if counts[s]
    ]
    if quiet:
        parts += [
            f"{STANDING_MARK[state]} {n} {word}"
            for state, word in (
                ("snoozed", "snoozed"),
                ("muted", "muted"),
                ("maintenance", "during maintenance"),
            )
            if (n := reading.count(state))
        ]
    parts += [
        f"{SEVERITY_MARK[s]} {counts[s]} {word}"
        for s, word in (("ok", "OK"), ("skipped", "skipped"))
        if counts[s]
    ]
    accounts = len({r.account for r in reading.results})
    if accounts:
        parts.append(f"{accounts} account{'s' if accounts != 1 else ''}")
    return " · ".join(parts) or "no results"


def _quiet_words(reading: Reading) -> str:
    """``2 problems snoozed, 1 muted, 1 during maintenance``"""
    counts = [
        (n, word)
        for state, word in (
            ("snoozed", "snoozed"),
            ("muted", "muted"),
            ("maintenance", "during maintenance"),
        )
        if (n := reading.count(state))
    ]
    if not counts:
        return "no problems"
    (first, word), rest = counts[0], counts[1:]
    words = f"{first} problem{'s' if first != 1 else ''} {word}"
    return ", ".join([words, *(f"{n} {w}" for n, w in rest)])


# -- what changed --------------------------------------------------------------------------------


def _changes(digest: _Digest) -> list[_Part]:
    previous, style, reading = digest.previous, digest.style, digest.reading
    if previous is None:
        note = "First digest of this schedule; from the next one on it shows what changed."
        return [_Part("context", note, "digest_changes")]
    since = _since(previous.at, fired_at(digest.view), digest.tz)
    found = changes(digest.view.results, previous.results)
    fresh = [(p, was) for p, was in found.new if p.fingerprint in reading.loud]
    back = [p for p, was in fresh if was is None and _known_before(reading, p, previous.at)]
    new = [(p, was) for p, was in fresh if p not in back]
    ended = _snooze_ended(digest, previous)
    if not (new or back or ended or found.resolved):
        still = len(reading.loud)
        what = f"the same {still} problem{'s' if still != 1 else ''}" if still else "all OK"
        return [_Part("context", f"No change since {since}: {what}.", "digest_changes")]
    lines: list[str] = []
    for title, items, more in (
        ("New", [_change_line(p, was, style) for p, was in new], "new"),
        ("Came back", [_change_line(p, None, style) for p in back], "came back"),
        ("Snooze ended", [_ended_line(digest, p) for p in ended], "snoozes ended"),
        ("Resolved", [_resolved_line(p, style) for p in found.resolved], "resolved"),
    ):
        if items:
            lines.append(style.bold(f"{title} since {since} ({len(items)})"))
            lines += _capped(items, f"… and {{n}} more {more}")
    return [_Part("section", t.fit_lines(lines), "digest_changes")]


def _known_before(reading: Reading, problem: Problem, moment: datetime) -> bool:
    """Its finding was first seen before ``moment``: back, not new."""
    pair = reading.finding(problem)
    return pair is not None and pair[0].first_seen_at < moment


def _snooze_ended(digest: _Digest, previous: Previous) -> list[Problem]:
    """Problems still there whose snooze ran out since the previous digest looked, or that got
    worse than they were when snoozed since then."""
    looked = max((r.finished_at for r in previous.results if r.finished_at), default=previous.at)
    before = problems(previous.results)
    ended = []
    for problem in digest.reading.loud.values():
        pair = digest.reading.finding(problem)
        if pair is None:
            continue
        found, standing = pair
        until = found.snooze_until
        if standing.back == "snooze ended" and until is not None:
            if looked < until <= digest.now:
                ended.append(problem)
        elif standing.back == "got worse":
            earlier = before.get(problem.fingerprint)
            if earlier is None or earlier.rank > problem.rank:
                ended.append(problem)
    return sorted(ended, key=_sort)


def _capped(lines: list[str], more: str) -> list[str]:
    if len(lines) <= MAX_CHANGES:
        return lines
    return [*lines[: MAX_CHANGES - 1], more.format(n=len(lines) - MAX_CHANGES + 1)]


def _change_line(problem: Problem, was: str | None, style: _Style) -> str:
    now = SEVERITY_MARK.get(problem.severity, "❔")
    marks = f"{SEVERITY_MARK.get(was, '❔')}→{now}" if was else now
    return f"{marks} {_what(problem, style)}"


def _ended_line(digest: _Digest, problem: Problem) -> str:
    """``⏰ 🔴 arbel · `arbel-prod-db` — snooze ended (snoozed by @bob: "resize scheduled")``"""
    style = digest.style
    pair = digest.reading.finding(problem)
    assert pair is not None
    found, standing = pair
    back = standing.back or "snooze ended"
    by = f"snoozed by {style.user(found.snooze_by)}" if found.snooze_by else "snoozed"
    why = f': "{style.esc(t.truncate(found.snooze_reason, 80))}"' if found.snooze_reason else ""
    severity = SEVERITY_MARK.get(problem.severity, "❔")
    return f"{BACK_MARK[back]} {severity} {_where(problem, style)} — {BACK_WORD[back]} ({by}{why})"


def _resolved_line(problem: Problem, style: _Style) -> str:
    was = t.truncate(problem.summary, 80)
    return f"{SEVERITY_MARK['ok']} {_where(problem, style)} — was: {style.esc(was)}"


def _where(problem: Problem, style: _Style) -> str:
    kind = kinds.group(problem.check)
    if problem.name is None:
        return f"{style.esc(problem.account)} · {style.esc(kind)}"
    return f"{style.esc(problem.account)} · {style.code(style.esc(problem.name))}"


def _what(problem: Problem, style: _Style) -> str:
    summary = style.esc(t.truncate(problem.summary, MAX_SUMMARY))
    drawing = f"  {problem.drawing}" if problem.drawing else ""
    if problem.name is None:
        kind = kinds.group(problem.check)
        return f"{style.esc(problem.account)} · {style.esc(kind)} — {summary}"
    return (
        f"{style.esc(problem.account)} · {style.code(style.esc(problem.name))} {summary}{drawing}"
    )


# -- the problems ------------------------------------------------------------------------------


def _problem_groups(found: Iterable[Problem]) -> list[tuple[str, list[Problem]]]:
    """Problems by check kind, the kind with the worst problem first."""
    grouped: dict[str, list[Problem]] = {}
    for problem in found:
        grouped.setdefault(problem.check, []).append(problem)
    for group in grouped.values():
        group.sort(key=_sort)
    order = {kind: index for index, kind in enumerate(kinds.NAMES)}
    return sorted(grouped.items(), key=lambda g: (g[1][0].rank, order.get(g[0], 99), g[0]))


def _pick(groups: Sequence[tuple[str, list[Problem]]], budget: int) -> set[str]:
    """The fingerprints of the worst ``budget`` problems, at most :data:`MAX_LINES_PER_GROUP`
    of one kind."""
    picked: set[str] = set()
    per_kind: Counter[str] = Counter()
    for problem in sorted((p for _, group in groups for p in group), key=_sort):
        if len(picked) >= budget:
            break
        if per_kind[problem.check] < MAX_LINES_PER_GROUP:
            picked.add(problem.fingerprint)
            per_kind[problem.check] += 1
    return picked


def _group(
    digest: _Digest, index: int, kind: str, group: list[Problem], picked: set[str]
) -> list[_Part]:
    """``🔴 Backups — 42 completed, 1 failed · 10 accounts``, then a section per problem line
    with its ``⋯`` menu, then how many more."""
    style = digest.style
    of_kind = [r for r in digest.view.results if r.check == kind]
    title = style.bold(style.esc(kinds.group(kind)))
    head = f"{SEVERITY_MARK.get(group[0].severity, '❔')} {title} — {_counts(kind, of_kind)}"
    parts = [_Part("section", head, f"digest_group_{index}")]
    for number, problem in enumerate(p for p in group if p.fingerprint in picked):
        text, menu = _line(digest, problem)
        parts.append(_Part("section", text, f"digest_line_{index}_{number}", menu))
    rest = [p for p in group if p.fingerprint not in picked]
    if rest:
        parts.append(_Part("context", f"… and {_more(rest)}{_see(digest)}", f"digest_more_{index}"))
    return parts


def _line(digest: _Digest, problem: Problem) -> tuple[str, dict[str, Any] | None]:
    """``🔴 arbel · `arbel-prod-db` CPU max 93 % ▂▃▅▇█ · open 2 h · 🆕 new · 👀 @alice`` and its
    menu (when its finding is kept and still open)."""
    style = digest.style
    text = f"{SEVERITY_MARK.get(problem.severity, '❔')} {_what(problem, style)}"
    pair = digest.reading.finding(problem)
    if pair is None:
        return text, None
    found, standing = pair
    if found.status == "open":
        note = answered.notes(
            answered.age(found, digest.now),
            answered.change_note(change(found.history, found.returns)),
            answered.answer_note(standing, digest.tz, digest.now),
        )
    else:  # a digest rendered again after its finding resolved
        when = answered.clock(found.resolved_at, digest.tz, digest.now)
        note = f"{SEVERITY_MARK['ok']} resolved {when}".rstrip()
    if note:
        text += f" · {style.mrkdwn(note)}"
    if not style.menus or standing.state == "resolved":
        return text, None
    return text, answered.menu(answered.target("f", found.id))


def _more(rest: Sequence[Problem]) -> str:
    """``289 more in 97 accounts``"""
    accounts = len({p.account for p in rest})
    return f"{len(rest)} more in {accounts} account{'s' if accounts != 1 else ''}"


def _see(digest: _Digest) -> str:
    if digest.web_url:
        return f" — {digest.style.link(digest.web_url, 'all in the web view')}"
    return " — the web view lists them all"


def _counts(kind: str, results: Sequence[Any]) -> str:
    looked = [r for r in results if r.severity not in ("error", "skipped")]
    totals = kinds.BY_NAME[kind].totals if kind in kinds.BY_NAME else None
    if not looked:
        text = ""
    elif kind == "backup":
        text = _backup_counts(looked)
    elif totals is not None:
        text = _total_counts(totals, looked)
    else:
        text = _severity_counts(Counter(r.severity for r in looked))
    accounts = len({r.account for r in results})
    parts = [text, f"{accounts} account{'s' if accounts != 1 else ''}"]
    errors = sum(r.severity == "error" for r in results)
    if errors:
        parts.append(f"{SEVERITY_MARK['error']} could not check {errors}")
    return " · ".join(p for p in parts if p)


def _backup_counts(results: Sequence[Any]) -> str:
    counts: Counter[str] = Counter()
    for result in results:
        for state, n in ((result.details or {}).get("counts") or {}).items():
            if isinstance(n, int):
                counts[str(state)] += n
    parts = [f"{counts[s]} {s.lower()}" for s in _BACKUP_STATES if counts[s] or s == "COMPLETED"]
    running = sum(counts[s] for s in _BACKUP_RUNNING)
    if running:
        parts.append(f"{running} running")
    return ", ".join(parts)


def _total_counts(totals: kinds.Totals, results: Sequence[Any]) -> str:
    key = totals.key
    total = sum(n for r in results if isinstance(n := (r.details or {}).get(key), int) and n >= 0)
    noun = totals.one if total == 1 else totals.many
    if not totals.severities:
        return f"{total} {noun}"
    severities: Counter[str] = Counter()
    for result in results:
        details = result.details or {}
        if isinstance(details.get("counts"), Mapping):  # severities counted by the check
            severities.update({k: v for k, v in details["counts"].items() if isinstance(v, int)})
        else:
            severities.update(
                str(r.get("severity"))
                for r in details.get("resources") or []
                if isinstance(r, Mapping)
            )
    found = _severity_counts(severities, quiet=True)
    return f"{total} {noun}: {found}" if found else f"{total} {noun}"


def _severity_counts(counts: Mapping[str, int], quiet: bool = False) -> str:
    words: list[tuple[str, str]] = [
        ("crit", "critical"),
        ("error", "could not check"),
        ("warn", "warning"),
    ]
    if not quiet:
        words.append(("ok", "OK"))
    return ", ".join(f"{counts[s]} {word}" for s, word in words if counts.get(s))


def _ok(digest: _Digest) -> str:
    """``✅ OK: Alarms in 10 accounts · Budgets in 9 accounts`` and the skipped ones (a result
    whose problems are all snoozed or muted counts as OK)."""
    style, reading = digest.style, digest.reading
    order = {kind: index for index, kind in enumerate(kinds.NAMES)}
    lines = []
    for severity, word in (("ok", "OK"), ("skipped", "skipped")):
        per_kind = Counter(
            r.check
            for r, s in zip(reading.results, reading.severities, strict=True)
            if s == severity
        )
        if not per_kind:
            continue
        items = [
            f"{style.esc(kinds.group(kind))} in {n} account{'s' if n != 1 else ''}"
            for kind, n in sorted(per_kind.items(), key=lambda i: (order.get(i[0], 99), i[0]))
        ]
        lines.append(f"{SEVERITY_MARK[severity]} {word}: " + " · ".join(items))
    return t.truncate("   ".join(lines), t.SECTION_TEXT)


def _footer(digest: _Digest) -> str:
    run, style = digest.view.run, digest.style
    parts = [f"#{run.id}"]
    if run.started_at and run.finished_at:
        parts.append(duration(max(0.0, (run.finished_at - run.started_at).total_seconds())))
    if run.source != "schedule":
        parts.append(f"sent by {style.esc(run.requested_by)} with mhub digest send")
    if digest.web_url:
        parts.append(style.link(digest.web_url, "Full report ↗"))
    return " · ".join(parts)


def _since(previous: datetime, now: datetime | None, tz: tzinfo) -> str:
    """``yesterday 07:00 WIB``, ``07:00 WIB`` (today) or ``Fri 20 Nov 07:00 WIB``."""
    reference = now or previous
    local, today = previous.astimezone(tz), reference.astimezone(tz).date()
    if local.date() == today - timedelta(days=1):
        return f"yesterday {local.strftime('%H:%M %Z')}"
    return clock(previous, tz, reference)


def fired_at(view: RunView) -> datetime:
    """The slot a scheduled run was for, else when it was asked for."""
    slot = view.run.params.get("slot")
    if isinstance(slot, str):
        try:
            return datetime.fromisoformat(slot.replace("Z", "+00:00"))
        except ValueError:
            pass
    return view.run.created_at


def _finished(view: RunView) -> datetime:
    return view.run.finished_at or fired_at(view)
