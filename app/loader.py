"""Read ``configs/customers/*.yaml`` into a :class:`~app.catalog.Catalog`.

Every problem names the file, the line and what to do, and all of them are collected (not just
the first) so ``mhub config check`` can print the whole list at once.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.catalog import Catalog
from app.config import EMPTY_ROUTING, Checking, Customer, LocatedError, clip
from app.errors import ConfigError

Loc = tuple[str | int, ...]
DOCS = "docs/configuration.md"
MAX_DEPTH = 32
"""How deeply a customer file may nest; the deepest key it has is 5 levels down
(``checks.http.endpoints[0].name``), so anything near this is a mistake."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the configuration; ``line`` is 1-based, 0 when it has none."""

    path: Path
    line: int
    message: str

    def __post_init__(self) -> None:
        # one problem, one line: a value quoted in a message may hold a newline
        one_line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.message)
        object.__setattr__(self, "message", one_line)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class ConfigInvalid(ConfigError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the configuration:\n{lines}")


class _Unreadable(yaml.MarkedYAMLError):
    """A scalar YAML resolved to a type it cannot be (a date that does not exist, a number of
    thousands of digits); ``problem`` says what to do."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys instead of silently keeping the last, refuses
    numbers that are not finite (``.nan``, ``.inf``, ``1.0e+999``: compared with a threshold, they
    would turn it off silently), and turns a value it cannot construct into a marked error."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.noted: list[tuple[int, str]] = []
        """(line, message) of each duplicate key and each number that is not finite."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[no-untyped-call]
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # a constructor's own error, such as `!!bool x`'s KeyError
            tag = node.tag.rsplit(":", 1)[-1]
            what = {"int": "whole number", "float": "number", "timestamp": "date"}.get(tag, tag)
            why = f" ({clip(exc, 60)})" if isinstance(exc, ValueError | OverflowError) else ""
            raise _Unreadable(
                problem=f'"{clip(node.value)}" is not a valid {what}{why}; '
                "correct it, or put it in quotes to keep it as text",
                problem_mark=node.start_mark,
            ) from None

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)  # type: ignore[no-untyped-call]
        if not math.isfinite(value):
            self.noted.append(
                (
                    node.start_mark.line + 1,
                    f'"{clip(node.value)}" is not a finite number; write a number such as 80 '
                    "(or put it in quotes if it is text)",
                )
            )
        return value

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; SafeLoader reports it below
                continue
            if duplicate:
                self.noted.append(
                    (key_node.start_mark.line + 1, f'duplicate key "{key}"; keep only one of them')
                )
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


def load_catalog(
    config_dir: Path, now: datetime | None = None, env: Mapping[str, str] | None = os.environ
) -> Catalog:
    """The validated catalogue, or ConfigInvalid listing every problem (those of the
    environment that ``routing:`` names included; ``env=None`` leaves it unchecked)."""
    catalog, problems = check_config(config_dir, now, env)
    if problems:
        raise ConfigInvalid(problems)
    return catalog


def check_config(
    config_dir: Path, now: datetime | None = None, env: Mapping[str, str] | None = os.environ
) -> tuple[Catalog, list[Problem]]:
    """Validate every customer file; return the customers that loaded and every problem.

    ``now`` (timezone-aware) is what a suppression's ``until`` must still be ahead of: ``mhub
    config check`` passes the current time; loading to serve passes none, so a suppression
    that has ended is only no longer in force (it does not take its customer away).

    ``env`` is where the variables a ``routing:`` block names must be set (the process's
    environment unless told otherwise; None: not checked). A customer whose only problems are
    there is still in the catalogue returned — what reads past runs and findings does not
    need them — but it is a problem all the same, so :func:`load_catalog` (``mhub serve``,
    ``mhub run``) refuses it like any other."""
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
    files = sorted(
        path
        for pattern in ("*.yaml", "*.yml")
        for path in directory.glob(pattern)
        if not path.name.startswith(".")
    )
    if not files:
        return Catalog(()), [
            Problem(directory, 0, f"no customer files (*.yaml) found; add one, see {DOCS}")
        ]
    problems: list[Problem] = []
    parsed = [(path, found) for path in files if (found := _parse(path, problems)) is not None]
    checking = Checking(now, _owners(data for _, (_, data) in parsed), env)
    files_read = [_validate(path, node, data, checking, problems) for path, (node, data) in parsed]
    problems.extend(_cross_file_problems(files_read))
    broken = {p.path for p in problems}
    good = [f.customer for f in files_read if f.customer is not None and f.path not in broken]
    problems.extend(p for f in files_read for p in f.environment)
    return Catalog(good), sorted(set(problems))


