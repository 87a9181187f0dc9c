"""Value rendering and type coercion shared by every adapter.

The protocol's rule (docs/internals/prompt-protocol.md, "Values"): ``str``
values are written as they are, everything else as compact JSON; parsing
coerces a field's text to its declared type and rejects anything loose
(``42.``, ``The answer is 42``). The chat and markdown adapters coerce *text*;
the JSON adapter coerces already-decoded JSON values, which may legitimately
arrive as strings (``"42"``) and then go through the same text rules.

Coercers are built once per annotation (``functools.lru_cache``) because
parsing runs on every LM call.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import orjson

__all__ = [
    "CoercionError",
    "dumps",
    "json_coercer",
    "json_type_name",
    "loads",
    "render_value",
    "text_coercer",
]

_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BOOLS = {"true": True, "yes": True, "false": False, "no": False}
# orjson silently turns integers beyond 64 bits into floats; such long digit
# runs go through the (exact, slower) stdlib parser instead.
_LONG_DIGITS = re.compile(r"\d{19}")
_FENCE_RE = re.compile(r"\A```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```\Z", re.S)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS

Coercer = Callable[[Any], Any]


class CoercionError(ValueError):
    """A value does not fit its field's type; the message says what was expected."""


def _default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return str(obj)


def dumps(obj: Any) -> str:
    """Compact JSON text (no spaces, UTF-8 kept as is)."""
    try:
        return orjson.dumps(obj, default=_default, option=_ORJSON_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):  # e.g. integers beyond 64 bits
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)


def loads(text: str) -> Any:
    """Parse JSON text; raises ``ValueError`` (``JSONDecodeError``) when invalid."""
    if _LONG_DIGITS.search(text):
        return json.loads(text)
    return orjson.loads(text)


def render_value(value: Any) -> str:
    """A field value as it appears in a chat or markdown prompt."""
    return value if isinstance(value, str) else dumps(value)


def json_type_name(annotation: Any) -> str:
    """The JSON type a field's values take (``int`` -> ``integer``)."""
    origin = get_origin(annotation)
    if origin is list:
        return "array"
    if origin is dict:
        return "object"
    return {int: "integer", float: "number", bool: "boolean"}.get(annotation, "string")


# --------------------------------------------------------------------------- text


def _strip_fence(text: str) -> str:
    match = _FENCE_RE.match(text)
    return match.group(1).strip() if match else text


def _text_int(text: str) -> int:
    if _INT_RE.fullmatch(text):
        return int(text)
    raise CoercionError("expected an integer")


def _text_float(text: str) -> float:
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    raise CoercionError("expected a number")


def _text_bool(text: str) -> bool:
    value = _BOOLS.get(text.lower())
    if value is None:
        raise CoercionError("expected true, false, yes or no")
    return value


def _text_str(text: str) -> str:
    return text


def _literal_coercer(values: tuple[str, ...]) -> Callable[[str], str]:
    exact = set(values)
    folded: dict[str, str] = {}
    for value in values:
        folded.setdefault(value.casefold(), value)
    shown = ", ".join(repr(v) for v in values)

    def coerce(text: str) -> str:
        if text in exact:
            return text
        found = folded.get(text.casefold())
        if found is None and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
            found = folded.get(text[1:-1].casefold())
        if found is None:
            raise CoercionError(f"expected one of {shown}")
        return found

    return coerce


@functools.cache
def text_coercer(annotation: Any) -> Callable[[str], Any]:
    """A function from a field's stripped text to its typed value."""
    if annotation is str:
        return _text_str
    if annotation is int:
        return _text_int
    if annotation is float:
        return _text_float
    if annotation is bool:
        return _text_bool
    origin = get_origin(annotation)
    if origin is Literal:
        return _literal_coercer(get_args(annotation))
    if origin is list or origin is dict:
        from_json = json_coercer(annotation)
        kind = "a JSON array" if origin is list else "a JSON object"

        def coerce(text: str) -> Any:
            try:
                decoded = loads(_strip_fence(text))
            except ValueError:
                raise CoercionError(f"expected {kind}") from None
            return from_json(decoded)

        return coerce
    raise TypeError(f"unsupported annotation {annotation!r}")


# --------------------------------------------------------------------------- json


def _json_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dumps(value)
    raise CoercionError("expected a string")


def _json_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text_int(value.strip())
    raise CoercionError("expected an integer")


def _json_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return _text_float(value.strip())
    raise CoercionError("expected a number")


def _json_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text_bool(value.strip())
    raise CoercionError("expected true, false, yes or no")


def _list_coercer(item: Coercer) -> Coercer:
    def coerce(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise CoercionError("expected a JSON array")
        result = []
        for index, element in enumerate(value):
            try:
                result.append(item(element))
            except CoercionError as exc:
                raise CoercionError(f"item {index}: {exc}") from None
        return result

    return coerce


def _dict_coercer(key: Callable[[str], Any], item: Coercer) -> Coercer:
    def coerce(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise CoercionError("expected a JSON object")
        result = {}
        for name, element in value.items():
            try:
                result[key(name)] = item(element)
            except CoercionError as exc:
                raise CoercionError(f"key {name!r}: {exc}") from None
        return result

    return coerce


@functools.cache
def json_coercer(annotation: Any) -> Coercer:
    """A function from a decoded JSON value to the field's typed value.

    Strings are accepted for scalar types and go through the text rules, since
    models often quote numbers. Nested strings are kept exactly (not stripped).
    """
    if annotation is str:
        return _json_str
    if annotation is int:
        return _json_int
    if annotation is float:
        return _json_float
    if annotation is bool:
        return _json_bool
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        literal = _literal_coercer(args)

        def coerce_literal(value: Any) -> str:
            if not isinstance(value, str):
                raise CoercionError("expected a string")
            return literal(value.strip())

        return coerce_literal
    if origin is list:
        return _list_coercer(json_coercer(args[0]))
    if origin is dict:
        return _dict_coercer(text_coercer(args[0]), json_coercer(args[1]))
    raise TypeError(f"unsupported annotation {annotation!r}")
