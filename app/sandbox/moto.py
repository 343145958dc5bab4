"""A moto server in a subprocess, reached over HTTP through ``AWS_ENDPOINT_URL``.

Nothing in the process under test is patched: boto3 talks HTTP to this server exactly as it
would to AWS. ``seed_session(account_id)`` gives a boto3 session inside one moto account (by
assuming a role there), for arranging test data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import boto3

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port; yield its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **FAKE_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        # Killed, not terminated: its state lives in memory only, and on SIGTERM moto exits
        # through the interpreter's finalisation, whose garbage collection of that state takes
        # seconds per hundred accounts (500 accounts: over the 10 s allowed here).
        proc.kill()
        proc.wait(10)


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def seed_session(url: str, account_id: str, region: str = "us-east-1") -> boto3.Session:
    """A boto3 session whose calls land in moto account ``account_id``."""
    if account_id == "123456789012":  # moto's default account
        return boto3.Session(
            region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
    sts = boto3.client(
        "sts",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/seed", RoleSessionName="seed")[
        "Credentials"
    ]
    return boto3.Session(
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
