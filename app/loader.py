"""Read ``configs/customers/*.yaml`` into a :class:`~app.catalog.Catalog`.

Every problem names the file, the line and what to do, and all of them are collected (not just
the first) so ``mhub config check`` can print the whole list at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.catalog import Catalog
from app.config import Customer
from app.errors import ConfigError


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ConfigInvalid(ConfigError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the configuration:\n{lines}")


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise _DuplicateKey(
                    problem=f'duplicate key "{key}"; keep one of them',
                    problem_mark=key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_catalog(config_dir: Path) -> Catalog:
    """The validated catalogue, or ConfigInvalid listing every problem."""
    catalog, problems = check_config(config_dir)
    if problems:
        raise ConfigInvalid(problems)
    return catalog


def check_config(config_dir: Path) -> tuple[Catalog, list[Problem]]:
    """Validate every customer file; return what loaded and every problem found."""
    directory = config_dir / "customers"
    if not directory.is_dir():
        return Catalog(()), [
            Problem(
                directory,
                0,
                "no customers directory here; "
                "set HUB_CONFIG_DIR to the folder that holds customers/",
            )
        ]
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        return Catalog(()), [Problem(directory, 0, "no customer files (*.yaml) found")]
    problems: list[Problem] = []
    loaded: list[tuple[Path, Node, Customer]] = []
    for path in files:
        result = load_customer_file(path, problems)
        if result is not None:
            loaded.append((path, *result))
    problems.extend(_cross_file_problems(loaded))
    good = [customer for path, _, customer in loaded if not any(p.path == path for p in problems)]
    return Catalog(good), sorted(problems)


def load_customer_file(path: Path, problems: list[Problem]) -> tuple[Node, Customer] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, 0, f"cannot read the file: {exc}"))
        return None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()  # type: ignore[no-untyped-call]
            data = loader.construct_document(node) if node is not None else None  # type: ignore[no-untyped-call]
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(path, line, f"not valid YAML: {exc.problem}"))
        return None
    if not isinstance(data, dict) or node is None:
        kind = type(data).__name__ if data is not None else "empty"
        problems.append(
            Problem(
                path,
                1,
                f"the file must be a mapping with id, name and accounts "
                f"(found {kind}); see docs/configuration.md",
            )
        )
        return None
    before = len(problems)
    try:
        customer = Customer.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(path, node, exc, Customer))
        return None
    problems.extend(_check_settings_problems(path, node, customer))
    if customer.id != path.stem:
        problems.append(
            Problem(
                path,
                _line(node, ("id",)),
                f'id "{customer.id}" must match the file name; '
                f"rename the file to {customer.id}.yaml or change the id",
            )
        )
    return (node, customer) if len(problems) == before else None


def _check_settings_problems(path: Path, node: Node, customer: Customer) -> list[Problem]:
    from checks.registry import REGISTRY  # the registry imports checks, which import app.config

    problems: list[Problem] = []
    for kind, raw in customer.checks.items():
        check = REGISTRY.get(kind)
        if check is None:
            continue
        try:
            check.Settings.model_validate(raw or {})
        except ValidationError as exc:
            problems.extend(_problems(path, node, exc, check.Settings, prefix=("checks", kind)))
    return problems


def _cross_file_problems(loaded: list[tuple[Path, Node, Customer]]) -> Iterable[Problem]:
    owners: dict[str, str] = {}
    for _, _, customer in loaded:
        owners[customer.id] = f'customer "{customer.id}"'
    for path, node, customer in loaded:
        for index, account in enumerate(customer.accounts):
            owner = owners.get(account.id)
            if owner is not None:
                yield Problem(
                    path,
                    _line(node, ("accounts", index, "id")),
                    f'account alias "{account.id}" is already used by {owner}; '
                    "aliases must be unique across all customers — rename one",
                )
            else:
                owners[account.id] = f'account "{account.id}" of {customer.id}'


def _problems(
    path: Path,
    node: Node,
    exc: ValidationError,
    model: type[BaseModel],
    prefix: tuple[str | int, ...] = (),
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        where = _dotted(loc)
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, tuple(error["loc"]))
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            fix = (
                f'did you mean "{hint[0]}"?' if hint else f"the keys here are {', '.join(allowed)}"
            )
            message = f"{where}: unknown key; {fix}"
        elif error["type"] == "missing":
            message = f"{where}: required key is missing; add it"
        else:
            message = f"{where}: {_clean(error['msg'])}"
        problems.append(Problem(path, _line(node, loc), message))
    return problems


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line(node: Node, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest node on ``loc`` that exists in the YAML."""
    line = node.start_mark.line + 1
    for part in loc:
        child: Node | None = None
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == str(part):
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model that owns ``loc``'s last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
