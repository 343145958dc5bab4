"""``mhub report``: the seeded month printed, as JSON, as a PDF and as CSV files; bad input
answers in one line, exits 2 and writes nothing."""

from __future__ import annotations

import asyncio
import csv
import json
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from app.db import Database
from tests.reports.seed import WIB, History, november_history

ARBEL = """\
    id: arbel
    name: Arbel Retail
    timezone: Asia/Jakarta
    slack: {channel: C0ARBEL001}
    accounts:
      - id: arbel-prod
        name: Arbel Production
        account_id: "111111111111"
        regions: [ap-southeast-3]
        checks: [backup, rds, alarms, budget, http]
      - id: arbel-data
        name: Arbel Data
        account_id: "222222222222"
        regions: [ap-southeast-3]
        checks: [backup, budget]
    checks:
      http:
        endpoints:
          - {name: shop, url: "https://shop.example.com/health"}
    schedules:
      - {name: morning, cron: "0 7 * * *"}
"""


@pytest.fixture
def config(tmp_path: Path, engine_url: str) -> dict[str, str]:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True)
    (customers / "arbel.yaml").write_text(textwrap.dedent(ARBEL))
    return {"HUB_CONFIG_DIR": str(customers.parent), "DATABASE_URL": engine_url}


@pytest.fixture
async def env(db: Database, config: dict[str, str]) -> dict[str, str]:
    """The seeded November, and the last week of October."""
    await november_history().write(db)
    return config


@pytest.fixture
async def began(db: Database, config: dict[str, str]) -> dict[str, str]:
    """One look, on 25 October: enough for the answers to bad input."""
    history = History("arbel")
    history.run(datetime(2026, 10, 25, tzinfo=WIB), [("arbel-data", "budget", "ok", {})])
    await history.write(db)
    return config


async def mhub(env: dict[str, str], *args: str) -> Result:
    from app.cli import report_command

    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, report_command, list(args), env=env)


async def test_the_month_in_every_form(env: dict[str, str], tmp_path: Path) -> None:
    pdf, csvs = tmp_path / "out" / "arbel.pdf", tmp_path / "out" / "csv"
    (tmp_path / "out").mkdir()
    done = await mhub(env, "arbel", "--month", "2026-11", "--pdf", str(pdf), "--csv", str(csvs))
    assert done.exit_code == 0, done.output
    assert "Monthly report for Arbel Retail, November 2026." in done.stdout
    assert "99.5" in done.stdout and "62" in done.stdout

    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "99.5 %" in text and "104 %" in text

    [availability] = csvs.glob("*availability.csv")
    with availability.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert "99.5" in row.values()

    as_json = await mhub(env, "arbel", "--from", "2026-11-01", "--to", "2026-11-30", "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["period"]["month"] == "2026-11"
    assert data["availability"][0]["uptime_pct"] == pytest.approx(99.5)
    assert data["backups"]["failed"] == 2 and data["backups"]["jobs"] == 62
    budgets = {b["name"]: b for b in data["cost"]}
    assert budgets["monthly"]["actual_pct"] == pytest.approx(104.0)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--month", "2099-01"], "has not begun yet"),
        (["--month", "2026-13"], "is not a month"),
        (["--month", "2026-08"], "began on 25 Oct 2026"),
        (["--from", "2026-11-20", "--to", "2026-11-01"], "is after --to"),
        (["--from", "2026-11-20"], "give both --from and --to"),
        (["--month", "2026-11", "--from", "2026-11-01", "--to", "2026-11-02"], "not both"),
    ],
)
async def test_bad_input_says_what_to_do_and_writes_nothing(
    began: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    pdf = tmp_path / "never.pdf"
    done = await mhub(began, "arbel", *args, "--pdf", str(pdf))
    assert done.exit_code == 2
    assert says in done.stderr
    assert "Traceback" not in done.output
    assert not pdf.exists()


async def test_an_unknown_customer_is_named_as_unknown(began: dict[str, str]) -> None:
    done = await mhub(began, "nobody", "--month", "2026-11")
    assert done.exit_code == 2
    assert "nobody" in done.stderr and "Traceback" not in done.output
