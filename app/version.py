"""The version of Monitoring Hub that is running, as the installed package's metadata says."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "monitoring-hub"


def current() -> str:
    """The installed version (``0.1.0``); ``0+unknown`` when run from a tree never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
