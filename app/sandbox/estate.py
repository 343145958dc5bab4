"""``mhub sandbox``: the demo estate alone, served to hubs running elsewhere.

The AWS emulator of ``mhub demo`` (moto on loopback, behind the sandbox edge) with the demo
estate planted, on HOST:PORT until SIGTERM or Ctrl-C; no hub, no database. The compose demo
(``deploy/compose/``) runs it as its ``sandbox`` service: point a hub's ``AWS_ENDPOINT_URL`` at
it, give it any AWS keys (``testing``) and the demo customer (``configs/demo``).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType

import click

from app.sandbox.edge import Edge
from app.sandbox.moto import moto_server
from app.sandbox.seed import seed


def serve_estate(host: str, port: int, ready_file: Path | None = None) -> int:
    """Serve the seeded emulator on ``host:port`` until SIGTERM or SIGINT; exit code 0.
    ``ready_file`` is created once the estate is planted (the emulator answers before that,
    with nothing in it yet) and removed on the way out."""
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopping)
    click.echo("· starting the AWS emulator…")
    with moto_server() as moto_url, Edge(moto_url, host=host, port=port) as edge:
        started = time.monotonic()
        seed(moto_url, edge)
        click.echo(
            f"· planted the demo estate (3 accounts) in {time.monotonic() - started:.1f} s\n"
            f"Serving it on {edge.url} (set AWS_ENDPOINT_URL to it, and any AWS keys). "
            "Ctrl-C or SIGTERM stops it."
        )
        if ready_file is not None:
            ready_file.touch()
        try:
            stop.wait()
        finally:
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)
    click.echo("· stopped")
    return 0
