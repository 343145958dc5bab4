"""The compose demo (deploy/compose/compose.yaml) would start: every hub service's environment
is valid, its mounted config loads, every command is a real `mhub` command, the replicas share
one PostgreSQL, no two services want the same host port; and `mhub sandbox` serves the estate."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
import yaml
from sqlalchemy.engine import make_url

from app.cli import main
from app.loader import check_config
from app.sandbox.moto import free_port
from app.settings import Settings
from app.web.security import check_exposure
from tests.conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
REPLICAS = ("hub-1", "hub-2")


def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def hub_services() -> dict[str, dict[str, Any]]:
    """The services that run the hub's image (entrypoint `mhub`)."""
    return {name: s for name, s in services().items() if s.get("image") == "monitoring-hub:demo"}


def mounted(service: dict[str, Any], target: str) -> Path:
    for volume in service.get("volumes", []):
        source, inside, *_ = volume.split(":")
        if inside == target:
            return (COMPOSE.parent / source).resolve()
    raise AssertionError(f"nothing is mounted at {target}")


def command_path(args: list[str]) -> str:
    """The `mhub` command ``args`` names, its options parsed as click would, without running it."""
    command: click.Command = main
    ctx = click.Context(main, info_name="mhub")
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(ctx, name)
        assert found is not None, f"mhub has no command {name!r}"
        command, ctx = found, click.Context(found, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, list(args), parent=ctx.parent)  # a bad option fails
    return ctx.command_path


def test_it_runs_postgresql_a_migration_two_replicas_and_the_estate() -> None:
    commands = {name: command_path(s["command"]) for name, s in hub_services().items()}
    assert commands == {
        "sandbox": "mhub sandbox",
        "migrate": "mhub db upgrade",
        "hub-1": "mhub serve",
        "hub-2": "mhub serve",
    }
    assert "postgres" in services()
    for name in REPLICAS:
        after = services()[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully"
        assert after["sandbox"]["condition"] == "service_healthy"
        assert "--no-slack" in services()[name]["command"]


def test_every_hub_service_has_a_valid_environment() -> None:
    for name, service in hub_services().items():
        settings = Settings.from_env(**service["environment"])  # EnvironmentInvalid says why
        auth = settings.web_auth.get_secret_value() if settings.web_auth else None
        check_exposure(settings.web_host, settings.web_port, auth, sign_in=settings.sign_in)
        assert service["environment"]["AWS_ENDPOINT_URL"] == "http://sandbox:4566", name


def test_the_mounted_config_loads_without_a_problem() -> None:
    for name, service in hub_services().items():
        folder = mounted(service, service["environment"]["HUB_CONFIG_DIR"])
        catalog, problems = check_config(folder, datetime.now(UTC))
        assert not problems, f"{name}: {[str(p) for p in problems]}"
        assert list(catalog.customers) == ["demo"]


def test_the_replicas_share_one_postgresql_database() -> None:
    urls = {services()[name]["environment"]["DATABASE_URL"] for name in (*REPLICAS, "migrate")}
    assert len(urls) == 1
    url = make_url(urls.pop())
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgres"
    postgres = services()["postgres"]["environment"]
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )


def test_no_two_services_want_the_same_host_port() -> None:
    published = [
        port.rsplit(":", 2)[-2] for s in services().values() for port in s.get("ports", [])
    ]
    assert len(published) == len(set(published)) == len(REPLICAS)


def test_docker_compose_reads_it() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if version.returncode:
        pytest.skip("this docker CLI has no compose plugin (`docker compose` is unknown)")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(180)
def test_mhub_sandbox_serves_the_demo_estate_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log = tmp_path / "stderr.txt"
    planted = tmp_path / "estate.ready"  # the compose file's health check
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "sandbox", "--port", str(port), "--ready-file", planted],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert server.stdout is not None
        lines = iter(server.stdout.readline, "")
        starting = next(lines)
        assert "starting" in starting and not planted.exists()
        ready = next(line for line in lines if line.startswith("Serving it on"))
        assert f"http://127.0.0.1:{port}" in ready
        url = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(f"{url}/_edge/health", timeout=5).close()
        assert alarms_in_shop_prod(url) == ["shop-prod-5xx-rate"]
        assert planted.exists()  # healthy once planted: a hub never sees an empty estate
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, log.read_text()
    assert "stopped" in out and not planted.exists()


def alarms_in_shop_prod(url: str) -> list[str]:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", **keys)
    role = "arn:aws:iam::111111111111:role/MonitoringReadOnly"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="test", ExternalId="demo-monitoring")
    session = creds["Credentials"]
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=url,
        region_name="ap-southeast-3",
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    alarms = cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    return sorted(alarm["AlarmName"] for alarm in alarms)
