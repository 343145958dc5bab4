"""`mhub db upgrade` is safe to run from several replicas at once (PostgreSQL advisory lock)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import PG_SKIP, PG_URL, ROOT, pg_database


@pytest.fixture
def empty_pg() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    yield from pg_database(PG_URL)


def test_it_upgrades_once_when_three_replicas_upgrade_at_the_same_time(empty_pg: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_pg}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    heads = {out.strip().rsplit(" ", 1)[-1] for out, _ in outputs}
    assert len(heads) == 1, outputs  # every replica reports the same, current revision


def test_it_refuses_to_serve_an_old_postgresql_schema_and_says_what_to_run(
    empty_pg: str,
) -> None:
    env = {**os.environ, "DATABASE_URL": empty_pg, "HUB_CONFIG_DIR": str(ROOT / "configs")}
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--no-slack", "--no-web"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Run `mhub db upgrade` first" in done.stderr
