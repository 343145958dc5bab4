"""The fake Slack's Sign in with Slack and conversations.members answer like Slack: codes used
once, credentials as form fields or HTTP Basic, ID tokens that verify against its keys, pages of
members, secrets never kept in the record."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import jwt
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakeslack.oidc import Tamper
from tests.fakeslack.server import BOT_TOKEN, TEAM, FakeSlack

CLIENT_ID = "1111111111.2222222222"
SECRET = "fake-client-secret"
BACK = "https://hub.example.com/auth/callback"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.oidc_client(CLIENT_ID, SECRET, [BACK])
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def authorize_query(**changes: str) -> dict[str, str]:
    asked = {
        "response_type": "code",
        "scope": "openid profile",
        "client_id": CLIENT_ID,
        "redirect_uri": BACK,
        "state": "the-state",
        "nonce": "the-nonce",
        "team": TEAM,
    }
    return {k: v for k, v in {**asked, **changes}.items() if v}


async def code_for(http: aiohttp.ClientSession, slack: FakeSlack, **changes: str) -> str:
    url = f"{slack.url}/openid/connect/authorize?{urlencode(authorize_query(**changes))}"
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert back["state"] == ["the-state"]
    return back["code"][0]


async def exchange(
    http: aiohttp.ClientSession, slack: FakeSlack, *, basic: bool = False, **form: str
) -> dict[str, Any]:
    headers = {}
    if basic:
        pair = f"{form.pop('client_id')}:{form.pop('client_secret')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    async with http.post(
        f"{slack.api_url}openid.connect.token", data=form, headers=headers
    ) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_a_person_signs_in_with_a_code_exchanged_once(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    slack.sign_in_as("U0ALICE", name="Alice Example")
    code = await code_for(http, slack)
    form = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code, "redirect_uri": BACK}
    answer = await exchange(http, slack, basic=True, **form)
    assert answer["ok"] is True and answer["token_type"] == "Bearer"
    assert answer["access_token"].startswith("xoxp-")

    async with http.get(f"{slack.url}/openid/connect/keys") as response:
        keys = jwt.PyJWKSet.from_dict(await response.json())
    kid = jwt.get_unverified_header(answer["id_token"])["kid"]
    claims = jwt.decode(
        answer["id_token"], keys[kid].key, ["RS256"], audience=CLIENT_ID, issuer=slack.url
    )
    assert claims["nonce"] == "the-nonce"
    assert claims["https://slack.com/user_id"] == claims["sub"] == "U0ALICE"
    assert claims["https://slack.com/team_id"] == TEAM
    assert claims["name"] == "Alice Example" and claims["given_name"] == "Alice"
    assert claims["exp"] - claims["iat"] == 3600

    web = AsyncWebClient(base_url=slack.api_url)
    profile = await web.openid_connect_userInfo(token=answer["access_token"])
    assert profile["sub"] == "U0ALICE" and profile["name"] == "Alice Example"

    again = await exchange(http, slack, **form)
    assert again == {"ok": False, "error": "invalid_code"}
    with pytest.raises(SlackApiError, match="invalid_auth"):  # revoked with the reused code
        await web.openid_connect_userInfo(token=answer["access_token"])
    for call in slack.calls:
        assert not {"code", "client_secret", "state", "nonce", "token"} & set(call.params)
    assert {SECRET, code, answer["access_token"], answer["id_token"]} <= set(slack.secrets())


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client_id": "9.9"}, "invalid_client_id"),
        ({"client_secret": "guess"}, "bad_client_secret"),
        ({"code": "1.unknown"}, "invalid_code"),
        ({"redirect_uri": "https://hub.example.com/elsewhere"}, "bad_redirect_uri"),
        ({"grant_type": "refresh_token"}, "invalid_grant_type"),
    ],
)
async def test_an_exchange_slack_would_refuse_is_refused(
    slack: FakeSlack, http: aiohttp.ClientSession, changes: dict[str, str], error: str
) -> None:
    slack.sign_in_as("U0ALICE")
    code = await code_for(http, slack)
    form = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code, "redirect_uri": BACK}
    assert await exchange(http, slack, **{**form, **changes}) == {"ok": False, "error": error}


async def test_with_nobody_signed_in_to_slack_the_browser_comes_back_denied(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    url = f"{slack.url}/openid/connect/authorize?{urlencode(authorize_query())}"
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert back == {"error": ["access_denied"], "state": ["the-state"]}
    assert slack.violations == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"response_type": "token"}, "response_type must be code"),
        ({"scope": "profile"}, "scope must include openid"),
        ({"client_id": "9.9"}, "client_id is not a registered app"),
        ({"redirect_uri": "https://evil.example/cb"}, "redirect_uri is not one of the app's"),
        ({"redirect_uri": ""}, "redirect_uri is missing"),
        ({"state": ""}, "state is missing"),
        ({"nonce": ""}, "nonce is missing"),
    ],
)
async def test_a_malformed_authorize_is_a_violation_and_an_error_page(
    slack: FakeSlack, http: aiohttp.ClientSession, changes: dict[str, str], problem: str
) -> None:
    slack.sign_in_as("U0ALICE")
    url = f"{slack.url}/openid/connect/authorize?{urlencode(authorize_query(**changes))}"
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 400
        assert response.content_type == "text/html"
    assert len(slack.violations) == 1 and problem in slack.violations[0]


async def test_a_tamper_spoils_the_next_id_token_only(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    slack.sign_in_as("U0ALICE")
    slack.oidc_tamper(Tamper.AUDIENCE, Tamper.NONCE)
    tokens = []
    for _ in range(2):
        code = await code_for(http, slack)
        form = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code, "redirect_uri": BACK}
        tokens.append(
            jwt.decode(
                (await exchange(http, slack, **form))["id_token"],
                options={"verify_signature": False},
            )
        )
    assert (tokens[0]["aud"], tokens[0]["nonce"]) != (CLIENT_ID, "the-nonce")
    assert (tokens[1]["aud"], tokens[1]["nonce"]) == (CLIENT_ID, "the-nonce")


async def test_conversations_members_comes_in_pages(slack: FakeSlack) -> None:
    people = [f"U0P{n:03d}" for n in range(7)]
    await slack.aset_members("C0GRANTED1", people)
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    found: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = await web.conversations_members(channel="C0GRANTED1", limit=3, cursor=cursor)
        found += answer["members"]
        pages += 1
        cursor = answer["response_metadata"]["next_cursor"] or None
        if cursor is None:
            break
    assert (found, pages) == (people, 3)
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await web.conversations_members(channel="C0UNKNOWN1")
    with pytest.raises(SlackApiError, match="invalid_cursor"):
        await web.conversations_members(channel="C0GRANTED1", cursor="!!")
    assert slack.violations == []
