"""Slack's documented limits as checks: each function returns the list of problems (empty when
the payload is one Slack would accept). Used by the fake Slack on every payload it receives, and
by the ``blocks`` unit tests directly."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
ID = 255
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
MESSAGE_TEXT = 40_000
MODAL_TEXT = 24
PRIVATE_METADATA = 3000
BROADCASTS = ("<!channel>", "<!here>", "<!everyone>")

_BLOCK_KEYS = {
    "section": {"type", "block_id", "text", "fields", "accessory"},
    "context": {"type", "block_id", "elements"},
    "actions": {"type", "block_id", "elements"},
    "divider": {"type", "block_id"},
    "header": {"type", "block_id", "text"},
    "input": {"type", "block_id", "label", "element", "hint", "optional", "dispatch_action"},
}
_BUTTON_KEYS = {
    "type",
    "action_id",
    "text",
    "value",
    "url",
    "style",
    "confirm",
    "accessibility_label",
}


def message_problems(message: Mapping[str, Any], *, require_text: bool = True) -> list[str]:
    """A message for chat.postMessage/update/postEphemeral, an ack, or a response_url."""
    problems: list[str] = []
    text = message.get("text")
    if require_text and (not isinstance(text, str) or not text.strip()):
        problems.append("message has no text fallback")
    if isinstance(text, str) and len(text) > MESSAGE_TEXT:
        problems.append(f"message text is {len(text)} characters (max {MESSAGE_TEXT})")
    blocks = message.get("blocks")
    if blocks is not None:
        problems += blocks_problems(blocks, MAX_MESSAGE_BLOCKS)
    metadata = message.get("metadata")
    if metadata is not None:
        problems += _metadata_problems(metadata)
    dumped = json.dumps({"text": text, "blocks": blocks}, ensure_ascii=False)
    problems += [f"message contains {b}" for b in BROADCASTS if b in dumped]
    return problems


def view_problems(view: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(f"view type {kind!r} is not modal or home")
    problems += blocks_problems(view.get("blocks") or [], MAX_VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        if key in view:
            problems += _text_problems(view[key], f"view.{key}", MODAL_TEXT, plain_only=True)
    if kind == "modal" and "title" not in view:
        problems.append("modal has no title")
    if len(str(view.get("callback_id", ""))) > ID:
        problems.append("callback_id longer than 255")
    if len(str(view.get("private_metadata", ""))) > PRIVATE_METADATA:
        problems.append("private_metadata longer than 3000")
    return problems


def blocks_problems(blocks: Any, limit: int) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks (max {limit})")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, Mapping):
            problems.append(f"{where} is not an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > ID:
                problems.append(f"{where}.block_id is empty or longer than {ID}")
            elif block_id in seen:
                problems.append(f"{where}.block_id {block_id!r} is not unique")
            seen.add(str(block_id))
        problems += _block_problems(block, where)
    return problems


def _block_problems(block: Mapping[str, Any], where: str) -> list[str]:
    kind = block.get("type")
    if kind not in _BLOCK_KEYS:
        return [f"{where} has unknown type {kind!r}"]
    problems = [f"{where} has unknown key {k!r}" for k in block if k not in _BLOCK_KEYS[kind]]
    if kind == "section":
        problems += _section_problems(block, where)
    elif kind == "header":
        problems += _text_problems(block.get("text"), f"{where}.text", HEADER_TEXT, plain_only=True)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= CONTEXT_ELEMENTS:
            problems.append(f"{where} has {len(elements)} elements (1 to {CONTEXT_ELEMENTS})")
        for i, element in enumerate(elements):
            if isinstance(element, Mapping) and element.get("type") == "image":
                continue
            problems += _text_problems(element, f"{where}.elements[{i}]", SECTION_TEXT)
    elif kind == "actions":
        problems += _actions_problems(block, where)
    return problems


def _section_problems(block: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    if "text" not in block and "fields" not in block:
        problems.append(f"{where} has neither text nor fields")
    if "text" in block:
        problems += _text_problems(block["text"], f"{where}.text", SECTION_TEXT)
    fields = block.get("fields") or []
    if len(fields) > MAX_FIELDS:
        problems.append(f"{where} has {len(fields)} fields (max {MAX_FIELDS})")
    for i, item in enumerate(fields):
        problems += _text_problems(item, f"{where}.fields[{i}]", FIELD_TEXT)
    if "accessory" in block:
        problems += _element_problems(block["accessory"], f"{where}.accessory")
    return problems


def _actions_problems(block: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    elements = block.get("elements") or []
    if not 1 <= len(elements) <= ACTIONS_ELEMENTS:
        problems.append(f"{where} has {len(elements)} elements (1 to {ACTIONS_ELEMENTS})")
    ids = [e.get("action_id") for e in elements if isinstance(e, Mapping)]
    if len([i for i in ids if i]) != len({i for i in ids if i}):
        problems.append(f"{where} repeats an action_id")
    for i, element in enumerate(elements):
        problems += _element_problems(element, f"{where}.elements[{i}]")
    return problems


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, Mapping):
        return [f"{where} is not an object"]
    if element.get("type") == "overflow":
        return _overflow_problems(element, where)
    if element.get("type") != "button":
        return (
            []
            if element.get("type") in ("image", "static_select")
            else [f"{where} has unexpected type {element.get('type')!r}"]
        )
    problems = [f"{where} has unknown key {k!r}" for k in element if k not in _BUTTON_KEYS]
    problems += _text_problems(element.get("text"), f"{where}.text", BUTTON_TEXT, plain_only=True)
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > ID):
        problems.append(f"{where}.action_id longer than {ID}")
    if len(str(element.get("value", ""))) > BUTTON_VALUE:
        problems.append(f"{where}.value longer than {BUTTON_VALUE}")
    if len(str(element.get("url", ""))) > URL:
        problems.append(f"{where}.url longer than {URL}")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style must be primary or danger")
    confirm = element.get("confirm")
    if confirm is not None:
        for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
            problems += _text_problems(
                confirm.get(key), f"{where}.confirm.{key}", limit, plain_only=key != "text"
            )
    return problems


OVERFLOW_OPTIONS = (2, 5)
OPTION_TEXT = 75
OPTION_VALUE = 150
_OVERFLOW_KEYS = {"type", "action_id", "options", "confirm"}
_OPTION_KEYS = {"text", "value", "description", "url"}


def _overflow_problems(element: Mapping[str, Any], where: str) -> list[str]:
    """An overflow menu as Slack holds it: 2 to 5 options, each a plain_text label (75), a
    value (150) and an optional url (3000), and an action_id (255)."""
    problems = [f"{where} has unknown key {k!r}" for k in element if k not in _OVERFLOW_KEYS]
    action_id = element.get("action_id")
    if not isinstance(action_id, str) or not 0 < len(action_id) <= ID:
        problems.append(f"{where}.action_id is missing or longer than {ID}")
    options = element.get("options")
    low, high = OVERFLOW_OPTIONS
    if not isinstance(options, list) or not low <= len(options) <= high:
        return [*problems, f"{where}.options must be a list of {low} to {high} options"]
    for i, option in enumerate(options):
        at = f"{where}.options[{i}]"
        if not isinstance(option, Mapping):
            problems.append(f"{at} is not an object")
            continue
        problems += [f"{at} has unknown key {k!r}" for k in option if k not in _OPTION_KEYS]
        problems += _text_problems(option.get("text"), f"{at}.text", OPTION_TEXT, plain_only=True)
        value = option.get("value")
        if not isinstance(value, str) or not 0 < len(value) <= OPTION_VALUE:
            problems.append(f"{at}.value is missing or longer than {OPTION_VALUE}")
        if len(str(option.get("url", ""))) > URL:
            problems.append(f"{at}.url longer than {URL}")
    return problems


def _text_problems(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, Mapping):
        return [f"{where} is not a text object"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    problems: list[str] = []
    if kind not in allowed:
        problems.append(f"{where}.type is {kind!r}, expected {' or '.join(allowed)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text is empty")
    elif len(text) > limit:
        problems.append(f"{where}.text is {len(text)} characters (max {limit})")
    extra = set(obj) - {"type", "text", "emoji", "verbatim"}
    if extra:
        problems.append(f"{where} has unknown keys {sorted(extra)}")
    if kind == "mrkdwn" and "emoji" in obj:
        problems.append(f"{where}: emoji is only for plain_text")
    return problems


def _metadata_problems(metadata: Any) -> list[str]:
    if not isinstance(metadata, Mapping):
        return ["metadata is not an object"]
    problems = []
    if not isinstance(metadata.get("event_type"), str) or not metadata["event_type"]:
        problems.append("metadata.event_type is missing")
    if not isinstance(metadata.get("event_payload"), Mapping):
        problems.append("metadata.event_payload is not an object")
    return problems


def all_text(message: Mapping[str, Any]) -> str:
    """Every piece of text in a message, for assertions about what a person reads."""
    parts: list[str] = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, Mapping | list):
                    walk(value)
        elif isinstance(node, Sequence) and not isinstance(node, str):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


# -- file uploads (files.getUploadURLExternal, the upload URL, files.completeUploadExternal) ----

ALT_TXT = 1000
MAX_SHARE_CHANNELS = 100
_GET_UPLOAD_URL_ARGS = {"token", "filename", "length", "alt_txt", "snippet_type"}
_COMPLETE_ARGS = {
    "token",
    "files",
    "channel_id",
    "channels",
    "initial_comment",
    "thread_ts",
    "blocks",
}
_FILE_KEYS = {"id", "title", "highlight_type"}


def get_upload_url_problems(params: Mapping[str, Any]) -> list[str]:
    """files.getUploadURLExternal: ``filename`` and ``length`` (bytes, a positive integer) are
    required; ``alt_txt`` (at most 1,000 characters) and ``snippet_type`` are optional."""
    problems = [f"unknown argument {k!r}" for k in params if k not in _GET_UPLOAD_URL_ARGS]
    filename = params.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        problems.append("filename is required")
    length = params.get("length")
    if length is None:
        problems.append("length is required (the file's size in bytes)")
    elif not _positive_int(length):
        problems.append(f"length {str(length)[:20]!r} is not a positive integer")
    alt = params.get("alt_txt")
    if alt is not None and len(str(alt)) > ALT_TXT:
        problems.append(f"alt_txt is {len(str(alt))} characters (max {ALT_TXT})")
    return problems


def complete_upload_problems(params: Mapping[str, Any]) -> list[str]:
    """files.completeUploadExternal: ``files`` (a JSON array of ``{id, title}``, required),
    ``channel_id`` or ``channels``, ``initial_comment`` (message text), ``thread_ts`` with one
    channel only."""
    problems = [f"unknown argument {k!r}" for k in params if k not in _COMPLETE_ARGS]
    files = upload_files(params)
    if files is None:
        problems.append('files is not a JSON array of objects such as [{"id": "F…"}]')
    else:
        if not files:
            problems.append("files is empty")
        for index, item in enumerate(files):
            where = f"files[{index}]"
            problems += [f"{where} has unknown key {k!r}" for k in item if k not in _FILE_KEYS]
            if not isinstance(item.get("id"), str) or not item["id"]:
                problems.append(f"{where}.id is missing")
            if "title" in item and not isinstance(item["title"], str):
                problems.append(f"{where}.title is not text")
    channels = [c for c in str(params.get("channels") or "").split(",") if c]
    if params.get("channel_id") and channels:
        problems.append("give channel_id or channels, not both")
    if len(channels) > MAX_SHARE_CHANNELS:
        problems.append(f"{len(channels)} channels (max {MAX_SHARE_CHANNELS})")
    if params.get("thread_ts") and len(channels) > 1:
        problems.append("thread_ts needs exactly one channel")
    comment = params.get("initial_comment")
    if comment is not None:
        if not isinstance(comment, str):
            problems.append("initial_comment is not text")
        else:
            problems += [
                f"initial_comment: {p}"
                for p in message_problems({"text": comment}, require_text=False)
            ]
    return problems


def upload_files(params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The ``files`` argument as Slack reads it (a JSON string in a form or query, or an array
    in a JSON body); None when it is not an array of objects."""
    raw = params.get("files")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        return None
    return raw


def _positive_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0
