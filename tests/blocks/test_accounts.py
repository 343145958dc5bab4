"""The message a customer's channel gets when its organization sync changed something: built
without Slack, within Slack's limits, times in the customer's zone."""

from __future__ import annotations

from datetime import UTC, datetime

from app.accounts.found import Known, News
from app.config import Customer
from blocks.accounts import MAX_LISTED, news_message
from tests.fakeslack.validate import message_problems

AT = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # 06:30 the next day in Jakarta
ACME = Customer.model_validate(
    {
        "id": "acme",
        "name": "Acme <Corp>",
        "timezone": "Asia/Jakarta",
        "organization": {
            "role_arn": "arn:aws:iam::999988887777:role/Reader",
            "defaults": {"regions": ["ap-southeast-3"]},
        },
    }
)


def known(index: int, name: str = "Prod") -> Known:
    return Known(f"{index:012d}", f"acct-{index}", f"{name} {index}", "active", ("ap-southeast-3",))


def test_it_says_what_is_new_gone_and_suspended_in_the_customers_zone() -> None:
    news = News(
        "acme",
        AT,
        3,
        new=(known(1),),
        gone=((known(2), "no longer in the organization or the OUs included"),),
        suspended=(known(3),),
    )

    message = news_message(ACME, news, ACME.tz)

    assert message_problems(message) == []
    texts = [block["text"]["text"] for block in message["blocks"]]
    assert texts[0] == "🏢 *Acme &lt;Corp&gt;'s AWS organization* · synced 06:30 WIB"
    assert texts[1] == (
        "🆕 *1 new account*, checked from now on like the listed ones\n"
        "• `acct-1` Prod 1 (000000000001) · ap-southeast-3"
    )
    assert texts[2] == (
        "👋 *1 gone*, no longer checked\n"
        "• `acct-2` Prod 2 (000000000002): no longer in the organization or the OUs included"
    )
    assert texts[3] == "⏸️ *1 suspended*, skipped\n• `acct-3` Prod 3 (000000000003)"
    assert message["text"] == (
        "Acme &lt;Corp&gt;'s AWS organization: 1 new account, 1 gone, 1 suspended"
    )


def test_a_first_sync_of_hundreds_of_accounts_fits_in_one_message() -> None:
    news = News(
        "acme", AT, 1, new=tuple(known(i, "A very long account name " * 3) for i in range(600))
    )

    message = news_message(ACME, news, ACME.tz)

    assert message_problems(message) == []
    listed = message["blocks"][1]["text"]["text"]
    assert listed.count("\n• ") == MAX_LISTED
    assert listed.endswith("… and 580 more (`mhub accounts list`)")
