"""What the listeners are given: the services they call, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from app.slack.answering import Answering
from app.slack.desk import Desk
from app.slack.followups import FollowUps
from app.slack.home import HomeTab
from app.slack.maintaining import Maintaining
from app.slack.modal import Launcher
from app.slack.unfurls import Unfurls


@dataclass(frozen=True)
class Services:
    desk: Desk
    home: HomeTab
    launcher: Launcher
    followups: FollowUps
    answering: Answering
    maintaining: Maintaining
    public_url: str | None = None
    unfurls: Unfurls | None = None
    """Link unfurls (None: the hub has no public URL, so no links of its own)."""
