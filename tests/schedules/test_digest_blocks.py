"""The digest as Block Kit, without Slack: problems first and grouped by check kind across
accounts, OK folded into counts, sparklines and bars, what changed since the previous digest,
each problem line with its finding's age, change, answer and menu, snoozed and muted lines
folded, and Slack's limits held for 100 accounts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from app.engine.answers import Rule, Standing, standing
from app.models import Finding, Result
from blocks.digest import Previous, changes, digest_message, digest_text, problems
from blocks.findings import parse
from blocks.ids import ActionId
from tests.fakeslack.validate import all_text, message_problems
from tests.schedules.support import SEVEN_WIB, WIB, finding, result, view

HOT = [22.0, 25.0, 31.0, 48.0, 77.0, 93.0]


def estate() -> list[Result]:
    """Ten accounts: one failed backup, one hot database, one budget near its forecast."""
    accounts = [f"acct{i:02d}" for i in range(8)] + ["arbel", "billing"]
    results: dict[tuple[str, str], Result] = {}
    for account in accounts:
        results[(account, "backup")] = result(
            account, "backup", "ok", counts={"COMPLETED": 4}, jobs=4
        )
        results[(account, "rds")] = result(
            account, "rds", "ok", instances=2, counts={"ok": 2, "warn": 0, "crit": 0}
        )
        results[(account, "alarms")] = result(account, "alarms", "ok", in_alarm=0)
    results[("arbel", "backup")] = result(
        "arbel",
        "backup",
        "crit",
        "3 completed, 1 failed",
        [finding("backup", "arbel", "prod-db", "crit", 'failed in vault Default — "AccessDenied"')],
        counts={"COMPLETED": 3, "FAILED": 1},
    )
    results[("arbel", "rds")] = result(
        "arbel",
        "rds",
        "crit",
        "2 instances: 1 critical",
        [
            finding(
                "rds",
                "arbel",
                "arbel-prod-db",
                "crit",
                "CPU max 93 % (crit ≥ 90 %)",
                "cpu",
                series="arbel-prod-db:cpu",
            )
        ],
        series={"arbel-prod-db:cpu": HOT},
        instances=2,
        counts={"ok": 1, "warn": 0, "crit": 1},
    )
    results[("billing", "budget")] = result(
        "billing",
        "budget",
        "warn",
        "billing-monthly: actual 78 % of $5,000, forecast 106 %",
        [
            finding(
                "budget",
                "billing",
                "billing-monthly",
                "warn",
                "forecast 106 % of $5,000",
                "spend",
                fraction=0.78,
            )
        ],
        budgets=1,
    )
    return list(results.values())


def message(
    results: list[Result],
    previous: Previous | None = None,
    standings: dict[str, tuple[Finding, Standing]] | None = None,
    **run: Any,
) -> dict[str, Any]:
    return digest_message(
        view(results, **run),
        customer_name="Aryanoble",
        schedule="daily",
        tz=WIB,
        previous=previous,
        web_url="https://hub.example/runs/1842",
        standings=standings,
        now=NOW,
    )


NOW = SEVEN_WIB + timedelta(seconds=41)
"""When the digest is rendered (the run finished): time stands still here."""
HOT_DB = "rds:arbel:ap-southeast-3:arbel-prod-db:cpu"
FAILED_BACKUP = "backup:arbel:ap-southeast-3:prod-db:state"
BUDGET = "budget:billing:ap-southeast-3:billing-monthly:spend"


def row(fingerprint: str, severity: str, ident: int, **columns: Any) -> Finding:
    """A ``findings`` row as the hub keeps it: open, first seen a week ago, seen by every look
    since (``columns`` override any of that, and answer it)."""
    check, account, region, resource, _ = fingerprint.split(":")
    values: dict[str, Any] = {
        "id": ident,
        "customer_id": "aryanoble",
        "fingerprint": fingerprint,
        "account": account,
        "region": region,
        "check": check,
        "resource": resource,
        "severity": severity,
        "summary": "",
        "status": "open",
        "first_seen_at": NOW - timedelta(days=7),
        "last_seen_at": NOW,
        "resolved_at": None,
        "last_run_id": 1842,
        "looked_run_id": 1842,
        "returns": 0,
        "history": "1111111111",
        "ack_by": None,
        "ack_at": None,
        "snooze_by": None,
        "snooze_at": None,
        "snooze_until": None,
        "snooze_reason": None,
        "snooze_severity": None,
        "answers": 0,
    }
    values.update(columns)
    return Finding(**values)


def snoozed(until: datetime | None, by: str = "U0BOB", severity: str = "crit") -> dict[str, Any]:
    return {
        "snooze_by": by,
        "snooze_at": NOW - timedelta(days=1),
        "snooze_until": until,
        "snooze_reason": "waiting for the invoice",
        "snooze_severity": severity,
    }


def kept(
    rows: Iterable[Finding], rules: Sequence[Rule] = ()
) -> dict[str, tuple[Finding, Standing]]:
    """What ``Answers.standings`` answers for these rows at :data:`NOW`."""
    return {r.fingerprint: (r, standing(r, rules, NOW)) for r in rows}


def every_line(results: Iterable[Result]) -> dict[str, tuple[Finding, Standing]]:
    """Each problem line of ``results`` with an open finding nobody answered."""
    return kept(
        row(p.fingerprint, p.severity, n)
        for n, p in enumerate(problems(results).values(), start=1)
        if p.severity in ("warn", "crit")
    )


def mute(resource: str, check: str = "budget") -> Rule:
    return Rule(
        "yaml", "yaml:1", check, None, None, resource, "scratch", "U0CAROL", None, "U0CAROL"
    )


def menus(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [b["accessory"] for b in msg["blocks"] if "accessory" in b]


def sections(msg: dict[str, Any]) -> list[str]:
    """Each block's text (a context's elements joined)."""
    return [
        block["text"]["text"]
        if block["type"] == "section"
        else " ".join(e["text"] for e in block["elements"])
        for block in msg["blocks"]
    ]


def test_it_heads_the_digest_with_customer_date_and_outcome() -> None:
    msg = message(estate(), outcome="crit")
    title, overall = sections(msg)[:2]
    assert title == "☀️ *Aryanoble — daily digest* · Sat 21 Nov, 07:00 WIB"
    assert overall.startswith("🔴 *Critical* — 🔴 2 critical · 🟠 1 warning · ✅ 28 OK")
    assert "10 accounts" in overall
    assert msg["text"].startswith("☀️ *Aryanoble — daily digest* · Sat 21 Nov, 07:00 WIB · 🔴 2")
    assert message_problems(msg) == []


def test_it_puts_problems_first_grouped_by_check_kind_across_accounts() -> None:
    text = sections(message(estate(), outcome="crit"))
    backups = next(i for i, s in enumerate(text) if "*Backups*" in s)
    assert text[backups : backups + 2] == [
        "🔴 *Backups* — 39 completed, 1 failed · 10 accounts",
        '🔴 arbel · `prod-db` failed in vault Default — "AccessDenied"',
    ]
    order = [s.split("*")[1] for s in text if s[:2] in ("🔴 ", "🟠 ") and " — " in s[:40]][1:]
    assert order == ["Backups", "RDS", "Budgets"]  # critical kinds first, warnings after


def test_it_draws_sparklines_for_hot_databases_and_bars_for_budgets() -> None:
    text = "\n".join(sections(message(estate(), outcome="crit")))
    assert "🔴 *RDS* — 20 instances: 1 critical · 10 accounts" in text
    assert "🔴 arbel · `arbel-prod-db` CPU max 93 % (crit ≥ 90 %)  ▁▁▂▄▆█" in text
    assert "🟠 billing · `billing-monthly` forecast 106 % of $5,000  ▕████████░░▏" in text


def test_it_folds_ok_results_into_counts_and_links_the_web_view() -> None:
    text = sections(message(estate(), outcome="crit"))
    assert "✅ OK: Backups in 9 accounts · RDS in 9 accounts · Alarms in 10 accounts" in text
    assert text[-1] == "#1842 · 41 s · <https://hub.example/runs/1842|Full report ↗>"
    assert not any("acct03" in s for s in text)


def test_it_says_when_everything_is_fine() -> None:
    fine = [r for r in estate() if r.severity == "ok"]
    msg = message(fine, outcome="ok")
    assert sections(msg)[1].startswith("✅ *OK* — ✅ 28 OK")
    assert len(msg["blocks"]) == 5  # title, overall, changes note, OK counts, footer


def test_it_escapes_names_and_summaries_from_outside() -> None:
    evil = result(
        "arbel",
        "alarms",
        "crit",
        "1 alarm",
        [finding("alarms", "arbel", "<!channel> pwn", "crit", "@here <https://x.example|click>")],
        in_alarm=1,
    )
    msg = message([evil], outcome="crit")
    dumped = all_text(msg)
    assert "<!channel>" not in dumped and "<https://x.example" not in dumped
    assert "&lt;!channel&gt; pwn" in dumped and "@\u2060here" in dumped
    assert message_problems(msg) == []


def test_it_says_the_run_failed_and_that_the_digest_is_partial() -> None:
    msg = message(estate()[:3], status="failed", outcome=None, error="AWS was unreachable")
    overall = sections(msg)[1]
    assert overall.startswith("⚠️ *The run failed*: AWS was unreachable — 3 of 3 checks")
    assert "partial" in overall


def test_it_stays_within_slacks_limits_for_a_hundred_accounts_with_problems_everywhere() -> None:
    results = []
    for i in range(100):
        account = f"customer-account-{i:03d}"
        for kind in ("backup", "rds", "alarms", "budget", "http"):
            results.append(
                result(
                    account,
                    kind,
                    "crit" if i % 2 else "warn",
                    f"{kind} trouble " + "x" * 150,
                    [
                        finding(
                            kind,
                            account,
                            f"{kind}-resource-{j}",
                            "crit",
                            "bad " * 40,
                            series=f"s{j}",
                        )
                        for j in range(3)
                    ],
                    series={f"s{j}": HOT * 8 for j in range(3)},
                    counts={"COMPLETED": 10, "FAILED": 3},
                    instances=3,
                    budgets=3,
                    endpoints=3,
                    in_alarm=3,
                )
            )
    previous = Previous(1841, SEVEN_WIB - timedelta(days=1), [])
    msg = message(results, previous, every_line(results), outcome="crit")
    assert message_problems(msg) == []
    assert len(msg["blocks"]) <= 50
    text = "\n".join(sections(msg))
    assert "🔴 *Backups* — 1000 completed, 300 failed · 100 accounts" in text
    # The worst 20 of 1,500 problem lines, each with its menu; the rest counted per kind.
    assert len(menus(msg)) == 20
    assert "… and 295 more in 99 accounts — <https://hub.example/runs/1842|all in" in text
    assert len(msg["text"]) <= 3000


def test_it_lists_a_new_problem_since_the_previous_digest() -> None:
    before = [r for r in estate() if not (r.account == "arbel" and r.check == "rds")]
    before.append(result("arbel", "rds", "ok", instances=2, counts={"ok": 2}))
    previous = Previous(1841, SEVEN_WIB - timedelta(days=1), before)
    text = sections(message(estate(), previous, outcome="crit"))
    [changed] = [s for s in text if "since" in s]
    assert changed.splitlines() == [
        "*New since yesterday 07:00 WIB (1)*",
        "🔴 arbel · `arbel-prod-db` CPU max 93 % (crit ≥ 90 %)  ▁▁▂▄▆█",
    ]


def test_it_lists_a_resolved_problem_since_the_previous_digest() -> None:
    now = [r for r in estate() if not (r.account == "arbel" and r.check == "backup")]
    now.append(result("arbel", "backup", "ok", counts={"COMPLETED": 4}))
    previous = Previous(1841, SEVEN_WIB - timedelta(days=1), estate())
    text = sections(message(now, previous, outcome="crit"))
    [changed] = [s for s in text if "since" in s]
    assert changed.splitlines() == [
        "*Resolved since yesterday 07:00 WIB (1)*",
        '✅ arbel · `prod-db` — was: failed in vault Default — "AccessDenied"',
    ]


def test_it_says_nothing_changed_when_the_same_problems_remain() -> None:
    previous = Previous(1841, SEVEN_WIB - timedelta(days=1), estate())
    text = sections(message(estate(), previous, outcome="crit"))
    assert "No change since yesterday 07:00 WIB: the same 3 problems." in text


def test_it_does_not_call_a_problem_resolved_when_the_check_could_not_look() -> None:
    now = [r for r in estate() if not (r.account == "arbel" and r.check == "backup")]
    now.append(result("arbel", "backup", "error", "AccessDenied: not authorized"))
    found = changes(now, estate())
    assert found.resolved == []
    assert [(p.account, p.check, p.name) for p, _ in found.new] == [("arbel", "backup", None)]


def test_it_shows_a_problem_that_got_worse_as_new_with_its_earlier_mark() -> None:
    before = [r for r in estate() if not (r.account == "billing" and r.check == "budget")]
    before.append(
        result(
            "billing",
            "budget",
            "ok",
            "fine",
            [finding("budget", "billing", "billing-monthly", "ok", "fine", "spend")],
        )
    )
    worse = [r for r in estate() if not (r.account == "arbel" and r.check == "rds")]
    worse.append(
        result(
            "arbel",
            "rds",
            "crit",
            "",
            [finding("rds", "arbel", "arbel-prod-db", "crit", "CPU max 99 %", "cpu")],
        )
    )
    older = [r for r in estate() if not (r.account == "arbel" and r.check == "rds")]
    older.append(
        result(
            "arbel",
            "rds",
            "warn",
            "",
            [finding("rds", "arbel", "arbel-prod-db", "warn", "CPU max 85 %", "cpu")],
        )
    )
    found = changes(worse, older)
    assert [(p.name, was) for p, was in found.new] == [("arbel-prod-db", "warn")]
    text = "\n".join(sections(message(worse, Previous(1, SEVEN_WIB, older), outcome="crit")))
    assert "🟠→🔴 arbel · `arbel-prod-db` CPU max 99 %" in text
    assert changes(estate(), before).new[0][0].name == "billing-monthly"


def test_it_renders_the_same_digest_as_plain_text_for_the_terminal() -> None:
    text = digest_text(
        view(estate(), outcome="crit"),
        customer_name="Aryanoble",
        schedule="daily",
        tz=WIB,
        previous=None,
        web_url="https://hub.example/runs/1842",
    )
    lines = text.splitlines()
    assert lines[0] == "☀️ Aryanoble — daily digest · Sat 21 Nov, 07:00 WIB"
    assert '🔴 arbel · prod-db failed in vault Default — "AccessDenied"' in lines
    assert lines[-1] == "#1842 · 41 s · Full report ↗: https://hub.example/runs/1842"


# -- findings and their answers -----------------------------------------------------------------


def test_it_gives_each_problem_line_its_age_change_answer_and_a_menu() -> None:
    found = kept(
        [
            row(HOT_DB, "crit", 7, first_seen_at=NOW - timedelta(days=9), history="1"),
            row(FAILED_BACKUP, "crit", 8, returns=1, history="1101", ack_by="U0ALICE", ack_at=NOW),
            row(BUDGET, "warn", 9, history="1010101"),
        ]
    )
    msg = message(estate(), standings=found, outcome="crit")
    assert message_problems(msg) == []
    text = sections(msg)
    assert (
        "🔴 arbel · `arbel-prod-db` CPU max 93 % (crit ≥ 90 %)  ▁▁▂▄▆█ · open 9 d · 🆕 new" in text
    )
    assert (
        '🔴 arbel · `prod-db` failed in vault Default — "AccessDenied" · open 7 d · '
        "↩️ came back · 👀 <@U0ALICE>"
    ) in text
    assert any(s.endswith("▕████████░░▏ · open 7 d · 🔁 flapping") for s in text)
    values = sorted(o["value"] for m in menus(msg) for o in m["options"])
    assert values == sorted(f"{verb}:f{n}" for verb in ("ack", "snooze", "mute") for n in (7, 8, 9))
    assert all(m["type"] == "overflow" and m["action_id"] == ActionId.ANSWER for m in menus(msg))
    assert all(parse(v) is not None for v in values)


def test_it_folds_snoozed_and_muted_lines_and_reads_ok_when_they_are_the_only_problems() -> None:
    monday = datetime(2026, 11, 23, 2, 0, tzinfo=SEVEN_WIB.tzinfo)  # Mon 09:00 WIB
    found = kept(
        [
            row(HOT_DB, "crit", 1, **snoozed(monday, "U0ALICE")),
            row(FAILED_BACKUP, "crit", 2, **snoozed(None, "U0ALICE")),
            row(BUDGET, "warn", 3),
        ],
        [mute("billing-*")],
    )
    msg = message(estate(), standings=found, outcome="crit")
    assert message_problems(msg) == []
    text = sections(msg)
    assert text[1] == ("✅ *OK* — 2 problems snoozed, 1 muted · ✅ 31 OK · 10 accounts")
    assert "💤 2 snoozed — until Mon 23 Nov 09:00 WIB by <@U0ALICE> · 🔕 1 muted" in text
    assert not any(s.startswith(("🔴", "🟠")) for s in text)  # nothing left on the list
    assert menus(msg) == []
    assert msg["text"].endswith("💤 2 snoozed · 🔕 1 muted · ✅ 31 OK · 10 accounts")
    assert "✅ OK: Backups in 10 accounts · RDS in 10 accounts" in "\n".join(text)


def test_it_leaves_quiet_lines_out_of_the_outcome_and_counts_them_in_the_tally() -> None:
    found = kept(
        [row(HOT_DB, "crit", 1, **snoozed(NOW + timedelta(hours=2))), row(BUDGET, "warn", 3)]
    )
    text = sections(message(estate(), standings=found, outcome="crit"))
    assert text[1] == (
        "🔴 *Critical* — 🔴 1 critical · 🟠 1 warning · 💤 1 snoozed · ✅ 29 OK · 10 accounts"
    )
    assert "💤 1 snoozed — until 09:00 WIB by <@U0BOB>" in text
    assert not any("arbel-prod-db" in s for s in text[2:-2])


def test_it_comes_back_to_a_snoozed_line_that_got_worse() -> None:
    found = kept([row(HOT_DB, "crit", 1, **snoozed(None, severity="warn"))])
    text = sections(message(estate(), standings=found, outcome="crit"))
    line = next(s for s in text if "arbel-prod-db" in s)
    assert line.endswith("open 7 d · ⬆️ got worse while snoozed")
    assert "snoozed" not in text[1]


def test_it_lists_what_came_back_and_whose_snooze_ended_since_the_previous_digest() -> None:
    yesterday = SEVEN_WIB - timedelta(days=1)
    before = [r for r in estate() if not (r.account == "arbel" and r.check in ("rds", "backup"))]
    before += [
        result("arbel", "rds", "ok", instances=2, counts={"ok": 2}),
        result("arbel", "backup", "ok", counts={"COMPLETED": 4}),
    ]
    for earlier in before:
        earlier.finished_at = yesterday + timedelta(seconds=30)
    previous = Previous(1841, yesterday, before)

    def render(snooze_ended_at: datetime) -> list[str]:
        found = kept(
            [
                row(FAILED_BACKUP, "crit", 1, first_seen_at=SEVEN_WIB, history="1"),
                row(HOT_DB, "crit", 2, returns=1, history="1101"),
                row(BUDGET, "warn", 3, **snoozed(snooze_ended_at, severity="warn")),
            ]
        )
        msg = message(estate(), previous, found, outcome="crit")
        assert message_problems(msg) == []
        return sections(msg)

    [changed] = [s for s in render(NOW - timedelta(hours=2)) if "since" in s]
    assert changed.splitlines() == [
        "*New since yesterday 07:00 WIB (1)*",
        '🔴 arbel · `prod-db` failed in vault Default — "AccessDenied"',
        "*Came back since yesterday 07:00 WIB (1)*",
        "🔴 arbel · `arbel-prod-db` CPU max 93 % (crit ≥ 90 %)  ▁▁▂▄▆█",
        "*Snooze ended since yesterday 07:00 WIB (1)*",
        "⏰ 🟠 billing · `billing-monthly` — snooze ended (snoozed by <@U0BOB>: "
        '"waiting for the invoice")',
    ]
    # A snooze that ended before the previous digest looked was news then, not now.
    [changed] = [s for s in render(yesterday - timedelta(hours=1)) if "since" in s]
    assert "Snooze ended" not in changed


def test_it_keeps_quiet_problems_out_of_what_is_new() -> None:
    before = [r for r in estate() if not (r.account == "arbel" and r.check == "rds")]
    before.append(result("arbel", "rds", "ok", instances=2, counts={"ok": 2}))
    previous = Previous(1841, SEVEN_WIB - timedelta(days=1), before)
    found = kept([row(HOT_DB, "crit", 1, history="1", **snoozed(None))])
    text = sections(message(estate(), previous, found, outcome="crit"))
    assert "No change since yesterday 07:00 WIB: the same 2 problems." in text


def test_it_renders_answers_as_plain_text_for_the_terminal() -> None:
    found = kept(
        [row(HOT_DB, "crit", 1, ack_by="U0ALICE", ack_at=NOW), row(BUDGET, "warn", 3)],
        [mute("billing-*")],
    )
    text = digest_text(
        view(estate(), outcome="crit"),
        customer_name="Aryanoble",
        schedule="daily",
        tz=WIB,
        previous=None,
        standings=found,
        now=NOW,
    )
    assert (
        "🔴 arbel · arbel-prod-db CPU max 93 % (crit ≥ 90 %)  ▁▁▂▄▆█ · open 7 d · 👀 @U0ALICE"
        in text
    )
    assert "🔕 1 muted" in text and "<@" not in text


def test_it_says_a_line_resolved_when_the_digest_is_rendered_again_after_it_did() -> None:
    gone = row(HOT_DB, "crit", 1, status="resolved", resolved_at=NOW + timedelta(hours=1))
    msg = message(estate(), standings=kept([gone]), outcome="crit")
    [block] = [b for b in msg["blocks"] if "arbel-prod-db" in b.get("text", {}).get("text", "")]
    assert block["text"]["text"].endswith("▁▁▂▄▆█ · ✅ resolved 08:00 WIB")
    assert "accessory" not in block  # nothing left to answer
