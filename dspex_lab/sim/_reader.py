"""Reads a chat-completion request the way the prompt protocol says a model would.

Written against ``docs/internals/prompt-protocol.md`` and deliberately not
against the adapters' code, so a drift between the two shows up as failing
simulator tests instead of being silently shared. The system message of a
program is identical for every example, so its parse (:class:`Frame`) is
cached: per request only the final user message is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from dspex_lab.sim._models import SimModel, resolve_model

__all__ = ["Field", "Frame", "Prompt", "RequestError", "parse_fields", "read_frame", "read_request"]

FORMATS = ("chat", "json", "markdown")
_MAX_FRAMES = 4096

_FIELD_LINE = re.compile(r"^\d+\. `([^`]+)` \((.+?)\)(?:: (.*))?$")
_CHAT_MARKER = re.compile(r"^\[\[ ## (\w+) ## \]\][ \t]*$", re.MULTILINE)
_MD_HEADING = re.compile(r"^## (\w+)[ \t]*$", re.MULTILINE)
_ATTEMPT = re.compile(r"^# attempt (\d+)", re.MULTILINE)
_CHAT_REMINDER = "\n\nReply with the fields "
_MD_REMINDER = "\n\nReply with the headings "


class RequestError(Exception):
    """A request the simulator refuses, with the HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str = "str"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Frame:
    """What the system message says: format, fields and instructions.

    ``format`` is None for a prompt that does not follow the protocol; the
    simulator then answers in plain text.
    """

    format: str | None
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]
    instructions: str

    @property
    def module(self) -> str:
        names = {f.name for f in self.outputs}
        if "code" in names:
            return "pot"
        return "cot" if "reasoning" in names else "predict"


@dataclass(frozen=True, slots=True)
class Prompt:
    """Everything about one request that the quality function and the writer use."""

    model: SimModel
    frame: Frame
    format: str | None
    json_mode: bool
    inputs: dict[str, Any]
    question: str
    n_demos: int
    temperature: float
    max_tokens: int | None
    seed: int | None
    attempt: int
    contents: tuple[str, ...]

    @property
    def module(self) -> str:
        return self.frame.module


def _detect_format(system: str) -> str | None:
    if "[[ ## " in system:
        return "chat"
    if "Reply with a single JSON object" in system:
        return "json"
    if "one level-2 heading per field" in system:
        return "markdown"
    return None


def _fields(lines: list[str]) -> tuple[Field, ...]:
    out: list[Field] = []
    for line in lines:
        m = _FIELD_LINE.match(line.strip())
        if m:
            out.append(Field(m.group(1), m.group(2), m.group(3) or ""))
    return tuple(out)


def _parse_frame(system: str) -> Frame:
    fmt = _detect_format(system)
    inputs: list[str] = []
    outputs: list[str] = []
    section: list[str] | None = None
    for line in system.split("\n"):
        if line.startswith("Your input fields are:"):
            section = inputs
        elif line.startswith("Your output fields are:"):
            section = outputs
        elif not line.strip():
            if section is outputs:
                break
        elif section is not None:
            section.append(line)
    task_at = system.find("Your task: ")
    instructions = system[task_at + len("Your task: "):] if task_at >= 0 else ""
    return Frame(fmt, _fields(inputs), _fields(outputs), instructions)


_frames: dict[str, Frame] = {}


def read_frame(system: str) -> Frame:
    """The parsed system message, memoised (a program sends the same one every time)."""
    frame = _frames.get(system)
    if frame is None:
        if len(_frames) >= _MAX_FRAMES:
            _frames.clear()
        frame = _frames[system] = _parse_frame(system)
    return frame


def _split_blocks(text: str, pattern: re.Pattern[str], names: set[str]) -> dict[str, str]:
    """``name -> value`` for every marker/heading of a known name; values are stripped."""
    found: dict[str, str] = {}
    matches = [m for m in pattern.finditer(text) if m.group(1) in names]
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        found[m.group(1)] = text[m.end():end].strip()
    return found