@dataclass(frozen=True)
class _File:
    """A customer file that is valid YAML; ``customer`` is None when it did not validate."""

    path: Path
    node: Node
    data: dict[Any, Any]
    customer: Customer | None
    environment: tuple[Problem, ...] = field(default=())
    """Problems with the environment alone: ``customer`` is the file's customer all the same."""


def load_customer_file(
    path: Path, problems: list[Problem], now: datetime | None = None
) -> tuple[Node, Customer] | None:
    """The file's YAML tree and customer; on any problem, append it and return None."""
    before = len(problems)
    parsed = _parse(path, problems)
    if parsed is None:
        return None
    node, data = parsed
    found = _validate(path, node, data, Checking(now), problems)
    if found.customer is None or len(problems) > before:
        return None
    return found.node, found.customer


def _validate(
    path: Path, node: Node, data: dict[Any, Any], checking: Checking, problems: list[Problem]
) -> _File:
    customer: Customer | None = None
    environment: list[Problem] = []
    try:
        customer = Customer.model_validate(data, context=checking)
    except ValidationError as exc:
        found = _problems(path, node, exc, Customer)
        customer = _without_environment(data, checking)
        (environment if customer is not None else problems).extend(found)
    problems.extend(_check_settings_problems(path, node, data))
    if "routing" in data and data["routing"] is None:  # `routing:` with nothing under it
        problems.append(Problem(path, _line(node, ("routing",)), f"routing: {EMPTY_ROUTING}"))
    if isinstance(data.get("id"), str) and data["id"] != path.stem:
        problems.append(
            Problem(
                path,
                _line(node, ("id",)),
                f'id "{data["id"]}" must match the file name; '
                f"rename the file to {data['id']}{path.suffix} or change the id to {path.stem}",
            )
        )
    return _File(path, node, data, customer, tuple(environment))


def _without_environment(data: dict[Any, Any], checking: Checking) -> Customer | None:
    """The customer, when the file is right and only the environment it names is not."""
    if checking.env is None or not isinstance(data.get("routing"), dict):
        return None
    try:
        return Customer.model_validate(data, context=replace(checking, env=None))
    except ValidationError:
        return None


def _parse(path: Path, problems: list[Problem]) -> tuple[Node, dict[Any, Any]] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, 0, f"cannot read the file ({exc}); save it as UTF-8 text"))
        return None
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character, refused before parsing
        line = text.count("\n", 0, exc.position) + 1
        problems.append(
            Problem(
                path,
                line,
                f"character #x{exc.character:04x} is not allowed in YAML; delete it "
                "(or write it as an escape inside double quotes)",
            )
        )
        return None
    try:
        node = loader.get_single_node()  # type: ignore[no-untyped-call]
        deep = _too_deep(node)
        if deep is not None:
            problems.append(deep_problem(path, deep.start_mark.line + 1))
            return None
        data = loader.construct_document(node) if node is not None else None  # type: ignore[no-untyped-call]
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(path, exc))
        return None
    except RecursionError:  # nested deeper than the parser's stack, before _too_deep could look
        problems.append(deep_problem(path, loader.get_mark().line + 1))  # type: ignore[no-untyped-call]
        return None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    problems.extend(Problem(path, line, message) for line, message in loader.noted)
    if node is None or data is None:
        problems.append(
            Problem(
                path, 1, f"the file is empty; write a customer with id, name and accounts ({DOCS})"
            )
        )
        return None
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        problems.append(
            Problem(
                path,
                node.start_mark.line + 1,
                f"the file is {found}; a customer file is a mapping with id, name and accounts "
                f"({DOCS})",
            )
        )
        return None
    return node, data


def deep_problem(path: Path, line: int) -> Problem:
    return Problem(
        path,
        line,
        f"too deeply nested (more than {MAX_DEPTH} levels); a customer file needs a handful — "
        "close the brackets opened before this line",
    )


