"""The one list of check kinds, held against what the hub implements and documents."""

from __future__ import annotations

from checks import kinds
from checks.registry import REGISTRY
from tests.conftest import ROOT


def test_it_implements_exactly_the_kinds_a_config_may_name_in_their_order() -> None:
    assert list(REGISTRY) == list(kinds.NAMES)
    assert all(REGISTRY[name].kind == name for name in kinds.NAMES)


def test_it_documents_every_kind_for_operators() -> None:
    guide = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    missing = [k.name for k in kinds.KINDS if f"\n## {k.name}\n" not in guide]
    assert missing == []
