"""Where a notice goes: its ``destination`` (``pagerduty``, ``webhook:N``) read against the
customer's routing configuration *now*, and the names of the environment variables that hold
its secrets (never their values: those are read when sending)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.catalog import Catalog

PAGERDUTY = "pagerduty"
_WEBHOOK = re.compile(r"webhook:(\d{1,4})\Z", re.ASCII)


@dataclass(frozen=True)
class PagerDutyTarget:
    key_env: str
    """The variable holding the integration key (routing key)."""


@dataclass(frozen=True)
class WebhookTarget:
    index: int
    url_env: str
    """The variable holding the receiver's address."""
    secret_env: str
    """The variable holding the signing secret."""


Target = PagerDutyTarget | WebhookTarget


class Unroutable(Exception):
    """The notice has nowhere to go any more; the message says why, in plain words."""


def route(catalog: Catalog, customer_id: str, destination: str) -> Target:
    """The target ``destination`` names for ``customer_id`` in ``catalog``; raises
    :class:`Unroutable` when the customer or that destination is no longer configured."""
    customer = catalog.customers.get(customer_id)
    if customer is None:
        raise Unroutable(
            f'customer "{customer_id}" is no longer configured (no configs/customers/'
            f"{customer_id}.yaml), so the notice was not sent"
        )
    routing = customer.routing
    if destination == PAGERDUTY:
        pagerduty = routing.pagerduty if routing is not None else None
        if pagerduty is None:
            raise Unroutable(
                f'customer "{customer_id}" no longer sends to PagerDuty (routing.pagerduty is '
                "not set in its configuration), so the notice was not sent"
            )
        return PagerDutyTarget(pagerduty.routing_key_env)
    match = _WEBHOOK.match(destination)
    if match is None:
        raise Unroutable(f'unknown destination "{destination[:40]}" (pagerduty or webhook:N)')
    index = int(match.group(1))
    hooks = tuple(routing.webhooks) if routing is not None else ()
    if index >= len(hooks):
        raise Unroutable(
            f'customer "{customer_id}" no longer has webhook {index} (routing.webhooks lists '
            f"{len(hooks)}), so the notice was not sent"
        )
    hook = hooks[index]
    return WebhookTarget(index, hook.url_env, hook.secret_env)