def _too_deep(root: Node | None) -> Node | None:
    """The first node nested deeper than ``MAX_DEPTH``, or None. Each node is looked at once,
    so aliases (shared or even recursive) cost nothing extra."""
    seen: set[int] = set()
    level = [root] if root is not None else []
    for _ in range(MAX_DEPTH + 1):  # level k holds the nodes k levels below the top
        below: list[Node] = []
        for node in level:
            children = []
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [part for pair in node.value for part in pair]
            for child in children:
                if id(child) not in seen:
                    seen.add(id(child))
                    below.append(child)
        if not below:
            return None
        level = below
    return level[0]


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, _Unreadable) and exc.problem_mark is not None:
        return Problem(path, exc.problem_mark.line + 1, str(exc.problem))
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None)
    if "end of stream" in problem or "simple key" in str(context) or mark is None:
        # point at what was left open, or at the key that lacks its colon
        mark = getattr(exc, "context_mark", None) or mark
    text = f"{context}, {problem}" if context else problem
    if "'\\t'" in problem:
        fix = "indent with spaces, not tabs"
    elif "alias" in text:
        fix = 'a value that starts with * must be in quotes, for example cron: "*/5 * * * *"'
    elif "single document" in text:
        fix = "keep one customer per file and remove the extra ---"
    elif "simple key" in str(context):
        fix = 'write "key: value", with a space after the colon'
    elif "end of stream" in problem:
        fix = "close the quote or bracket opened here"
    else:
        fix = "check the indentation and quoting on this line and the one before"
    line = mark.line + 1 if mark is not None else 0
    return Problem(path, line, f"not valid YAML: {text}; {fix}")


def _check_settings_problems(path: Path, node: Node, data: dict[Any, Any]) -> list[Problem]:
    """Validate ``checks.<kind>`` against each check's settings model, and make sure a check
    an account runs without a ``checks`` entry is complete with its defaults."""
    from checks.registry import REGISTRY  # the registry imports checks, which import app.config

    blocks = data.get("checks")
    blocks = blocks if isinstance(blocks, dict) else {}
    problems: list[Problem] = []
    for kind, raw in blocks.items():
        check = REGISTRY.get(kind) if isinstance(kind, str) else None
        if check is None or not isinstance(raw, dict | None):
            continue  # unknown kinds and non-mappings are reported by the Customer model
        try:
            check.Settings.model_validate(raw or {})
        except ValidationError as exc:
            problems.extend(_problems(path, node, exc, check.Settings, prefix=("checks", kind)))
    for kind, loc in _first_uses(data).items():
        check = REGISTRY.get(kind)
        if kind in blocks or check is None:
            continue
        try:
            check.Settings.model_validate({})
        except ValidationError as exc:
            needed = ", ".join(dict.fromkeys(_dotted(tuple(e["loc"])) for e in exc.errors()))
            problems.append(
                Problem(
                    path,
                    _line(node, loc),
                    f'"{kind}" needs settings; add checks.{kind} with {needed} '
                    f"(see docs/checks.md#{kind})",
                )
            )
    return problems


def _first_uses(data: dict[Any, Any]) -> dict[str, Loc]:
    """Each check kind the accounts run, with where it is first named."""
    uses: dict[str, Loc] = {}
    accounts = data.get("accounts")
    for index, account in enumerate(accounts if isinstance(accounts, list) else []):
        kinds = account.get("checks") if isinstance(account, dict) else None
        for position, kind in enumerate(kinds if isinstance(kinds, list) else []):
            if isinstance(kind, str):
                uses.setdefault(kind, ("accounts", index, "checks", position))
    organization = data.get("organization")
    defaults = organization.get("defaults") if isinstance(organization, dict) else None
    kinds = defaults.get("checks") if isinstance(defaults, dict) else None
    for position, kind in enumerate(kinds if isinstance(kinds, list) else []):
        if isinstance(kind, str):
            uses.setdefault(kind, ("organization", "defaults", "checks", position))
    return uses


def _names(data: dict[Any, Any]) -> tuple[str | None, list[tuple[int, str]]]:
    """The customer id and (index, alias) of each account, as written, valid or not."""
    customer_id = data.get("id") if isinstance(data.get("id"), str) else None
    accounts = data.get("accounts")
    aliases = [
        (index, account["id"])
        for index, account in enumerate(accounts if isinstance(accounts, list) else [])
        if isinstance(account, dict) and isinstance(account.get("id"), str)
    ]
    return customer_id, aliases


def _owners(files: Iterable[dict[Any, Any]]) -> dict[str, str]:
    """Account alias → the id of the customer whose file lists it first, from every file that
    is valid YAML (so a suppression naming another customer's account can say whose it is)."""
    owners: dict[str, str] = {}
    for data in files:
        customer_id, aliases = _names(data)
        if customer_id is not None:
            for _, alias in aliases:
                owners.setdefault(alias, customer_id)
    return owners


