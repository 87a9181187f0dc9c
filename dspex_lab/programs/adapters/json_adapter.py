"""The JSON adapter: one JSON object per message (protocol name ``json``).

Replies are often wrapped in Markdown fences or a sentence; the parser takes
the outermost ``{...}`` of the reply. Extra keys are ignored and key names
match case-insensitively when there is no exact match.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from dspex_lab.programs.adapters._base import Adapter, FieldValues
from dspex_lab.programs.adapters._values import dumps, json_coercer, json_type_name, loads
from dspex_lab.programs.signature import Signature

__all__ = ["JSONAdapter"]


class JSONAdapter(Adapter):
    """Inputs and outputs as compact JSON objects; asks for JSON mode when available."""

    name: ClassVar[str] = "json"

    @classmethod
    def _format_description(cls, signature: Signature) -> str:
        keys = ", ".join(f'"{field.name}" ({json_type_name(field.annotation)})'
                         for field in signature.output_fields.values())
        return f"Reply with a single JSON object and nothing else. Its keys are: {keys}."

    @classmethod
    def _reminder(cls, signature: Signature) -> str:
        return ""  # the final user message is the JSON object and nothing else

    def _render_inputs(self, signature: Signature, values: FieldValues) -> str:
        return dumps({field.name: value for field, value in values})

    def _render_outputs(self, signature: Signature, values: FieldValues) -> str:
        return dumps({field.name: value for field, value in values})

    def request_params(self, *, supports_json_mode: bool) -> dict[str, Any]:
        """``response_format`` JSON mode when the model supports it."""
        return {"response_format": {"type": "json_object"}} if supports_json_mode else {}

    def _parse(self, signature: Signature, text: str) -> dict[str, Any]:
        obj = self._find_object(text)
        folded: dict[str, str] | None = None
        result: dict[str, Any] = {}
        for name, field in signature.output_fields.items():
            if name in obj:
                value = obj[name]
            else:
                if folded is None:
                    folded = {key.casefold(): key for key in reversed(list(obj))}
                key = folded.get(name.casefold())
                if key is None:
                    raise self._missing_field(field, f'a "{name}" key', text)
                value = obj[key]
            coerced = self._coerce(field, json_coercer(field.annotation), value, text)
            result[name] = coerced.strip() if field.annotation is str else coerced
        return result

    def _find_object(self, text: str) -> dict[str, Any]:
        start = text.find("{")
        end = text.rfind("}")
        if start == -1 or end < start:
            raise self._error("the reply contains no JSON object", text)
        try:
            obj = loads(text[start:end + 1])
        except ValueError as exc:
            found = _first_object(text, start)
            if found is None:
                raise self._error(f"the reply's JSON object does not parse ({exc})",
                                  text) from None
            return found
        if not isinstance(obj, dict):  # pragma: no cover - braces always give an object
            raise self._error("the reply's JSON is not an object", text)
        return obj


_DECODER = json.JSONDecoder()


def _first_object(text: str, start: int) -> dict[str, Any] | None:
    """The first complete JSON object from a ``{`` on, for replies with braces in prose.

    Only reached when the outermost ``{...}`` does not parse, so its cost stays off
    the common path.
    """
    while start != -1:
        try:
            obj, _ = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)  # pragma: no cover - raw_decode at "{" is an object
    return None
