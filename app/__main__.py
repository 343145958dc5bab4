"""``python -m app`` is ``mhub``."""

from app.cli import main

main()