def _cross_file_problems(files: list[_File]) -> Iterator[Problem]:
    """Customer ids and account aliases share one namespace, since TARGET may be either.

    Read from every file that is valid YAML, so a collision shows up even while one of the two
    files has other problems."""
    owners: dict[str, tuple[str, Path, int]] = {}
    for file in files:
        customer_id, _ = _names(file.data)
        if customer_id is None:
            continue
        line = _line(file.node, ("id",))
        if customer_id in owners:
            _, other, other_line = owners[customer_id]
            yield Problem(
                file.path,
                line,
                f'customer id "{customer_id}" is also used in {other.name}:{other_line}; '
                "keep one file per customer",
            )
            continue
        owners[customer_id] = (f'customer "{customer_id}"', file.path, line)
    for file in files:
        customer_id, aliases = _names(file.data)
        for index, alias in aliases:
            line = _line(file.node, ("accounts", index, "id"))
            owner = owners.get(alias)
            if owner is None:
                owners[alias] = (f'account "{alias}" of {customer_id}', file.path, line)
            elif alias == customer_id and owner[1] == file.path:
                yield Problem(
                    file.path,
                    line,
                    f'account alias "{alias}" is this customer\'s id, so it cannot name '
                    "the account alone; rename the account",
                )
            elif owner[1] != file.path:  # twice in one file is reported by the Customer model
                what, other, other_line = owner
                yield Problem(
                    file.path,
                    line,
                    f'account alias "{alias}" is already used by {what} '
                    f"({other.name}:{other_line}); aliases must be unique across all "
                    "customers — rename one",
                )


def _problems(
    path: Path, node: Node, exc: ValidationError, model: type[BaseModel], prefix: Loc = ()
) -> list[Problem]:
    errors = exc.errors()
    # pydantic adds "too short" for a list whose only item failed; the item's error is enough
    locs = [tuple(e["loc"]) for e in errors]
    errors = [
        e
        for e in errors
        if e["type"] != "too_short"
        or not any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == tuple(e["loc"]) for o in locs)
    ]
    # a .nan or .inf written in YAML is reported once, by the loader, with its line
    errors = [e for e in errors if not (e["type"] == "finite_number" and _is_float(e["input"]))]
    problems = []
    for error in errors:
        for loc, message in _explain(error, model):
            full = prefix + loc
            problems.append(Problem(path, _line(node, full), f"{_dotted(full)}: {message}"))
    return problems


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _explain(error: ErrorDetails, model: type[BaseModel]) -> Iterable[tuple[Loc, str]]:
    """(where, what to do) for one pydantic error, relative to ``model``."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, LocatedError):
        return [(loc + where, message) for where, message in cause.all]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if hint:
            fix = f'did you mean "{hint[0]}"?'
        else:
            fix = (
                f"the keys here are {', '.join(allowed)}"
                if allowed
                else "remove it, nothing is set here"
            )
        return [(loc, f"unknown key; {fix}")]
    if kind == "too_short":
        return [(loc, f"list at least {error.get('ctx', {}).get('min_length', 1)}")]
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        bound = error.get("ctx", {}).get(key)
        return [(loc, f"must be {word} {f'{bound:g}' if isinstance(bound, float) else bound}")]
    if kind in ("tuple_type", "list_type") and isinstance(error["input"], str | int | float):
        return [(loc, f"must be a list; write [{clip(error['input'])}]")]
    return [(loc, _MESSAGES.get(kind) or _clean(error["msg"]))]


_BOUNDS = {
    "greater_than": ("above", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("below", "lt"),
    "less_than_equal": ("at most", "le"),
}
_MESSAGES = {
    "missing": "required key is missing; add it",
    "string_type": "must be text; put it in quotes",
    "string_too_short": "must not be empty",
    "tuple_type": "must be a list, for example [a, b]",
    "list_type": "must be a list, for example [a, b]",
    "set_type": "must be a list, for example [a, b]",
    "dict_type": "must be a mapping of key: value",
    "model_type": "must be a mapping of key: value",
    "model_attributes_type": "must be a mapping of key: value",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "finite_number": "must be a finite number, such as 80",
}


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message.replace("Input should be", "must be", 1)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line(node: Node, loc: Loc) -> int:
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


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
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
