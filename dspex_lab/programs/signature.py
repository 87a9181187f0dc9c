"""Signatures: the typed inputs and outputs of one LM step, plus its instructions.

A signature is written either as a string (``"question: str -> answer: int"``)
or as a class whose annotated attributes are :func:`InputField` /
:func:`OutputField` and whose docstring is the instructions. Both forms become
the same immutable, hashable :class:`Signature` value, because adapters cache
their rendered prompt pieces keyed by the signature.

The string form is read by a small hand-written tokenizer and recursive-descent
parser (never ``eval``), so every mistake can be reported with the column where
it happened and what was expected there.
"""

from __future__ import annotations

import functools
import html
import inspect
import keyword
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NoReturn, get_args, get_origin

from dspex_lab.errors import SignatureError

__all__ = ["Field", "InputField", "OutputField", "Signature"]

_SCALARS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_TYPE_HINT = "str, int, float, bool, list[...], dict[..., ...] or Literal[...]"


@dataclass(frozen=True)
class Field:
    """One input or output field of a signature.

    ``type_str`` is the canonical spelling (``"list[str]"``) shown in prompts;
    ``annotation`` is the matching Python type object used to coerce values.
    The annotation is derived from ``type_str``, so only the text takes part in
    equality and hashing.
    """

    name: str
    type_str: str
    annotation: Any = field(compare=False)
    description: str
    is_input: bool


# --------------------------------------------------------------------------- types


def type_to_str(annotation: Any) -> str:
    """Canonical text of a supported (already normalized) annotation."""
    for text, scalar in _SCALARS.items():
        if annotation is scalar:
            return text
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is list:
        return f"list[{type_to_str(args[0])}]"
    if origin is dict:
        return f"dict[{type_to_str(args[0])}, {type_to_str(args[1])}]"
    if origin is Literal:
        return "Literal[" + ", ".join(repr(arg) for arg in args) + "]"
    raise TypeError(f"unsupported annotation {annotation!r}")


def _make_literal(values: Iterable[str]) -> Any:
    return Literal.__getitem__(tuple(values))


def _normalize_annotation(annotation: Any) -> Any:
    """Validate a class-form annotation and rebuild it from builtins.

    ``typing.List[str]`` and ``list[str]`` both become ``list[str]`` so the two
    spellings give equal signatures. Raises ``TypeError`` with the reason.
    """
    if isinstance(annotation, type) and annotation in _SCALARS.values():
        return annotation
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is list:
        if len(args) != 1:
            raise TypeError("list needs one item type, e.g. list[str]")
        return types.GenericAlias(list, (_normalize_annotation(args[0]),))
    if origin is dict:
        if len(args) != 2:
            raise TypeError("dict needs a key and a value type, e.g. dict[str, int]")
        key = _normalize_annotation(args[0])
        if not _is_key_type(key):
            raise TypeError("dict keys must be str, int, float, bool or Literal[...]")
        return types.GenericAlias(dict, (key, _normalize_annotation(args[1])))
    if origin is Literal:
        if not args or not all(isinstance(arg, str) for arg in args):
            raise TypeError("Literal[...] must list one or more strings")
        return _make_literal(args)
    if annotation is list or annotation is dict:
        raise TypeError(f"{annotation.__name__} needs type arguments")
    raise TypeError(f"unsupported type {annotation!r}; expected {_TYPE_HINT}")


def _is_key_type(annotation: Any) -> bool:
    return annotation in _SCALARS.values() or get_origin(annotation) is Literal


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True, slots=True)
class _Token:
    """``kind`` is "name", "string", "end", or the punctuation itself."""

    kind: str
    text: str
    pos: int


_PUNCT = frozenset(",:[]")


def _caret_message(spec: str, message: str, pos: int, what: str = "signature") -> str:
    shown = spec.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return f"Invalid {what}: {message} at column {pos}\n  {shown}\n  {' ' * pos}^"


