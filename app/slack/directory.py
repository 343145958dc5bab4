"""What the web view asks Slack about people: the app's team, and who is in a channel.

Both with the bot token, through the Web API: ``auth.test`` (once; the team does not change)
and ``conversations.members`` (every page of it). The web view caches the members itself
(:class:`app.web.people.People`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

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
