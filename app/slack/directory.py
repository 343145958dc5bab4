"""What the web view asks Slack about people: the app's team, who is in a channel, and the
names of people and channels.

All with the bot token, through the Web API: ``auth.test`` (once; the team does not change),
``conversations.members`` (every page of it), ``users.info`` and ``conversations.info``. The web
view caches the answers itself (:class:`app.web.people.People`, :class:`app.web.names.Names`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

PAGE = 1000
"""Members asked for per call (Slack's most)."""


def channel_members(client: AsyncWebClient) -> Callable[[str], Awaitable[frozenset[str]]]:
    async def members(channel: str) -> frozenset[str]:
        found: set[str] = set()
        cursor: str | None = None
        while True:
            answer = await client.conversations_members(channel=channel, limit=PAGE, cursor=cursor)
            found.update(str(u) for u in answer.get("members") or [])
            cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return frozenset(found)

    return members


def app_team(client: AsyncWebClient) -> Callable[[], Awaitable[str]]:
    """The id of the workspace the app is installed in (``auth.test``), asked once."""
    known: list[str] = []

    async def team() -> str:
        if not known:
            answer = await client.auth_test()
            known.append(str(answer["team_id"]))
        return known[0]

    return team


class NameUnknown(Exception):
    """Slack could not be asked a name (``missing_scope``, ``ratelimited``, a 5xx)."""


UNKNOWN = frozenset({"user_not_found", "user_not_visible", "channel_not_found"})
"""Slack's answers for an id it has no name for: shown as the id, not a failure."""


async def _known(call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
    """Slack's answer to an ``*.info`` call; None when it has no such id (:data:`UNKNOWN`);
    :class:`NameUnknown` when it could not say."""
    try:
        return await call
    except SlackApiError as exc:
        if _error(exc) in UNKNOWN:
            return None
        raise NameUnknown(f"Slack answered {_error(exc) or 'something not JSON'}") from None


def user_name(client: AsyncWebClient) -> Callable[[str], Awaitable[str | None]]:
    """A user's name as Slack shows it (``users.info``): the display name, else the full name,
    else the username; None for a user Slack does not know."""

    async def name(user: str) -> str | None:
        answer = await _known(client.users_info(user=user))
        if answer is None:
            return None
        found = answer.get("user") or {}
        profile = found.get("profile") or {}
        for said in (profile.get("display_name"), found.get("real_name"), found.get("name")):
            if said and str(said).strip():
                return str(said).strip()
        return None

    return name


def channel_name(client: AsyncWebClient) -> Callable[[str], Awaitable[str | None]]:
    """A channel's name (``conversations.info``); None for one Slack does not show the app."""

    async def name(channel: str) -> str | None:
        answer = await _known(client.conversations_info(channel=channel))
        if answer is None:
            return None
        said = (answer.get("channel") or {}).get("name")
        return str(said) if said else None

    return name


def _error(exc: SlackApiError) -> str | None:
    """Slack's error code (``user_not_found``); None for an answer that was not Slack's JSON."""
    data = exc.response.data
    return str(data.get("error")) if isinstance(data, dict) else None