def _tokenize(spec: str, what: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(spec)
    while i < n:
        char = spec[i]
        if char.isspace():
            i += 1
        elif char.isalnum() or char == "_":
            start = i
            while i < n and (spec[i].isalnum() or spec[i] == "_"):
                i += 1
            tokens.append(_Token("name", spec[start:i], start))
        elif char in _PUNCT:
            tokens.append(_Token(char, char, i))
            i += 1
        elif char == "-" and spec.startswith("->", i):
            tokens.append(_Token("->", "->", i))
            i += 2
        elif char in "'\"":
            i = _read_string(spec, i, tokens, what)
        else:
            tokens.append(_Token("char", char, i))
            i += 1
    tokens.append(_Token("end", "", n))
    return tokens


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _read_string(spec: str, start: int, tokens: list[_Token], what: str) -> int:
    """Read a quoted literal starting at ``start``; return the index after it."""
    quote = spec[start]
    chars: list[str] = []
    i = start + 1
    while i < len(spec):
        char = spec[i]
        if char == quote:
            tokens.append(_Token("string", "".join(chars), start))
            return i + 1
        if char == "\\" and i + 1 < len(spec) and spec[i + 1] in _ESCAPES:
            chars.append(_ESCAPES[spec[i + 1]])
            i += 2
            continue
        chars.append(char)
        i += 1
    raise SignatureError(_caret_message(spec, "unterminated string", start, what))


# --------------------------------------------------------------------------- parser

_ParsedField = tuple[str, Any, int]  # name, annotation, column of the name


class _Parser:
    """Recursive descent over the token list; every failure names the column."""

    def __init__(self, spec: str, what: str = "signature") -> None:
        self.spec = spec
        self.what = what
        self.tokens = _tokenize(spec, what)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        where = self.token.pos if pos is None else pos
        raise SignatureError(_caret_message(self.spec, message, where, self.what))

    # signature := fields '->' fields
    def parse_signature(self) -> tuple[list[_ParsedField], list[_ParsedField]]:
        if self.token.kind == "end":
            self.fail("expected input field names, then '->', then output field names")
        if self.token.kind == "->":
            self.fail("expected an input field name before '->'")
        inputs = self.parse_fields(is_input=True, seen={})
        self.advance()  # the '->' parse_fields stopped at
        if self.token.kind == "end":
            self.fail("expected an output field name after '->'")
        seen = {name: "input" for name, _, _ in inputs}
        outputs = self.parse_fields(is_input=False, seen=seen)
        return inputs, outputs

    def parse_fields(self, *, is_input: bool, seen: dict[str, str]) -> list[_ParsedField]:
        role = "input" if is_input else "output"
        fields: list[_ParsedField] = []
        expected = f"expected an {role} field name" + ("" if is_input else " after '->'")
        while True:
            name_token = self.token
            if name_token.kind != "name":
                self.fail(expected)
            name = self.parse_name()
            if name in seen:
                self.fail(f"expected a new field name; `{name}` is already an {seen[name]} field",
                          name_token.pos)
            seen[name] = role
            annotation: Any = str
            typed = self.token.kind == ":"
            if typed:
                self.advance()
                if self.token.kind in ("end", ",", "->"):
                    self.fail("expected a type after ':'")
                annotation = self.parse_type()
            fields.append((name, annotation, name_token.pos))
            kind = self.token.kind
            if kind == ",":
                self.advance()
                expected = "expected a field name after ','"
                continue
            if kind == "->":
                if is_input:
                    return fields
                self.fail("expected only one '->'")
            if kind == "end":
                if is_input:
                    self.fail("expected '->' followed by the output fields")
                return fields
            if kind == "]":
                self.fail("unmatched ']'")
            follow = f"the type of `{name}`" if typed else f"`{name}`"
            options = ("',' or '->'" if typed else "':', ',' or '->'") if is_input else (
                "',' or the end of the signature" if typed
                else "':', ',' or the end of the signature")
            self.fail(f"expected {options} after {follow}")

    def parse_name(self) -> str:
        token = self.advance()
        if not token.text.isidentifier():
            self.fail(f"`{token.text}` is not a valid field name; expected a Python identifier",
                      token.pos)
        if keyword.iskeyword(token.text):
            self.fail(f"`{token.text}` is a Python keyword; expected a field name", token.pos)
        return token.text

    # type := scalar | 'list' '[' type ']' | 'dict' '[' key ',' type ']' | Literal '[' strs ']'
    def parse_type(self) -> Any:
        token = self.token
        if token.kind != "name":
            self.fail(f"expected a type ({_TYPE_HINT})")
        self.advance()
        if token.text in _SCALARS:
            if self.token.kind == "[":
                self.fail(f"expected no '[' after '{token.text}' "
                          "(only list, dict and Literal take arguments)")
            return _SCALARS[token.text]
        if token.text == "list":
            self.open_bracket("list", "list[str]")
            item = self.parse_inner_type("list")
            if self.token.kind == ",":
                self.fail("expected ']' (list takes one type)")
            self.close_bracket("list")
            return types.GenericAlias(list, (item,))
        if token.text == "dict":
            self.open_bracket("dict", "dict[str, int]")
            key_pos = self.token.pos
            key = self.parse_inner_type("dict")
            if not _is_key_type(key):
                self.fail("expected a str, int, float, bool or Literal key type in 'dict[...]'",
                          key_pos)
            if self.token.kind != ",":
                self.fail("expected ',' and a value type in 'dict[...]'")
            self.advance()
            value = self.parse_inner_type("dict")
            if self.token.kind == ",":
                self.fail("expected ']' (dict takes a key and a value type)")
            self.close_bracket("dict")
            return types.GenericAlias(dict, (key, value))
        if token.text == "Literal":
            return self.parse_literal()
        self.fail(f"unknown type '{token.text}'; expected {_TYPE_HINT}", token.pos)

    def open_bracket(self, name: str, example: str) -> None:
        if self.token.kind != "[":
            self.fail(f"expected '[' after '{name}' (e.g. {example})")
        self.advance()

    def close_bracket(self, name: str) -> None:
        if self.token.kind != "]":
            self.fail(f"expected ']' to close '{name}['")
        self.advance()

    def parse_inner_type(self, name: str) -> Any:
        if self.token.kind in ("]", ",", "end", "->"):
            self.fail(f"expected a type inside '{name}[...]'")
        return self.parse_type()

    def parse_literal(self) -> Any:
        self.open_bracket("Literal", "Literal['yes', 'no']")
        values: list[str] = []
        while True:
            token = self.token
            if token.kind != "string":
                after = " after ','" if values else ""
                self.fail(f"expected a quoted string inside 'Literal[...]'{after}")
            if token.text in values:
                self.fail(f"duplicate value {token.text!r} in 'Literal[...]'")
            values.append(token.text)
            self.advance()
            if self.token.kind == "]":
                self.advance()
                return _make_literal(values)
            if self.token.kind != ",":
                self.fail("expected ',' or ']' in 'Literal[...]'")
            self.advance()


@functools.lru_cache(maxsize=512)
def _parse_spec(spec: str) -> tuple[list[_ParsedField], list[_ParsedField]]:
    return _Parser(spec).parse_signature()


@functools.lru_cache(maxsize=256)
def parse_type_str(text: str) -> Any:
    """Parse one type written as in a signature (``"list[str]"``) to its annotation."""
    parser = _Parser(text, what="type")
    if parser.token.kind == "end":
        parser.fail(f"expected a type ({_TYPE_HINT})")
    annotation = parser.parse_type()
    if parser.token.kind != "end":
        parser.fail("expected the end of the type")
    return annotation


def _check_name(name: str, taken: Iterable[str]) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SignatureError(f"Invalid field name {name!r}: expected a Python identifier "
                             "that is not a keyword")
    if name in taken:
        raise SignatureError(f"Invalid field name {name!r}: the signature already has it")


def _clean_description(text: str) -> str:
    """One line, single spaces: a description is shown on one preamble line."""
    return " ".join(str(text).split())


def _make_field(name: str, annotation: Any, description: str, is_input: bool) -> Field:
    return Field(name, type_to_str(annotation), annotation, _clean_description(description),
                 is_input)


# --------------------------------------------------------------------------- class form


@dataclass(frozen=True, slots=True)
class _FieldMarker:
    is_input: bool
    description: str


def _marker(is_input: bool, desc: str, description: str | None) -> Any:
    if description is not None and desc:
        raise SignatureError("pass either desc= or description=, not both")
    return _FieldMarker(is_input, description if description is not None else desc)


def InputField(desc: str = "", *, description: str | None = None) -> Any:
    """Declare an input field in a class-based signature (``q: str = InputField()``).

    Typed ``Any`` so ``question: str = InputField()`` type-checks.
    """
    return _marker(True, desc, description)


def OutputField(desc: str = "", *, description: str | None = None) -> Any:
    """Declare an output field in a class-based signature (``a: int = OutputField()``)."""
    return _marker(False, desc, description)


def _class_fields(cls: type) -> tuple[list[Field], list[Field]]:
    """Read a Signature subclass body: marked attributes in definition order."""
    parent = getattr(cls, "_class_fields_", None)
    inputs = list(parent[0]) if parent else []
    outputs = list(parent[1]) if parent else []
    try:
        annotations = inspect.get_annotations(cls, eval_str=True)
    except Exception as exc:  # NameError and friends from string annotations
        raise SignatureError(f"cannot resolve the annotations of {cls.__name__}: {exc}") from exc
    taken = {f.name for f in inputs + outputs}
    marked: list[str] = []
    for name, value in list(vars(cls).items()):
        if not isinstance(value, _FieldMarker):
            continue
        marked.append(name)
        annotation = annotations.get(name, str)
        try:
            normalized = _normalize_annotation(annotation)
        except TypeError as exc:
            raise SignatureError(f"{cls.__name__}.{name}: {exc}") from None
        if name in taken:
            raise SignatureError(f"{cls.__name__}.{name}: a field with this name already exists")
        taken.add(name)
        made = _make_field(name, normalized, value.description, value.is_input)
        (inputs if value.is_input else outputs).append(made)
    for name, annotation in annotations.items():
        origin: Any = get_origin(annotation)
        if name in marked or name.startswith("_") or origin is ClassVar or annotation is ClassVar:
            continue
        raise SignatureError(f"{cls.__name__}.{name}: declare it as `{name}: ... = InputField()` "
                             "or `= OutputField()`")
    for name in marked:  # the properties of Signature must not be shadowed by markers
        delattr(cls, name)
    return inputs, outputs


# --------------------------------------------------------------------------- Signature


def _default_instructions(inputs: Iterable[str], outputs: Iterable[str]) -> str:
    def quoted(names: Iterable[str]) -> str:
        return ", ".join(f"`{name}`" for name in names)

    return f"Given the fields {quoted(inputs)}, produce the fields {quoted(outputs)}."


def _clean_instructions(text: str | None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise SignatureError(f"instructions must be a string, got {type(text).__name__}")
    stripped = inspect.cleandoc(text).strip()
    return stripped or None


class Signature:
    """The typed inputs and outputs of one LM step, plus its instructions.

    Immutable and hashable: adapters cache rendered prompt pieces per
    signature, so any change (``with_instructions``, ``prepend_output``, ...)
    returns a new object. Equality compares fields (in order) and instructions,
    whatever the form the signature was written in.

    When no instructions are given, the default names the fields; it is
    recomputed for derived signatures, so a chain-of-thought signature built
    with ``prepend_output("reasoning")`` mentions ``reasoning`` too.
    """

    __slots__ = ("_explicit", "_hash", "_inputs", "_instructions", "_key", "_outputs")

    _class_fields_: ClassVar[tuple[tuple[Field, ...], tuple[Field, ...]] | None] = None
    _class_doc_: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inputs, outputs = _class_fields(cls)
        cls._class_fields_ = (tuple(inputs), tuple(outputs))
        doc = vars(cls).get("__doc__")
        if doc is not None:
            cls._class_doc_ = _clean_instructions(doc)

    def __init__(
        self,
        spec: str | None = None,
        instructions: str | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        class_fields = type(self)._class_fields_
        if class_fields is not None:
            if spec is not None:
                raise SignatureError(f"{type(self).__name__} is defined by its class body; "
                                     f"call {type(self).__name__}() without a spec string")
            inputs, outputs = list(class_fields[0]), list(class_fields[1])
            if not inputs or not outputs:
                side = "input" if not inputs else "output"
                raise SignatureError(f"{type(self).__name__} has no {side} fields")
            if instructions is None:
                instructions = type(self)._class_doc_
        else:
            if not isinstance(spec, str):
                raise SignatureError(
                    "Signature needs a spec string such as 'question -> answer', got "
                    f"{type(spec).__name__}")
            parsed_in, parsed_out = _parse_spec(spec)
            inputs = [_make_field(n, a, "", True) for n, a, _ in parsed_in]
            outputs = [_make_field(n, a, "", False) for n, a, _ in parsed_out]
        if descriptions:
            inputs, outputs = _apply_descriptions(inputs, outputs, descriptions)
        self._setup(inputs, outputs, _clean_instructions(instructions))

    def _setup(self, inputs: Iterable[Field], outputs: Iterable[Field],
               explicit: str | None) -> None:
        set_ = object.__setattr__
        set_(self, "_inputs", types.MappingProxyType({f.name: f for f in inputs}))
        set_(self, "_outputs", types.MappingProxyType({f.name: f for f in outputs}))
        set_(self, "_explicit", explicit)
        text = explicit or _default_instructions(self._inputs, self._outputs)
        set_(self, "_instructions", text)
        key = (tuple(self._inputs.values()), tuple(self._outputs.values()), text)
        set_(self, "_key", key)
        set_(self, "_hash", hash(key))

    @classmethod
    def _derive(cls, inputs: Iterable[Field], outputs: Iterable[Field],
                explicit: str | None) -> Signature:
        new = object.__new__(Signature)
        new._setup(inputs, outputs, explicit)
        return new

    # ----------------------------------------------------------------- accessors
    _inputs: Mapping[str, Field]
    _outputs: Mapping[str, Field]
    _explicit: str | None
    _instructions: str
    _key: tuple[tuple[Field, ...], tuple[Field, ...], str]
    _hash: int

    @property
    def input_fields(self) -> Mapping[str, Field]:
        """Input fields by name, in order (read-only)."""
        return self._inputs

    @property
    def output_fields(self) -> Mapping[str, Field]:
        """Output fields by name, in order (read-only)."""
        return self._outputs

    @property
    def instructions(self) -> str:
        """The task text: the given instructions, or a default naming the fields."""
        return self._instructions

    @staticmethod
    def coerce(obj: str | Signature | type[Signature]) -> Signature:
        """Turn what a module accepts (string, instance or subclass) into an instance."""
        if isinstance(obj, Signature):
            return obj
        if isinstance(obj, str):
            return Signature(obj)
        if isinstance(obj, type) and issubclass(obj, Signature):
            if obj._class_fields_ is None:
                raise SignatureError("Signature itself has no fields; pass a spec string "
                                     "or a subclass that declares fields")
            return obj()
        raise SignatureError("expected a signature string, a Signature or a Signature "
                             f"subclass, got {type(obj).__name__}")

    # ----------------------------------------------------------------- derivation
    def with_instructions(self, text: str) -> Signature:
        """The same fields with new instructions."""
        cleaned = _clean_instructions(text)
        if cleaned is None:
            raise SignatureError("instructions must not be empty")
        return self._derive(self._inputs.values(), self._outputs.values(), cleaned)

    def prepend_output(self, name: str, type_str: str = "str",
                       description: str = "") -> Signature:
        """A new signature with ``name`` as the first output (e.g. ``reasoning``)."""
        new = self._new_field(name, type_str, description, is_input=False)
        return self._derive(self._inputs.values(), (new, *self._outputs.values()),
                            self._explicit)

    def append_input(self, name: str, type_str: str = "str",
                     description: str = "") -> Signature:
        """A new signature with ``name`` as the last input (e.g. ``previous_code``)."""
        new = self._new_field(name, type_str, description, is_input=True)
        return self._derive((*self._inputs.values(), new), self._outputs.values(),
                            self._explicit)

    def _new_field(self, name: str, type_str: str, description: str, *,
                   is_input: bool) -> Field:
        _check_name(name, (*self._inputs, *self._outputs))
        return _make_field(name, parse_type_str(type_str), description, is_input)

    # ----------------------------------------------------------------- dunders
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Signature is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Signature is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (tuple(self._inputs.values()), tuple(self._outputs.values()),
                           self._explicit))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Signature):
            return NotImplemented
        return self._hash == other._hash and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        def side(fields: Mapping[str, Field]) -> str:
            return ", ".join(f"{f.name}: {f.type_str}" for f in fields.values())

        return f"{side(self._inputs)} -> {side(self._outputs)}"

    def __repr__(self) -> str:
        extra = "" if self._explicit is None else f", instructions={self._explicit!r}"
        return f"{type(self).__name__}({str(self)!r}{extra})"

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>"
            "<td>{}</td></tr>".format(
                "input" if f.is_input else "output", html.escape(f.name),
                html.escape(f.type_str), html.escape(f.description))
            for f in (*self._inputs.values(), *self._outputs.values()))
        return (f"<table><caption>{html.escape(self._instructions)}</caption>"
                "<tr><th>role</th><th>field</th><th>type</th><th>description</th></tr>"
                f"{rows}</table>")


def _apply_descriptions(inputs: list[Field], outputs: list[Field],
                        descriptions: Mapping[str, str]) -> tuple[list[Field], list[Field]]:
    known = {f.name for f in inputs} | {f.name for f in outputs}
    unknown = [name for name in descriptions if name not in known]
    if unknown:
        raise SignatureError(f"descriptions given for unknown fields {unknown}; "
                             f"the fields are {sorted(known)}")

    def apply(fields: list[Field]) -> list[Field]:
        return [_make_field(f.name, f.annotation, descriptions[f.name], f.is_input)
                if f.name in descriptions else f for f in fields]

    return apply(inputs), apply(outputs)


def _rebuild(inputs: tuple[Field, ...], outputs: tuple[Field, ...],
             explicit: str | None) -> Signature:
    """Unpickle target: derived and class-based signatures come back as plain ones."""
    return Signature._derive(inputs, outputs, explicit)
