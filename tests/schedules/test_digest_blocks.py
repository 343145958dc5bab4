"""The digest as Block Kit, without Slack: problems first and grouped by check kind across
accounts, OK folded into counts, sparklines and bars, what changed since the previous digest,
and Slack's limits held for 100 accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.models import Result
from blocks.digest import Previous, changes, digest_message, digest_text
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


def message(results: list[Result], previous: Previous | None = None, **run: Any) -> dict[str, Any]:
    return digest_message(
        view(results, **run),
        customer_name="Aryanoble",
        schedule="daily",
        tz=WIB,
        previous=previous,
        web_url="https://hub.example/runs/1842",
    )


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
    backups = next(s for s in text if "*Backups*" in s)
    assert backups.splitlines() == [
        "🔴 *Backups* — 39 completed, 1 failed · 10 accounts",
        '🔴 arbel · `prod-db` failed in vault Default — "AccessDenied"',
    ]
    order = [s.split("*")[1] for s in text if s[:2] in ("🔴 ", "🟠 ") and "—" in s[:40]][1:]
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
    msg = message(results, previous, outcome="crit")
    assert message_problems(msg) == []
    assert len(msg["blocks"]) <= 12
    text = "\n".join(sections(msg))
    assert "🔴 *Backups* — 1000 completed, 300 failed · 100 accounts" in text
    assert "… and 289 more in 97 accounts" in text  # 300 problems, 11 shown by name
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
