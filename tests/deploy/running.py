"""``mhub serve`` as systemd runs it (``Type=notify``): a subprocess told where to send its
state by ``NOTIFY_SOCKET``, a unix datagram socket the test binds and reads."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT, demo_env

REFUSED_AWS = "http://127.0.0.1:9"
"""An AWS endpoint that refuses at once: the hub starts without reaching AWS."""
START_S = 60.0


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    notify: socket.socket
    log: Path
    url: str
    told: list[str] = field(default_factory=list)

    def next_state(self, within_s: float = START_S) -> str:
        """The next datagram the hub sent to systemd (fails after ``within_s``)."""
        deadline = time.monotonic() + within_s
        self.notify.settimeout(0.5)
        while True:
            try:
                sent = self.notify.recv(4096).decode()
            except TimeoutError:
                self.alive()
                assert time.monotonic() < deadline, f"nothing sent to systemd:\n{self.tail()}"
                continue
            self.told.append(sent)
            return sent

    def alive(self) -> None:
        assert self.proc.poll() is None, f"mhub serve exited:\n{self.tail()}"

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(
    tmp: Path, *args: str, python: Sequence[str] = (sys.executable,), **env: str
) -> Iterator[Served]:
    """``mhub serve ARGS`` on the demo config with a fresh SQLite file and the web view on a
    free loopback port, run by ``python``; stopped with SIGTERM at the end."""
    address = str(tmp / "notify.sock")
    port = free_port()
    log = tmp / "serve.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(address)
        environment = demo_env(
            REFUSED_AWS,
            tmp,
            NOTIFY_SOCKET=address,
            HUB_WEB_HOST="127.0.0.1",
            HUB_WEB_PORT=str(port),
            **env,
        )
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*python, "-m", "app.cli", "serve", *args],
                env=environment,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            yield Served(proc, notify, log, f"http://127.0.0.1:{port}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
