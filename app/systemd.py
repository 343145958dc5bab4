"""Tell systemd how the process is doing (``Type=notify``): ready, reloading, stopping.

The protocol is one datagram of ``KEY=value`` lines to the socket systemd names in
``NOTIFY_SOCKET`` (sd_notify(3); ``Settings.notify_socket``); without it (not under systemd)
nothing is sent. Written here rather
than taken from a package: it is a dozen lines, and the packages for it are unmaintained.
"""

from __future__ import annotations

import socket
import time


def notify(address: str | None, *states: str) -> bool:
    """Send ``states`` (``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=…``) to the
    socket at ``address``; False when there is none or it refused (never raises)."""
    if not address or not states:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError:
        return False
    return True


def reloading(address: str | None) -> bool:
    """``RELOADING=1`` with the monotonic time systemd asks for alongside it."""
    return notify(address, "RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
