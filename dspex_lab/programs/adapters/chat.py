"""The chat adapter: ``[[ ## name ## ]]`` field markers (protocol name ``chat``).

Markers are unlikely to occur in real content, so the reply parser can be
forgiving: text before the first marker is ignored, unknown markers only end
the previous field, marker names match case-insensitively, and a missing
``[[ ## completed ## ]]`` is fine.
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

from dspex_lab.programs.adapters._base import Adapter, FieldValues
from dspex_lab.programs.adapters._values import render_value, text_coercer
from dspex_lab.programs.signature import Signature

__all__ = ["ChatAdapter"]

_MARKER_RE = re.compile(r"\[\[\s*##\s*(\w+)\s*##\s*\]\]")
_COMPLETED = "[[ ## completed ## ]]"


def _marker(name: str) -> str:
    return f"[[ ## {name} ## ]]"


@functools.lru_cache(maxsize=512)
def _output_lookup(signature: Signature) -> dict[str, str]:
    """Marker text -> output field name; exact names win over case-folded ones."""
    lookup: dict[str, str] = {}
    for name in signature.output_fields:
        lookup.setdefault(name.casefold(), name)
    lookup.update({name: name for name in signature.output_fields})
    return lookup


class ChatAdapter(Adapter):
    """Fields as ``[[ ## name ## ]]`` blocks, the reply ending with ``completed``."""

    name: ClassVar[str] = "chat"

    @classmethod
    def _format_description(cls, signature: Signature) -> str:
        names = [*signature.input_fields, *signature.output_fields]
        blocks = "\n\n".join(f"{_marker(name)}\n{{{name}}}" for name in names)
        return ("Every exchange uses this structure, with each value filled in:\n\n"
                f"{blocks}\n\n{_COMPLETED}")

    @classmethod
    def _reminder(cls, signature: Signature) -> str:
        fields = ", then ".join(f"`{_marker(name)}`" for name in signature.output_fields)
        return f"Reply with the fields {fields}, and end with `{_COMPLETED}`."

    def _render_inputs(self, signature: Signature, values: FieldValues) -> str:
        return "\n\n".join(f"[[ ## {field.name} ## ]]\n{render_value(value)}"
                           for field, value in values)

    def _render_outputs(self, signature: Signature, values: FieldValues) -> str:
        blocks = "".join(f"[[ ## {field.name} ## ]]\n{render_value(value)}\n\n"
                         for field, value in values)
        return blocks + _COMPLETED

    def _parse(self, signature: Signature, text: str) -> dict[str, Any]:
        lookup = _output_lookup(signature)
        sections: dict[str, str] = {}
        matches = list(_MARKER_RE.finditer(text))
        for index, match in enumerate(matches):
            key = match.group(1)
            name = lookup.get(key) or lookup.get(key.casefold())
            if name is None:
                if key.casefold() == "completed":
                    break
                continue
            if name not in sections:  # the first block of a field wins
                end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
                sections[name] = text[match.end():end].strip()
        result: dict[str, Any] = {}
        for name, field in signature.output_fields.items():
            if name not in sections:
                raise self._missing_field(field, f"a `{_marker(name)}` block", text)
            result[name] = self._coerce(field, text_coercer(field.annotation),
                                        sections[name], text)
        return result