def parse_fields(text: str, fmt: str | None, names: list[str]) -> dict[str, Any]:
    """The values of ``names`` found in a message written in ``fmt``.

    Non-string JSON values are kept as Python objects; missing fields are
    simply absent (the caller decides whether that is an error).
    """
    wanted = set(names)
    if fmt == "chat":
        cut = text.find(_CHAT_REMINDER)
        return dict(_split_blocks(text if cut < 0 else text[:cut], _CHAT_MARKER, wanted))
    if fmt == "markdown":
        cut = text.find(_MD_REMINDER)
        return dict(_split_blocks(text if cut < 0 else text[:cut], _MD_HEADING, wanted))
    if fmt == "json":
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {}
        if not isinstance(obj, dict):
            return {}
        return {k: v for k, v in obj.items() if k in wanted}
    return {}


def _content(message: Any) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise RequestError(400, "each message must be an object", "invalid_request_error")
    role = message.get("role")
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        content = "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    if not isinstance(role, str) or not isinstance(content, str):
        raise RequestError(
            400, "each message needs a string 'role' and 'content'", "invalid_request_error"
        )
    return role, content


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestError(400, f"'{key}' must be a number in [{low}, {high}]",
                           "invalid_request_error", "invalid_value")
    return float(value)


def _optional_int(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and key != "seed"):
            raise RequestError(400, f"'{key}' must be a positive integer",
                               "invalid_request_error", "invalid_value")
        return value
    return None


def _attempt(inputs: dict[str, Any]) -> int:
    """1 for a first call; a retry's number is one more than the ``# attempt N`` line
    of the previous code it carries (2 when that line is missing)."""
    previous = inputs.get("previous_code")
    if previous is None:
        return 1
    m = _ATTEMPT.search(str(previous))
    return int(m.group(1)) + 1 if m else 2


def read_request(raw: bytes) -> Prompt:
    """Validate and read one ``/v1/chat/completions`` body; raises :class:`RequestError`."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(400, "request body is not valid JSON", "invalid_request_error") from None
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_request_error")
    name = body.get("model")
    messages = body.get("messages")
    if not isinstance(name, str):
        raise RequestError(400, "'model' is required", "invalid_request_error", "missing_model")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", "invalid_request_error")
    if body.get("stream"):
        raise RequestError(400, "the simulator does not stream", "invalid_request_error")
    model = resolve_model(name)
    if model is None:
        raise RequestError(404, f"The model `{name}` does not exist.", "invalid_request_error",
                           "model_not_found")
    roles_contents = [_content(m) for m in messages]
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    max_tokens = _optional_int(body, "max_completion_tokens", "max_tokens")
    seed = _optional_int(body, "seed")
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") == "json_object"
    if json_mode and not model.supports_json_mode:
        raise RequestError(400, f"response_format json_object is not supported by model {name}",
                           "invalid_request_error", "unsupported_parameter")

    system = next((c for r, c in roles_contents if r in ("system", "developer")), "")
    frame = read_frame(system)
    fmt = "json" if json_mode else frame.format
    last_user = next((c for r, c in reversed(roles_contents) if r == "user"), "")
    if fmt is None:
        inputs: dict[str, Any] = {}
        question = last_user.strip()
    else:
        inputs = parse_fields(last_user, fmt, [f.name for f in frame.inputs])
        first = inputs.get(frame.inputs[0].name) if frame.inputs else None
        question = first if isinstance(first, str) else ("" if first is None else str(first))
    return Prompt(
        model=model,
        frame=frame,
        format=fmt,
        json_mode=json_mode,
        inputs=inputs,
        question=question,
        n_demos=sum(1 for r, _ in roles_contents if r == "assistant"),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        attempt=_attempt(inputs),
        contents=tuple(c for _, c in roles_contents),
    )
