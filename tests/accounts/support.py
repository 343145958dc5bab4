"""An AWS organization planted in moto (over HTTP, as the hub reaches it), and customers that
discover its accounts. Production code never imports this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.catalog import Catalog
from app.config import Customer
from app.sandbox import moto

MANAGEMENT = "999988887777"
ORG_ROLE = f"arn:aws:iam::{MANAGEMENT}:role/MonitoringOrgReader"
TAG = "monitoring-alias"


@dataclass
class Org:
    """The organization: its root, OUs and accounts by name (ids are moto's random ones)."""

    url: str
    root: str = ""
    ous: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    def client(self) -> Any:
        return moto.seed_session(self.url, MANAGEMENT).client("organizations")

    def add_ou(self, name: str, under: str | None = None) -> str:
        parent = self.ous[under] if under else self.root
        made = self.client().create_organizational_unit(ParentId=parent, Name=name)
        self.ous[name] = made["OrganizationalUnit"]["Id"]
        return self.ous[name]

    def add_account(
        self, name: str, ou: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        client = self.client()
        made = client.create_account(
            AccountName=name,
            Email=f"{name.lower().replace(' ', '-')}@example.com",
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )
        account_id = str(made["CreateAccountStatus"]["AccountId"])
        if ou is not None:
            client.move_account(
                AccountId=account_id, SourceParentId=self.root, DestinationParentId=self.ous[ou]
            )
        self.accounts[name] = account_id
        return account_id

    def suspend(self, name: str) -> None:
        self.client().close_account(AccountId=self.accounts[name])

    def remove(self, name: str) -> None:
        self.client().remove_account_from_organization(AccountId=self.accounts[name])


def plant(url: str) -> Org:
    """An organization: root ─ prod ─ payments, root ─ shared; accounts in each."""
    org = Org(url)
    client = org.client()
    client.create_organization(FeatureSet="ALL")
    org.root = client.list_roots()["Roots"][0]["Id"]
    org.add_ou("prod")
    org.add_ou("payments", under="prod")
    org.add_ou("shared")
    org.add_account("Prod Web", "prod")
    org.add_account("Prod Payments", "payments", tags={TAG: "pay-prod"})
    org.add_account("Shared Logs", "shared")
    return org


def customer(
    customer_id: str = "acme", *, accounts: list[dict[str, Any]] | None = None, **organization: Any
) -> Customer:
    """A customer that discovers its accounts (``organization`` overrides the defaults)."""
    org: dict[str, Any] = {
        "role_arn": ORG_ROLE,
        "external_id": "acme-monitoring",
        "defaults": {"regions": ["us-east-1"], "checks": ["alarms"]},
        **organization,
    }
    data: dict[str, Any] = {
        "id": customer_id,
        "name": customer_id.title(),
        "timezone": "Asia/Jakarta",
        "slack": {"channel": "C0ACME"},
        "organization": org,
    }
    if accounts:
        data["accounts"] = accounts
    return Customer.model_validate(data)


def catalog(*customers: Customer) -> Catalog:
    return Catalog(customers)
