"""manifest.yml is a valid Slack app manifest and asks for exactly what the app uses."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from blocks.ids import COMMAND
from tests.conftest import ROOT


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text())
    return loaded


def test_it_is_valid_against_slacks_manifest_schema() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest(), schema)


def test_it_uses_socket_mode_with_interactivity_the_home_tab_and_the_slash_command() -> None:
    found = manifest()
    assert found["settings"]["socket_mode_enabled"] is True
    assert found["settings"]["interactivity"]["is_enabled"] is True
    assert "request_url" not in found["settings"]["interactivity"]  # Socket Mode: no public URL
    assert found["features"]["app_home"]["home_tab_enabled"] is True
    [command] = found["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert "run arbel rds --window 12h" in command["usage_hint"]


def test_it_asks_for_the_least_bot_scopes() -> None:
    scopes = manifest()["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == [
        "channels:history",
        "channels:read",  # conversations.members: channel grants on the web (docs/web.md)
        "chat:write",
        "commands",
        "files:write",  # the monthly report's PDF (docs/reports.md)
        "groups:history",
        "groups:read",
        "links:read",  # link_shared: a web-view link was posted
        "links:write",  # chat.unfurl: its status card
        "users:read",  # users.info: people by name on the web view (docs/web.md)
    ]


def test_its_only_user_scopes_are_sign_in_with_slacks_and_it_comes_back_to_the_web_view() -> None:
    found = manifest()["oauth_config"]
    assert sorted(found["scopes"]["user"]) == ["openid", "profile"]
    assert found["redirect_urls"] == ["https://hub.example.com/auth/callback"]


def test_web_view_links_unfurl_on_the_public_urls_host() -> None:
    found = manifest()
    assert found["features"]["unfurl_domains"] == ["hub.example.com"]
    assert found["settings"]["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "link_shared",
    ]
    assert urlsplit(found["oauth_config"]["redirect_urls"][0]).hostname == "hub.example.com"
