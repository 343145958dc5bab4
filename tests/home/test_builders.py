"""The Home view and the modal as pure builders: Slack's limits however much there is, and
the viewer's own findings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.config import Access, Account, Customer, SlackSettings
from app.engine.answers import Standing, standing
from app.engine.blind import BlindSpot
from app.engine.maintenance import Window
from app.engine.runboard import Runboard
from app.models import Finding
from app.slack.modal import ModalMeta
from blocks.home import NextRun, home_view, step_list
from blocks.ids import BlockId
from blocks.modal import Choice, run_modal
from tests.blocks.support import NOW, run
from tests.fakeslack import validate


def customer(n: int) -> Customer:
    return Customer(
        id=f"cust{n}",
        name=f"Customer {n} <!here>",
        timezone="Asia/Jakarta",
        slack=SlackSettings(channel="C0OPS", access=Access(users=("U0ALICE",))),
        accounts=(
            Account(
                id=f"acct{n}",
                name="Account",
                account_id="111122223333",
                regions=("us-east-1",),
                checks=("rds",),
            ),
        ),
    )


def crowded() -> tuple[Runboard, dict[str, Customer], list[NextRun]]:
    customers = {c.id: c for c in (customer(n) for n in range(300))}
    targets = [(f"acct{n}", check) for n in range(60) for check in ("rds", "backup", "budget")]
    running = [run("running", targets, id=5000 + i, customer_id=f"cust{i}") for i in range(50)]
    recent = [
        run("completed", outcome="crit", id=4000 - i, customer_id=f"cust{i % 300}")
        for i in range(200)
    ]
    board = Runboard(
        queued=12,
        oldest_queued_at=None,
        running=running,
        waiting=[],
        recent=recent,
        latest={r.customer_id: r for r in recent},
        day={"runs": 400, "crit": 40},
        steps={r.id: {("acct1", "rds"): "error"} for r in (*running, *recent)},
        version="1.0",
        taken_at=NOW,
    )
    tz = ZoneInfo("Asia/Jakarta")
    upcoming = [
        NextRun(f"Customer {n}", "daily", NOW.astimezone(tz) + timedelta(hours=n))
        for n in range(40)
    ]
    return board, customers, upcoming


def test_it_keeps_a_crowded_runboard_within_100_blocks_and_summarises_the_rest() -> None:
    board, customers, upcoming = crowded()
    view = home_view(board, customers, upcoming, now=NOW, web_url="https://hub.example/")
    assert validate.view_problems(view) == []
    assert len(view["blocks"]) <= 100
    text = validate.all_text(view)
    assert "… and 42 more running" in text
    assert "… and 185 more recent runs" in text
    assert "… and 30 more schedules" in text
    assert "more customers" in text
    assert "<!here>" not in text


def test_it_shows_each_step_of_a_running_run_done_or_running() -> None:
    targets = [("arbel", "rds"), ("arbel", "backup"), ("arbel", "budget")]
    live = run("running", targets)
    steps = step_list(live, {("arbel", "rds"): "ok", ("arbel", "budget"): "crit"})
    assert steps.startswith("✅ arbel RDS  🔴 arbel Budget  ⏳ arbel Backup")
    waiting = step_list(run("queued", targets), {})
    assert waiting.count("⏸️") == 3


def test_it_says_when_a_running_run_stopped_sending_heartbeats() -> None:
    board, customers, _ = crowded()
    stale = run("running", id=1, customer_id="cust1", heartbeat_at=NOW - timedelta(minutes=5))
    fresh = run("running", id=2, customer_id="cust2", heartbeat_at=NOW - timedelta(seconds=2))
    view = home_view(replace(board, running=[stale, fresh]), customers, [], now=NOW)
    text = validate.all_text(view)
    assert "⚠️ no heartbeat for 5 min" in text and "alive 2 s ago" in text


def test_it_keeps_the_modal_within_slack_limits_with_many_accounts() -> None:
    accounts = [Choice(f"acct{n}", f"acct{n} — Account {n}") for n in range(140)]
    view = run_modal(
        customers=[Choice("cust1", "Customer 1")],
        external=False,
        chosen=Choice("cust1", "Customer 1"),
        accounts=accounts,
        checks=[Choice("rds", "rds")],
        metadata=ModalMeta(channel_id="C0OPS").dump(),
    )
    assert validate.view_problems(view) == []
    block = next(b for b in view["blocks"] if b["block_id"].startswith("modal_accounts"))
    assert len(block["element"]["options"]) == 100
    assert "40 more accounts" in block["hint"]["text"]


def test_it_does_not_trust_tampered_private_metadata() -> None:
    assert ModalMeta.parse('{"channel_id": "C0OPS"}').channel_id == "C0OPS"
    assert ModalMeta.parse('{"channel_id": "<!here>"}').channel_id is None
    assert ModalMeta.parse('{"channel_id": "C0OPS", "admin": true}').channel_id is None
    assert ModalMeta.parse("not json").channel_id is None
    assert ModalMeta.opened_in("C0SHARED").dump() == '{"v":1,"channel_id":"C0SHARED"}'


def answered(n: int, customer_id: str, **columns: Any) -> tuple[Finding, Standing]:
    found = Finding(
        id=n,
        customer_id=customer_id,
        fingerprint=f"rds:111122223333:us-east-1:db-{n}:cpu",
        account=f"acct{n}",
        region="us-east-1",
        check="rds",
        resource=f"db-{n} <!here>",
        severity="crit",
        summary="CPU max 93 % (crit ≥ 90 %)",
        status="open",
        first_seen_at=NOW - timedelta(days=3),
        last_seen_at=NOW,
        history="111",
        returns=0,
        **columns,
    )
    return found, standing(found, (), NOW)


def test_it_shows_your_findings_with_who_and_until_in_the_customers_zone() -> None:
    board, customers, upcoming = crowded()
    mine = answered(1, "cust1", ack_by="U0ALICE", ack_at=NOW)
    ending = answered(
        2,
        "cust2",
        snooze_by="U0BOB",
        snooze_at=NOW - timedelta(days=1),
        snooze_until=NOW + timedelta(hours=3),
        snooze_reason="resize at lunch",
        snooze_severity="crit",
    )
    view = home_view(board, customers, upcoming, now=NOW, yours=[mine, ending])
    assert validate.view_problems(view) == []
    assert len(view["blocks"]) <= 100
    [section] = [b for b in view["blocks"] if b["block_id"] == BlockId.HOME_FINDINGS]
    assert section["text"]["text"].splitlines() == [
        "🔴 *Customer 2 &lt;!here&gt;* · acct2 · `db-2 &lt;!here&gt;` CPU max 93 % (crit ≥ 90 %) · "
        "open 3 d · 💤 until 10:05 WIB by <@U0BOB>",
        "🔴 *Customer 1 &lt;!here&gt;* · acct1 · `db-1 &lt;!here&gt;` CPU max 93 % (crit ≥ 90 %) · "
        "open 3 d · 👀 <@U0ALICE>",
    ]
    assert "*Your findings*" in validate.all_text(view)


def test_it_caps_your_findings_and_shows_nothing_when_there_are_none() -> None:
    board, customers, upcoming = crowded()
    many = [answered(n, f"cust{n}", ack_by="U0ALICE", ack_at=NOW) for n in range(40)]
    view = home_view(board, customers, upcoming, now=NOW, yours=many)
    assert validate.view_problems(view) == []
    assert len(view["blocks"]) <= 100
    assert "… and 30 more findings" in validate.all_text(view)
    empty = home_view(board, customers, upcoming, now=NOW)
    assert "Your findings" not in validate.all_text(empty)
    assert not any(b["block_id"] == BlockId.HOME_FINDINGS for b in empty["blocks"])


def blind_spot(n: int, minutes: int = 0) -> BlindSpot:
    why = "AccessDeniedException on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
    since = NOW - timedelta(days=1, minutes=-minutes)
    return BlindSpot(f"cust{n}", f"acct{n}", "rds", since, since, 2, "access", "", None, why)


def test_it_lists_blind_spots_first_and_never_shows_their_customer_as_all_clear() -> None:
    board, customers, upcoming = crowded()
    fine = run("completed", outcome="ok", id=9000, customer_id="cust0")
    board = replace(board, latest={**board.latest, "cust0": fine})
    spots = [blind_spot(0), *(blind_spot(n, n) for n in range(1, 8))]
    few = {key: customers[key] for key in ("cust0", "cust1", "cust2")}
    view = home_view(board, few, upcoming, now=NOW, blind=spots)
    assert validate.view_problems(view) == []
    assert len(view["blocks"]) <= 100
    blocks = view["blocks"]
    assert blocks[1]["block_id"] == BlockId.HOME_BLIND  # right under the title
    lines = blocks[1]["text"]["text"].splitlines()
    assert lines[0] == (
        "🕳️ *Not checked:* Customer 0 &lt;!here&gt; · acct0 · rds since Fri 20 Nov 07:05 WIB — "
        "AccessDeniedException on backup:ListBackupJobs; the role needs backup:ListBackupJobs"
    )
    assert [line.split(" · ")[1] for line in lines] == ["acct0", "acct1", "acct2"]  # theirs only
    every = {f"cust{n}": customers[f"cust{n}"] for n in range(8)}
    crowded_view = home_view(board, every, upcoming, now=NOW, blind=spots)
    assert crowded_view["blocks"][1]["text"]["text"].splitlines()[-1] == "🕳️ … and 4 more"
    [customers_block] = [b for b in blocks if b.get("block_id") == BlockId.HOME_CUSTOMERS]
    first = customers_block["text"]["text"].splitlines()
    cust0 = next(line for line in first if "Customer 0 " in line)
    assert cust0.startswith("🕳️ *Customer 0") and cust0.endswith("· 🕳️ 1 not checked")


def test_it_shows_maintenance_windows_open_now_then_those_coming() -> None:
    board, customers, upcoming = crowded()
    tz = ZoneInfo("Asia/Jakarta")
    now_open = Window("Failover test", ("acct0",), None, NOW - timedelta(hours=1),
                      NOW + timedelta(hours=1), "quarterly", "U0ALICE", "slack", 3)  # fmt: skip
    sunday = datetime(2026, 11, 22, 2, 0, tzinfo=tz)  # Sun 02:00 WIB
    coming = Window("RDS upgrades", None, ("rds",), sunday, sunday + timedelta(hours=2))
    over = Window("Old one", None, None, NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    few = {key: customers[key] for key in ("cust0", "cust1")}
    windows = {"cust0": [coming, now_open, over], "cust1": [], "cust9": [now_open]}
    view = home_view(board, few, upcoming, now=NOW, windows=windows)
    assert validate.view_problems(view) == []
    [block] = [b for b in view["blocks"] if b.get("block_id") == BlockId.HOME_MAINTENANCE]
    assert block["text"]["text"].splitlines() == [
        "*Customer 0 &lt;!here&gt;* (now) 🛠️ *Failover test* · acct0 · every check · "
        "06:05 – 08:05 WIB (2h) — quarterly",
        "*Customer 0 &lt;!here&gt;* (next) 🛠️ *RDS upgrades* · every account · rds · "
        "Sun 22 Nov 02:00 – 04:00 WIB (2h)",
    ]  # cust9's window is not the viewer's; the one that ended is gone
    quiet = home_view(board, few, upcoming, now=NOW)
    assert all(b.get("block_id") != BlockId.HOME_MAINTENANCE for b in quiet["blocks"])
