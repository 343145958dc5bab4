"""Sign in with Slack over real HTTP against the fake Slack, each redirect followed by hand and
asserted: the happy path and its cookies, every way a callback can be wrong (state, cookie,
reused code, another workspace, each spoilt ID token, a refusal, Slack down), open redirects,
sign-out, the session cookie itself, and nothing secret in the log at any level."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from cryptography.fernet import Fernet
from slack_sdk.web.async_client import AsyncWebClient

from app.db import Database
from app.engine.runs import RunService
from app.sandbox.moto import free_port
from app.slack.directory import channel_members
from app.web import create_app
from app.web.metrics import HubMetrics
from app.web.people import People
from app.web.server import AccessLogger
from app.web.session import Pending, Sessions, SignedIn
from app.web.signin import SlackSignIn, local_path
from tests.fakeslack.oidc import Tamper
from tests.fakeslack.server import BOT_TOKEN, TEAM, FakeSlack
from tests.web.sample import CATALOG, NOW

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "0123456789abcdef-the-client-secret"
ALICE = "U0ALICE"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.oidc_client(CLIENT_ID, CLIENT_SECRET)
        yield fake


@dataclass
class Hub:
    url: str
    sessions: Sessions
    signin: SlackSignIn


@pytest.fixture
async def hub(db: Database, slack: FakeSlack) -> AsyncIterator[Hub]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bot = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    sessions = Sessions(CLIENT_SECRET, secure=True)

    async def team() -> str:
        return TEAM

    signin = SlackSignIn(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        public_url=url,
        api_url=slack.api_url,
        team=team,
        sessions=sessions,
    )
    app = create_app(
        db=db,
        runs=RunService(db),
        catalog=CATALOG,
        metrics=HubMetrics(),
        clock=lambda: NOW,
        sign_in=(signin, People(CATALOG, channel_members(bot))),
        board_cache_s=0,
    )
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server(access_log_class=AccessLogger)  # mhub serve's own access log
    yield Hub(url, sessions, signin)
    await server.close()


@dataclass
class Browser:
    """Follows no redirect by itself, so each hop can be asserted. Keeps the hub's cookies by
    name with their path, and sends them back to the hub only, exactly as they were set."""

    hub: str
    http: aiohttp.ClientSession
    cookies: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def get(self, url: str) -> aiohttp.ClientResponse:
        return await self.send("GET", url)

    async def send(
        self, method: str, url: str, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        url = url if "://" in url else self.hub + url
        sent = dict(headers or {})
        if url.startswith(self.hub):
            path = urlsplit(url).path
            jar = [f"{n}={v}" for n, (v, p) in self.cookies.items() if path.startswith(p)]
            if jar:
                sent["Cookie"] = "; ".join(jar)
        response = await self.http.request(method, url, headers=sent, allow_redirects=False)
        await response.read()
        if url.startswith(self.hub):
            for name, morsel in response.cookies.items():
                if morsel["max-age"] == "0" or not morsel.coded_value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = (morsel.coded_value, morsel["path"] or "/")
        return response


@pytest.fixture
async def browser(hub: Hub) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield Browser(hub.url, http)


async def to_slack(browser: Browser, slack: FakeSlack, next_path: str = "/runs") -> str:
    """Open the hub's sign-in; the URL of Slack's sign-in page it sends the browser to."""
    login = await browser.get(f"/auth/login?next={quote(next_path, safe='')}")
    assert login.status == 302
    assert login.headers["Location"].startswith(f"{slack.url}/openid/connect/authorize?")
    return login.headers["Location"]


async def to_callback(browser: Browser, slack: FakeSlack, next_path: str = "/runs") -> str:
    """Through Slack's sign-in page: the hub's callback URL Slack sends the browser back to."""
    answer = await browser.get(await to_slack(browser, slack, next_path))
    assert answer.status == 302
    assert answer.headers["Location"].startswith(f"{browser.hub}/auth/callback?")
    return answer.headers["Location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    params = {**query(url), **changes}
    return url.split("?")[0] + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


async def assert_failed(
    response: aiohttp.ClientResponse, status: int, *words: str, browser: Browser | None = None
) -> None:
    assert response.status == status
    assert Sessions.COOKIE not in response.cookies or not response.cookies[Sessions.COOKIE].value
    page = await response.text()
    assert "Sign-in failed" in page
    assert 'href="/auth/login?next=' in page
    for word in words:
        assert word in page, word
    if browser is not None:
        assert Sessions.COOKIE not in browser.cookies
        assert Sessions.PENDING_COOKIE not in browser.cookies


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "app.web.signin" and r.getMessage().startswith("sign-in failed")
    ]


# -- the happy path -------------------------------------------------------------------------


async def test_it_signs_a_person_in_and_returns_to_the_page_they_asked_for(
    hub: Hub, slack: FakeSlack, browser: Browser
) -> None:
    slack.sign_in_as(ALICE, name="Alice Example")

    login = await browser.get("/auth/login?next=/runs%3Fstatus%3Dfailed")
    assert login.status == 302
    pending = login.cookies[Sessions.PENDING_COOKIE]
    assert pending["httponly"] and pending["secure"]
    assert (pending["path"], pending["max-age"], pending["samesite"]) == ("/auth/", "600", "Lax")
    authorize = login.headers["Location"]
    assert authorize.startswith(f"{slack.url}/openid/connect/authorize?")
    asked = query(authorize)
    assert {
        k: asked[k] for k in ("response_type", "scope", "client_id", "redirect_uri", "team")
    } == {
        "response_type": "code",
        "scope": "openid profile",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{hub.url}/auth/callback",
        "team": TEAM,
    }
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert "%20" in authorize  # the scope's space, as Slack's examples write it

    back = await browser.get(authorize)
    assert back.status == 302
    callback = back.headers["Location"]
    assert callback.startswith(f"{hub.url}/auth/callback?")
    assert query(callback)["state"] == asked["state"]

    signed_in = await browser.get(callback)
    assert signed_in.status == 302
    assert signed_in.headers["Location"] == "/runs?status=failed"
    session = signed_in.cookies[Sessions.COOKIE]
    assert session["httponly"] and session["secure"]
    assert (session["path"], session["max-age"], session["samesite"]) == ("/", "28800", "Lax")
    assert signed_in.cookies[Sessions.PENDING_COOKIE]["max-age"] == "0"
    assert set(browser.cookies) == {Sessions.COOKIE}

    page = await browser.get(signed_in.headers["Location"])
    assert page.status == 200
    assert "Alice Example" in await page.text()
    request = make_mocked_request(
        "GET", "/", headers={"Cookie": f"{Sessions.COOKIE}={session.coded_value}"}
    )
    assert hub.sessions.read(request) == SignedIn(ALICE, TEAM, "Alice Example")
    assert slack.violations == []
    exchange = slack.calls_of("openid.connect.token", ok=True)
    assert len(exchange) == 1
    assert not {"code", "client_secret", "state", "nonce"} & set(exchange[0].params)


async def test_an_anonymous_browser_is_sent_to_sign_in_and_comes_back_to_its_page(
    hub: Hub, slack: FakeSlack, browser: Browser
) -> None:
    slack.sign_in_as(ALICE)
    asked = await browser.get("/runs?status=failed")
    assert asked.status == 302
    assert asked.headers["Location"].startswith("/auth/login?next=")
    assert query(asked.headers["Location"]) == {"next": "/runs?status=failed"}
    login = await browser.get(asked.headers["Location"])
    callback = (await browser.get(login.headers["Location"])).headers["Location"]
    signed_in = await browser.get(callback)
    assert signed_in.headers["Location"] == "/runs?status=failed"
    assert (await browser.get("/runs?status=failed")).status == 200


# -- a callback that is wrong ---------------------------------------------------------------


async def test_a_callback_with_another_state_signs_nobody_in(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.sign_in_as(ALICE)
    callback = await to_callback(browser, slack)
    response = await browser.get(with_query(callback, state="an-attackers-state"))
    await assert_failed(response, 400, "Start again:", browser=browser)
    assert failures(caplog) == ["sign-in failed: the state does not match the sign-in under way"]
    assert slack.calls_of("openid.connect.token") == []


async def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_signs_nobody_in(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.sign_in_as(ALICE)
    callback = await to_callback(browser, slack)
    browser.cookies.clear()  # another browser, or the 10 minutes are over
    await assert_failed(await browser.get(callback), 400, "was not started in this browser")
    assert failures(caplog) == [
        "sign-in failed: no sign-in under way (no mhub_signin cookie, or it expired)"
    ]
    assert slack.calls_of("openid.connect.token") == []


async def test_a_code_used_twice_signs_nobody_in_the_second_time(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.sign_in_as(ALICE)
    callback = await to_callback(browser, slack)
    started = dict(browser.cookies)
    assert (await browser.get(callback)).status == 302

    browser.cookies = started  # the same callback replayed with its sign-in cookie
    await assert_failed(await browser.get(callback), 400, "used already", browser=browser)
    assert failures(caplog) == ['sign-in failed: openid.connect.token answered "invalid_code"']
    assert [c.error for c in slack.calls_of("openid.connect.token")] == [None, "invalid_code"]


async def test_a_person_of_another_workspace_is_not_signed_in(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.sign_in_as("U0EVE", team="T0OTHER", name="Eve Elsewhere")
    callback = await to_callback(browser, slack)
    response = await browser.get(callback)
    await assert_failed(
        response, 403, "Sign in to the workspace the hub is installed in", browser=browser
    )
    assert "Eve" not in await response.text()
    assert failures(caplog) == ["sign-in failed: the ID token is for another workspace"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (Tamper.EXPIRED, "it has expired"),
        (Tamper.AUDIENCE, "it was issued to another app (audience)"),
        (Tamper.ISSUER, "it was not issued by Slack (issuer)"),
        (Tamper.KEY, "its signature does not match Slack's keys"),
        (Tamper.NONCE, None),
    ],
)
async def test_an_id_token_that_fails_verification_signs_nobody_in(
    hub: Hub,
    slack: FakeSlack,
    browser: Browser,
    caplog: pytest.LogCaptureFixture,
    tamper: Tamper,
    reason: str | None,
) -> None:
    slack.sign_in_as(ALICE)
    slack.oidc_tamper(tamper)
    response = await browser.get(await to_callback(browser, slack))
    await assert_failed(response, 403, "could not be verified", browser=browser)
    expected = (
        f"the ID token failed verification: {reason}"
        if reason
        else "the ID token's nonce is not this sign-in's"
    )
    assert failures(caplog) == [f"sign-in failed: {expected}"]
    assert slack.calls_of("openid.connect.userInfo") == []


async def test_the_next_sign_in_after_a_spoilt_token_works(
    hub: Hub, slack: FakeSlack, browser: Browser
) -> None:
    slack.sign_in_as(ALICE)
    slack.oidc_tamper(Tamper.KEY, Tamper.EXPIRED)
    assert (await browser.get(await to_callback(browser, slack))).status == 403
    assert (await browser.get(await to_callback(browser, slack))).status == 302
    assert Sessions.COOKIE in browser.cookies


async def test_a_sign_in_slack_refused_signs_nobody_in(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    callback = await to_callback(browser, slack)  # nobody signed in to Slack: access_denied
    assert query(callback)["error"] == "access_denied"
    response = await browser.get(callback)
    await assert_failed(response, 403, "cancelled or refused", "Start again:", browser=browser)
    assert failures(caplog) == ['sign-in failed: Slack answered error="access_denied"']
    assert slack.calls_of("openid.connect.token") == []


async def test_slack_out_of_reach_is_a_502_that_says_to_try_again(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.sign_in_as(ALICE)
    callback = await to_callback(browser, slack)
    slack.outage(60)
    try:
        response = await browser.get(callback)
    finally:
        slack.end_outage()
    await assert_failed(response, 502, "could not be reached", "try again", browser=browser)
    assert failures(caplog) == ["sign-in failed: openid.connect.token answered HTTP 503"]


async def test_a_wrong_client_secret_asks_for_the_settings_to_be_checked(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    slack.oidc_client(CLIENT_ID, "the-secret-after-someone-regenerated-it")
    slack.sign_in_as(ALICE)
    response = await browser.get(await to_callback(browser, slack))
    await assert_failed(response, 500, "HUB_WEB_SLACK_CLIENT_SECRET", browser=browser)
    assert failures(caplog) == [
        "sign-in failed: openid.connect.token refused the hub's settings: bad_client_secret"
    ]


async def test_an_unknown_workspace_is_a_502_before_slack_is_asked(
    slack: FakeSlack, browser: Browser, hub: Hub
) -> None:
    async def unreachable() -> str:
        raise aiohttp.ClientConnectionError("no route to Slack")

    hub.signin._team = unreachable
    response = await browser.get("/auth/login?next=/runs")
    await assert_failed(response, 502, "try again in a minute")


# -- where a sign-in returns to -------------------------------------------------------------


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example", "evil"],
)
async def test_it_never_returns_to_another_site(
    hub: Hub, slack: FakeSlack, browser: Browser, next_path: str
) -> None:
    slack.sign_in_as(ALICE)
    signed_in = await browser.get(await to_callback(browser, slack, next_path))
    assert signed_in.status == 302
    assert signed_in.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/runs/5", "/runs/5"),
        ("/runs?status=failed&page=2", "/runs?status=failed&page=2"),
        ("/customers/demo%20x", "/customers/demo%20x"),
        (None, "/"),
        ("", "/"),
        ("runs", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
        ("/ /evil", "/"),
        ("/rüns", "/"),
        ("/auth/login?next=/auth/login", "/"),
        ("/" + "x" * 2000, "/"),
    ],
)
def test_only_local_paths_are_kept_to_return_to(given: str | None, kept: str) -> None:
    assert local_path(given) == kept


def test_the_login_path_quotes_the_page_to_return_to() -> None:
    signin = SlackSignIn(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        public_url="https://hub.example.com",
        api_url="https://slack.com/api/",
        team=_team,
        sessions=Sessions(CLIENT_SECRET, secure=True),
    )
    assert signin.login_path("/runs/5") == "/auth/login?next=/runs/5"
    assert signin.login_path("/runs?a=1&b=2") == "/auth/login?next=/runs%3Fa%3D1%26b%3D2"
    assert signin.login_path("//evil.example") == "/auth/login?next=/"
    assert signin.issuer == "https://slack.com"
    assert signin.redirect_uri == "https://hub.example.com/auth/callback"


async def _team() -> str:
    return TEAM


# -- signing out ----------------------------------------------------------------------------


async def signed_in(browser: Browser, slack: FakeSlack) -> None:
    slack.sign_in_as(ALICE)
    assert (await browser.get(await to_callback(browser, slack))).status == 302
    assert Sessions.COOKIE in browser.cookies


@pytest.mark.parametrize("origin", ["same", None])
async def test_signing_out_ends_the_session(
    hub: Hub, slack: FakeSlack, browser: Browser, origin: str | None
) -> None:
    await signed_in(browser, slack)
    headers = {"Origin": hub.url} if origin == "same" else {}
    out = await browser.send("POST", "/auth/logout", headers)
    assert out.status == 303
    assert out.headers["Location"] == "/auth/signed-out"
    assert out.cookies[Sessions.COOKIE]["max-age"] == "0"
    assert out.cookies[Sessions.COOKIE]["path"] == "/"
    assert Sessions.COOKIE not in browser.cookies
    page = await browser.get(out.headers["Location"])
    assert page.status == 200
    text = await page.text()
    assert "You are signed out." in text
    assert '<a href="/auth/login?next=/">Sign in with Slack</a>' in text
    assert (await browser.get("/runs")).status == 302  # back to signing in


async def test_a_sign_out_from_another_site_is_refused(
    hub: Hub, slack: FakeSlack, browser: Browser
) -> None:
    await signed_in(browser, slack)
    out = await browser.send("POST", "/auth/logout", {"Origin": "https://evil.example"})
    assert out.status == 403
    assert Sessions.COOKIE not in out.cookies
    assert "still signed in" in await out.text()
    assert (await browser.get("/runs")).status == 200


async def test_signing_out_takes_a_post_only(hub: Hub, browser: Browser) -> None:
    assert (await browser.get("/auth/logout")).status == 405


# -- the session cookie ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def sealed(sessions: Sessions, who: SignedIn) -> str:
    response = web.Response()
    sessions.start(response, who)
    return response.cookies[Sessions.COOKIE].value


def reading(sessions: Sessions, value: str, name: str = Sessions.COOKIE) -> SignedIn | None:
    return sessions.read(make_mocked_request("GET", "/", headers={"Cookie": f"{name}={value}"}))


WHO = SignedIn("U012AB3CD", TEAM, "Zoë O'Brien")


def test_a_session_cookie_reads_back_on_any_replica_until_it_expires() -> None:
    clock = Clock()
    sessions = Sessions(CLIENT_SECRET, secure=True, clock=clock)
    value = sealed(sessions, WHO)
    assert reading(Sessions(CLIENT_SECRET, secure=False, clock=clock), value) == WHO
    clock.now += 8 * 3600 - 1
    assert reading(sessions, value) == WHO
    clock.now += 2
    assert reading(sessions, value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "forged",
        "gAAAAA",
        "not base64 !!!",
        "💥",
        "x" * 5000,
    ],
)
def test_a_forged_session_cookie_reads_as_nobody(value: str) -> None:
    sessions = Sessions(CLIENT_SECRET, secure=True)
    request = make_mocked_request("GET", "/", headers={"Cookie": f"{Sessions.COOKIE}={value}"})
    assert sessions.read(request) is None
    assert sessions.read(make_mocked_request("GET", "/")) is None


def test_a_tampered_session_cookie_reads_as_nobody() -> None:
    sessions = Sessions(CLIENT_SECRET, secure=True)
    value = sealed(sessions, WHO)
    # (Not the last character: some of its bits are base64 padding, which decoding ignores.)
    for at in (0, 20, len(value) // 2, len(value) - 2):
        flipped = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
        assert reading(sessions, flipped) is None, at


def test_a_cookie_sealed_with_another_secret_or_for_the_sign_in_reads_as_nobody() -> None:
    sessions = Sessions(CLIENT_SECRET, secure=True)
    assert reading(sessions, sealed(Sessions("another-secret", secure=True), WHO)) is None
    response = web.Response()
    sessions.start_pending(response, Pending("state", "nonce", "/"))
    assert reading(sessions, response.cookies[Sessions.PENDING_COOKIE].value) is None


def test_a_well_sealed_cookie_without_a_person_in_it_reads_as_nobody() -> None:
    """Sealed with the right key (as a leaked key could), but not a session: still None."""
    from app.web.session import SESSION_INFO, _key

    sessions = Sessions(CLIENT_SECRET, secure=True)
    fernet = Fernet(_key(CLIENT_SECRET, SESSION_INFO))
    for body in (
        b"not json",
        b"[1, 2]",
        b'{"user": "U1"}',
        b'{"user": 1, "team": "T", "name": "N"}',
    ):
        assert reading(sessions, fernet.encrypt(body).decode()) is None, body


def test_the_session_cookie_is_http_only_lax_and_secure_when_asked() -> None:
    for secure in (True, False):
        response = web.Response()
        Sessions(CLIENT_SECRET, secure=secure, max_age_s=600).start(response, WHO)
        morsel = response.cookies[Sessions.COOKIE]
        assert morsel["httponly"] is True
        assert bool(morsel["secure"]) is secure
        assert (morsel["samesite"], morsel["path"], morsel["max-age"]) == ("Lax", "/", "600")
        assert "=" not in morsel.value and '"' not in morsel.output()


def test_a_sign_in_cookie_lasts_ten_minutes() -> None:
    clock = Clock()
    sessions = Sessions(CLIENT_SECRET, secure=True, clock=clock)
    response = web.Response()
    sessions.start_pending(response, Pending("s" * 43, "n" * 43, "/runs/5"))
    value = response.cookies[Sessions.PENDING_COOKIE].value
    request = make_mocked_request(
        "GET", "/auth/callback", headers={"Cookie": f"{Sessions.PENDING_COOKIE}={value}"}
    )
    assert sessions.pending(request) == Pending("s" * 43, "n" * 43, "/runs/5")
    assert sessions.read(request) is None
    clock.now += 601
    assert sessions.pending(request) is None


# -- the log --------------------------------------------------------------------------------


async def test_nothing_secret_reaches_the_log_at_any_level(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("slack_sdk").setLevel(logging.DEBUG)
    try:
        slack.sign_in_as(ALICE)
        await signed_in(browser, slack)
        cookies = [v for v, _ in browser.cookies.values()]
        callback = await to_callback(browser, slack)
        cookies += [v for v, _ in browser.cookies.values()]
        await browser.get(with_query(callback, state="wrong"))  # wrong state
        callback = await to_callback(browser, slack)
        started = dict(browser.cookies)
        cookies += [v for v, _ in started.values()]
        await browser.get(callback)
        browser.cookies = started
        await browser.get(callback)  # the code again
        slack.oidc_tamper(Tamper.NONCE)
        await browser.get(await to_callback(browser, slack))
        await browser.send("POST", "/auth/logout", {"Origin": hub.url})
    finally:
        logging.getLogger("slack_sdk").setLevel(logging.NOTSET)

    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.name != "aiohttp.access"  # (the hub's access log: the next test)
    )
    assert "sign-in failed" in logged
    secrets = [*slack.secrets(), CLIENT_SECRET, *cookies]
    assert len([s for s in secrets if len(s) >= 8]) >= 10
    for secret in secrets:
        assert secret not in logged, secret[:12]


async def test_the_access_log_keeps_the_callbacks_code_and_state_out(
    hub: Hub, slack: FakeSlack, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.sign_in_as(ALICE)
    callback = await to_callback(browser, slack)
    await browser.get(callback)
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/auth/callback" in line for line in access)
    for secret in (query(callback)["code"], query(callback)["state"]):
        assert not any(secret in line for line in access)
