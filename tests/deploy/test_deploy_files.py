"""The deployment files stay in step with the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings
from tests.conftest import ROOT

ENV_EXAMPLE = ROOT / "deploy" / "env" / "monitoring-hub.env.example"
UNIT = ROOT / "deploy" / "systemd" / "monitoring-hub.service"


def settings_variables() -> set[str]:
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def documented(path: Path) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", path.read_text(), flags=re.M))


def test_it_lists_every_setting_in_the_env_example() -> None:
    missing = settings_variables() - documented(ENV_EXAMPLE)
    assert not missing, f"add to {ENV_EXAMPLE.name}: {sorted(missing)}"


def test_it_lists_no_setting_the_code_does_not_read() -> None:
    stale = {v for v in documented(ENV_EXAMPLE) if not v.startswith("AWS_")}
    stale -= settings_variables()
    assert not stale, f"remove from {ENV_EXAMPLE.name}: {sorted(stale)}"


def test_it_documents_every_setting_in_the_configuration_guide() -> None:
    guide = (ROOT / "docs" / "configuration.md").read_text()
    missing = {v for v in settings_variables() if v not in guide}
    assert not missing, f"document in docs/configuration.md: {sorted(missing)}"


def test_it_gives_systemd_longer_to_stop_than_the_graceful_shutdown() -> None:
    unit = UNIT.read_text()
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, flags=re.M).group(1))  # type: ignore[union-attr]
    grace = Settings.model_fields["grace_s"].default
    assert stop > grace + 10
    assert re.search(r"^ExecStart=.*mhub serve$", unit, flags=re.M)
    assert re.search(r"^User=(?!root)\w+", unit, flags=re.M)
    assert re.search(r"^EnvironmentFile=", unit, flags=re.M)
    assert re.search(r"^Restart=on-failure", unit, flags=re.M)
