"""Links that open a finding's resource in the AWS console, in its account and region.

Each check says where its resources are in the console (``console_url`` in its module); this
wraps that page in the customer's way in, its ``console:`` (:class:`app.config.Console`):

- **IAM Identity Center** (``sso_start_url`` and ``permission_set``):
  ``<start url>/#/console?account_id=…&role_name=…&destination=…`` signs in to the account with
  the permission set and opens the page (the access portal's shortcut links);
- **switch role** (``switch_role``):
  ``https://signin.aws.amazon.com/switchrole?account=…&roleName=…&displayName=…`` opens the
  console's switch-role form, filled in. Its parameters take no page, so after switching the
  console opens at its home; :func:`destination` is the page itself, which opens in the right
  account once the browser has switched.

There is no link when the customer has no ``console:``, for a check that is not about AWS
(``http``), for an account the customer no longer has, or outside the commercial partition
(GovCloud and China have consoles and sign-in pages of their own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from app.config import REGION, Customer
from checks import alarms, backup, budget, certs, cost, health, http, hygiene, rds, security

Destination = Callable[[str, str, Mapping[str, Any]], str | None]
"""(region, resource id, resource line) → the console page, or None."""

DESTINATIONS: dict[str, Destination] = {
    "backup": backup.console_url,
    "rds": rds.console_url,
    "alarms": alarms.console_url,
    "budget": budget.console_url,
    "http": http.console_url,
    "health": health.console_url,
    "certs": certs.console_url,
    "security": security.console_url,
    "cost": cost.console_url,
    "hygiene": hygiene.console_url,
}
"""Each check kind's console pages (a test holds this to :data:`checks.kinds.NAMES`)."""

SWITCH_ROLE = "https://signin.aws.amazon.com/switchrole"


def link(
    customer: Customer,
    account_alias: str,
    check: str,
    region: str,
    resource_id: str,
    line: Mapping[str, Any] | None = None,
) -> str | None:
    """The link that opens ``resource_id`` (as ``check`` reports it) in the console, signed in
    to ``account_alias``'s account the customer's way; None when there is none.

    ``region`` is the resource line's (a finding with none, about a whole result, opens the
    account's first region). ``line`` is the whole resource line when the caller has it (a
    result card does, a finding does not): some checks link deeper with it (a backup job)."""
    way = customer.console
    account = customer.account(account_alias)
    if way is None or account is None:
        return None
    page = destination(check, region or account.regions[0], resource_id, line)
    if page is None:
        return None
    if way.sso_start_url is not None and way.permission_set is not None:
        query = urlencode(
            {
                "account_id": account.account_id,
                "role_name": way.permission_set,
                "destination": page,
            },
            quote_via=quote,
            safe="",
        )
        return f"{way.sso_start_url}/#/console?{query}"
    if way.switch_role is not None:
        query = urlencode(
            {"account": account.account_id, "roleName": way.switch_role, "displayName": account.id},
            quote_via=quote,
            safe="",
        )
        return f"{SWITCH_ROLE}?{query}"
    return None


def destination(
    check: str, region: str, resource_id: str, line: Mapping[str, Any] | None = None
) -> str | None:
    """The console page of ``resource_id`` itself, with no sign-in around it; None for a check
    without one, or a region that is not a commercial AWS region (it goes into a host name,
    so anything else is refused rather than escaped)."""
    pages = DESTINATIONS.get(check)
    match = REGION.match(region)
    if pages is None or match is None or match.group(1) or region.startswith("cn-"):
        return None
    return pages(region, resource_id, line or {})
