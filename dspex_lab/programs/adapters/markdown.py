"""The markdown adapter: one ``## name`` heading per field (protocol name ``markdown``).

Only headings that name a field of the signature (case-insensitively) split
the reply, so a value may itself contain other level-2 headings. Text before
the first field heading is ignored.
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

from dspex_lab.programs.adapters._base import Adapter, FieldValues
from dspex_lab.programs.adapters._values import render_value, text_coercer
from dspex_lab.programs.signature import Signature

__all__ = ["MarkdownAdapter"]

_HEADING_RE = re.compile(r"^##[ \t]+(\w+)[ \t]*:?[ \t]*$", re.MULTILINE)


@functools.lru_cache(maxsize=512)
def _heading_lookup(signature: Signature) -> dict[str, str | None]:
    """Heading text -> output field name, or None for input fields (a boundary only)."""
    lookup: dict[str, str | None] = {}
    for name in signature.output_fields:
        lookup.setdefault(name.casefold(), name)
    for name in signature.input_fields:
        lookup.setdefault(name.casefold(), None)
    lookup.update({name: None for name in signature.input_fields})
    lookup.update({name: name for name in signature.output_fields})
    return lookup


class MarkdownAdapter(Adapter):
    """Fields as ``## name`` sections separated by blank lines."""

    name: ClassVar[str] = "markdown"

    @classmethod
    def _format_description(cls, signature: Signature) -> str:
        names = [*signature.input_fields, *signature.output_fields]
        blocks = "\n\n".join(f"## {name}\n{{{name}}}" for name in names)
        return f"Every exchange uses Markdown, one level-2 heading per field:\n\n{blocks}"

    @classmethod
    def _reminder(cls, signature: Signature) -> str:
        headings = ", ".join(f"## {name}" for name in signature.output_fields)
        return f"Reply with the headings {headings} in this order."

    def _render_inputs(self, signature: Signature, values: FieldValues) -> str:
        return "\n\n".join(f"## {field.name}\n{render_value(value)}" for field, value in values)

    def _render_outputs(self, signature: Signature, values: FieldValues) -> str:
        return self._render_inputs(signature, values)

    def _parse(self, signature: Signature, text: str) -> dict[str, Any]:
        lookup = _heading_lookup(signature)
        bounds: list[tuple[str | None, int, int]] = []  # field, heading start, value start
        for match in _HEADING_RE.finditer(text):
            key = match.group(1)
            if key in lookup:
                bounds.append((lookup[key], match.start(), match.end()))
            elif key.casefold() in lookup:
                bounds.append((lookup[key.casefold()], match.start(), match.end()))
        sections: dict[str, str] = {}
        for index, (name, _, value_start) in enumerate(bounds):
            if name is None or name in sections:  # inputs echoed back; first block wins
                continue
            end = bounds[index + 1][1] if index + 1 < len(bounds) else len(text)
            sections[name] = text[value_start:end].strip()
        result: dict[str, Any] = {}
        for name, field in signature.output_fields.items():
            if name not in sections:
                raise self._missing_field(field, f"a `## {name}` heading", text)
            result[name] = self._coerce(field, text_coercer(field.annotation),
                                        sections[name], text)
        return result
