"""Each discovered account's alias (pure): from its tag, else the one it had, else its name —
unique, and steady from one sync to the next."""

from __future__ import annotations

from app.accounts.aliases import assign, slug
from app.accounts.found import Member


def member(account_id: str, name: str, tag: str | None = None) -> Member:
    return Member(account_id, name, "ACTIVE", "ou-ab12-prod", tag)


def test_a_slug_is_lowercase_ascii_words_joined_by_dashes() -> None:
    assert slug("Prod — Payments (ÜK)") == "prod-payments-uk"
    assert slug("   ") == ""
    assert len(slug("x" * 80)) == 40


def test_a_name_twice_gets_the_last_digits_of_the_account_id() -> None:
    decided = assign(
        [member("111100001111", "Prod"), member("222200002222", "Prod")],
        previous={},
        taken={},
        tag=None,
    )

    assert decided.given == {"111100001111": "prod", "222200002222": "prod-2222"}


def test_an_account_monitored_until_now_keeps_its_alias_when_one_that_left_comes_back() -> None:
    back, staying = member("111100001111", "Web"), member("222200002222", "Web")

    decided = assign(
        [back, staying],
        previous={"111100001111": "web", "222200002222": "web"},  # the first one left once
        taken={},
        tag=None,
        steady={"222200002222"},
    )

    assert decided.given == {"222200002222": "web", "111100001111": "web-1111"}


def test_a_tag_that_is_not_an_alias_is_refused_with_what_to_do() -> None:
    decided = assign(
        [member("111100001111", "Web", tag="Web Prod!")], previous={}, taken={}, tag="alias"
    )

    assert decided.given == {}
    assert decided.refused["111100001111"] == (
        'account 111100001111 (Web) is skipped: its tag alias="Web Prod!" is not a valid alias '
        "(lowercase letters, digits, - and _, at most 40) — change the tag, or add the account "
        "to exclude_accounts"
    )


def test_a_taken_tag_alias_leaves_an_account_its_old_alias_and_says_so() -> None:
    decided = assign(
        [member("111100001111", "Web", tag="arbel")],
        previous={"111100001111": "web"},
        taken={"arbel": "account arbel of customer aryanoble"},
        tag="alias",
    )

    assert decided.given == {"111100001111": "web"}
    assert decided.notes == [
        'account 111100001111 (Web): its tag alias="arbel" is already account arbel of '
        "customer aryanoble; aliases are unique across customers; it keeps the alias web — "
        "change the tag, or add the account to exclude_accounts"
    ]
