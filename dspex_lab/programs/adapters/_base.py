"""The adapter contract and the parts every adapter shares.

An adapter turns (signature, instructions, demos, inputs) into OpenAI chat
messages and a model's reply back into typed output values, exactly as
docs/internals/prompt-protocol.md describes; the simulator reads prompts by
that page, so the wording here is a wire format, not decoration.

Contract for subclasses:

- Adapters are stateless: any instance of a class behaves like any other, so
  per-signature pieces are cached by ``(adapter class, signature, ...)``.
- The system message is the field preamble (shared), a blank line, the
  adapter's format description, a blank line, and ``Your task: <instructions>``.
- ``_render_inputs`` / ``_render_outputs`` receive only the fields that have a
  value (demos may omit fields); ``format_inputs`` adds ``_reminder``.
- ``_parse`` returns the typed value of every output field or raises
  :class:`~dspex_lab.errors.ParseError` through :meth:`Adapter._error`.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from dspex_lab.errors import ConfigurationError, DatasetError, ParseError
from dspex_lab.programs.adapters._values import CoercionError, dumps
from dspex_lab.programs.signature import Field, Signature

__all__ = ["Adapter", "FieldValues", "Message", "SignatureLike"]

Message = dict[str, str]
SignatureLike = Signature | str | type[Signature]
FieldValues = list[tuple[Field, Any]]

_SNIPPET = 80


def _as_signature(signature: SignatureLike) -> Signature:
    return signature if isinstance(signature, Signature) else Signature.coerce(signature)


@functools.lru_cache(maxsize=512)
def _preamble(signature: Signature) -> str:
    lines = ["Your input fields are:"]
    for group, title in ((signature.input_fields, None), (signature.output_fields,
                                                         "Your output fields are:")):
        if title:
            lines.append(title)
        for number, field in enumerate(group.values(), start=1):
            line = f"{number}. `{field.name}` ({field.type_str})"
            lines.append(f"{line}: {field.description}" if field.description else line)
    return "\n".join(lines)


@functools.lru_cache(maxsize=1024)
def _system_content(adapter: type[Adapter], signature: Signature, instructions: str) -> str:
    task = instructions.strip() or signature.instructions
    return (f"{_preamble(signature)}\n\n{adapter._format_description(signature)}"
            f"\n\nYour task: {task}")


@functools.lru_cache(maxsize=512)
def _reminder_suffix(adapter: type[Adapter], signature: Signature) -> str:
    reminder = adapter._reminder(signature)
    return f"\n\n{reminder}" if reminder else ""


class Adapter(ABC):
    """Renders prompts for a signature and parses replies back into typed values.

    Public methods accept a :class:`Signature`, a signature string or a
    Signature subclass. Values of ``None`` count as missing: a demo omits such
    fields, and ``format_inputs``/``format_outputs`` reject them with a
    :class:`~dspex_lab.errors.DatasetError` naming the field.
    """

    name: ClassVar[str]

    # ----------------------------------------------------------------- hooks
    @classmethod
    @abstractmethod
    def _format_description(cls, signature: Signature) -> str:
        """The system-message block between the preamble and the task line."""

    @classmethod
    @abstractmethod
    def _reminder(cls, signature: Signature) -> str:
        """Text after the final user message's inputs ("" for none)."""

    @abstractmethod
    def _render_inputs(self, signature: Signature, values: FieldValues) -> str:
        """A user message body for the given input values."""

    @abstractmethod
    def _render_outputs(self, signature: Signature, values: FieldValues) -> str:
        """An assistant message body for the given output values."""

    @abstractmethod
    def _parse(self, signature: Signature, text: str) -> dict[str, Any]:
        """Typed output values from a reply, or a ParseError."""

    # ----------------------------------------------------------------- public API
    def format_prefix(
        self,
        signature: SignatureLike,
        *,
        instructions: str | None = None,
        demos: Sequence[Mapping[str, Any]] = (),
    ) -> list[Message]:
        """The system message and one user/assistant pair per demo."""
        sig = _as_signature(signature)
        messages = [{"role": "system",
                     "content": _system_content(type(self), sig, instructions or "")}]
        for index, demo in enumerate(demos):
            inputs = _present(sig.input_fields, demo)
            outputs = _present(sig.output_fields, demo)
            if not outputs:
                raise ConfigurationError(
                    f"demo {index} has none of the output fields "
                    f"{list(sig.output_fields)}; a demo needs at least one output value")
            messages.append({"role": "user", "content": self._render_inputs(sig, inputs)})
            messages.append({"role": "assistant",
                             "content": self._render_outputs(sig, outputs)})
        return messages

    def format_inputs(self, signature: SignatureLike, inputs: Mapping[str, Any]) -> Message:
        """The final user message: the current inputs plus the reply reminder."""
        sig = _as_signature(signature)
        values = _required(sig.input_fields, inputs, "input")
        body = self._render_inputs(sig, values)
        return {"role": "user", "content": body + _reminder_suffix(type(self), sig)}

    def format(
        self,
        signature: SignatureLike,
        inputs: Mapping[str, Any],
        *,
        instructions: str | None = None,
        demos: Sequence[Mapping[str, Any]] = (),
    ) -> list[Message]:
        """The complete ``messages`` list for one call."""
        sig = _as_signature(signature)
        final = self.format_inputs(sig, inputs)
        messages = self.format_prefix(sig, instructions=instructions, demos=demos)
        messages.append(final)
        return messages

    def format_outputs(self, signature: SignatureLike, outputs: Mapping[str, Any]) -> str:
        """The assistant text a perfect reply with these output values would be."""
        sig = _as_signature(signature)
        return self._render_outputs(sig, _required(sig.output_fields, outputs, "output"))

    def request_params(self, *, supports_json_mode: bool) -> dict[str, Any]:
        """Extra request parameters this format needs (none by default)."""
        return {}

    def parse(self, signature: SignatureLike, text: str) -> dict[str, Any]:
        """Typed output values from a reply; raises ParseError keeping ``raw``."""
        sig = _as_signature(signature)
        if not isinstance(text, str) or not text.strip():
            raise self._error("reply is empty", text if isinstance(text, str) else "")
        return self._parse(sig, text)

    # ----------------------------------------------------------------- helpers
    def _error(self, message: str, raw: str) -> ParseError:
        return ParseError(f"{self.name} adapter: {message}", raw=raw, adapter=self.name)

    def _missing_field(self, field: Field, how: str, raw: str) -> ParseError:
        return self._error(f"the reply has no field `{field.name}` ({field.type_str}); "
                           f"expected {how}", raw)

    def _coerce(self, field: Field, coerce: Callable[[Any], Any], value: Any, raw: str) -> Any:
        """Apply a coercer, turning its failure into a ParseError naming the field."""
        try:
            return coerce(value)
        except CoercionError as exc:
            shown = value if isinstance(value, str) else dumps(value)
            if len(shown) > _SNIPPET:
                shown = shown[:_SNIPPET] + "..."
            raise self._error(f"field `{field.name}` should be {field.type_str} ({exc}), "
                              f"got {shown!r}", raw) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _present(fields: Mapping[str, Field], values: Mapping[str, Any]) -> FieldValues:
    """The fields that have a non-None value in ``values``, in signature order."""
    found: FieldValues = []
    for name, field in fields.items():
        if name in values:
            value = values[name]
            if value is not None:
                found.append((field, value))
    return found


def _required(fields: Mapping[str, Field], values: Mapping[str, Any], role: str) -> FieldValues:
    found: FieldValues = []
    for name, field in fields.items():
        value = values.get(name)
        if value is None:
            got = ", ".join(repr(key) for key in values) or "none"
            raise DatasetError(f"the {role} field {name!r} is missing or None "
                               f"(got keys: {got})")
        found.append((field, value))
    return found
