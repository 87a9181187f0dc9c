"""Signatures: string and class forms, canonical text, errors with carets, immutability."""

from __future__ import annotations

import copy
import pickle
import typing
from typing import Any, ClassVar, Literal

import pytest

from dspex_lab.errors import SignatureError
from dspex_lab.programs import Field, InputField, OutputField, Signature

# --------------------------------------------------------------------------- string form


def test_untyped_fields_are_str() -> None:
    sig = Signature("question -> answer")
    assert list(sig.input_fields) == ["question"]
    assert list(sig.output_fields) == ["answer"]
    field = sig.input_fields["question"]
    assert field == Field("question", "str", str, "", True)
    assert field.annotation is str
    assert sig.output_fields["answer"].is_input is False
    assert str(sig) == "question: str -> answer: str"


def test_typed_fields_keep_order_and_types() -> None:
    sig = Signature("question: str, context: list[str] -> answer: str, confidence: float")
    assert list(sig.input_fields) == ["question", "context"]
    assert list(sig.output_fields) == ["answer", "confidence"]
    assert sig.input_fields["context"].annotation == list[str]
    assert sig.input_fields["context"].type_str == "list[str]"
    assert sig.output_fields["confidence"].annotation is float
    assert str(sig) == "question: str, context: list[str] -> answer: str, confidence: float"


@pytest.mark.parametrize(
    ("written", "canonical", "annotation"),
    [
        ("int", "int", int),
        ("float", "float", float),
        ("bool", "bool", bool),
        ("str", "str", str),
        ("list[int]", "list[int]", list[int]),
        ("list[list[float]]", "list[list[float]]", list[list[float]]),
        ("dict[str,int]", "dict[str, int]", dict[str, int]),
        ("dict[ str , list[ bool ] ]", "dict[str, list[bool]]", dict[str, list[bool]]),
        ("dict[int, dict[str, str]]", "dict[int, dict[str, str]]", dict[int, dict[str, str]]),
        ("Literal['a', 'b']", "Literal['a', 'b']", Literal["a", "b"]),
        ('Literal["yes","no"]', "Literal['yes', 'no']", Literal["yes", "no"]),
        ("list[Literal['x']]", "list[Literal['x']]", list[Literal["x"]]),
        ("dict[Literal['k'], int]", "dict[Literal['k'], int]", dict[Literal["k"], int]),
    ],
)
def test_supported_types(written: str, canonical: str, annotation: Any) -> None:
    sig = Signature(f"q -> a: {written}")
    field = sig.output_fields["a"]
    assert field.type_str == canonical
    assert field.annotation == annotation
    # The canonical text parses back to the same signature.
    assert Signature(str(sig)) == sig


def test_literal_with_quotes_and_escapes() -> None:
    sig = Signature(r"""q -> a: Literal["it's", 'say "hi"', 'back\\slash']""")
    assert typing.get_args(sig.output_fields["a"].annotation) == (
        "it's", 'say "hi"', "back\\slash")
    assert Signature(str(sig)) == sig


def test_whitespace_and_newlines_are_insignificant() -> None:
    assert Signature("  question :str ,context:list[ str ]->answer  ") == Signature(
        "question: str, context: list[str] -> answer: str")
    assert Signature("question,\n context\n -> answer") == Signature("question, context -> answer")


def test_unicode_identifiers() -> None:
    sig = Signature("frage -> antwort_ü")
    assert list(sig.output_fields) == ["antwort_ü"]


def test_default_instructions_name_all_fields() -> None:
    sig = Signature("question, context -> answer, confidence: float")
    assert sig.instructions == (
        "Given the fields `question`, `context`, produce the fields `answer`, `confidence`.")


def test_explicit_instructions_and_descriptions() -> None:
    sig = Signature("question -> answer", instructions="  Answer briefly.  ",
                    descriptions={"question": "the question", "answer": "one word"})
    assert sig.instructions == "Answer briefly."
    assert sig.input_fields["question"].description == "the question"
    assert sig.output_fields["answer"].description == "one word"


def test_descriptions_are_one_line() -> None:
    sig = Signature("q -> a", descriptions={"a": "first line\n  second\tline "})
    assert sig.output_fields["a"].description == "first line second line"


def test_descriptions_for_unknown_fields_are_rejected() -> None:
    with pytest.raises(SignatureError, match="unknown fields \\['nope'\\]"):
        Signature("q -> a", descriptions={"nope": "x"})


def test_multiline_instructions_are_dedented() -> None:
    sig = Signature("q -> a", instructions="""
        First line.
          Indented.
        """)
    assert sig.instructions == "First line.\n  Indented."


def test_non_string_spec_is_rejected() -> None:
    with pytest.raises(SignatureError, match="spec string"):
        Signature(42)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="spec string"):
        Signature()


# --------------------------------------------------------------------------- errors


def _error(spec: str) -> str:
    with pytest.raises(SignatureError) as info:
        Signature(spec)
    return str(info.value)


def test_error_message_layout_matches_the_documented_example() -> None:
    assert _error("question, -> answer") == (
        "Invalid signature: expected a field name after ',' at column 10\n"
        "  question, -> answer\n"
        "            ^"
    )


@pytest.mark.parametrize(
    ("spec", "column", "expected"),
    [
        ("", 0, "expected input field names, then '->', then output field names"),
        ("-> answer", 0, "expected an input field name before '->'"),
        ("question ->", 11, "expected an output field name after '->'"),
        ("question ->  , a", 13, "expected an output field name after '->'"),
        ("question", 8, "expected '->' followed by the output fields"),
        ("question answer", 9, "expected ':', ',' or '->' after `question`"),
        ("q: int answer -> a", 7, "expected ',' or '->' after the type of `q`"),
        ("q -> a b", 7, "expected ':', ',' or the end of the signature after `a`"),
        ("q -> a?", 6, "expected ':', ',' or the end of the signature after `a`"),
        ("q -> a -> b", 7, "expected only one '->'"),
        ("q: -> a", 3, "expected a type after ':'"),
        ("q, q -> a", 3, "expected a new field name; `q` is already an input field"),
        ("q -> a, q", 8, "expected a new field name; `q` is already an input field"),
        ("q -> a, a", 8, "expected a new field name; `a` is already an output field"),
        ("1q -> a", 0, "`1q` is not a valid field name; expected a Python identifier"),
        ("class -> a", 0, "`class` is a Python keyword; expected a field name"),
        ("q: string -> a", 3, "unknown type 'string'; expected str, int, float, bool, "
                              "list[...], dict[..., ...] or Literal[...]"),
        ("q: List[str] -> a", 3, "unknown type 'List'"),
        ("q: list -> a", 8, "expected '[' after 'list' (e.g. list[str])"),
        ("q: list[str -> a", 12, "expected ']' to close 'list['"),
        ("q: list[] -> a", 8, "expected a type inside 'list[...]'"),
        ("q: list[str, int] -> a", 11, "expected ']' (list takes one type)"),
        ("q: list[str]] -> a", 12, "unmatched ']'"),
        ("q: str[int] -> a", 6, "expected no '[' after 'str'"),
        ("q: dict[str] -> a", 11, "expected ',' and a value type in 'dict[...]'"),
        ("q: dict[str, int, int] -> a", 16, "expected ']' (dict takes a key and a value type)"),
        ("q: dict[list[str], int] -> a", 8,
         "expected a str, int, float, bool or Literal key type in 'dict[...]'"),
        ("q: Literal[] -> a", 11, "expected a quoted string inside 'Literal[...]'"),
        ("q: Literal[a] -> a", 11, "expected a quoted string inside 'Literal[...]'"),
        ("q: Literal['a', ] -> a", 16,
         "expected a quoted string inside 'Literal[...]' after ','"),
        ("q: Literal['a' 'b'] -> a", 15, "expected ',' or ']' in 'Literal[...]'"),
        ("q: Literal['a', 'a'] -> x", 16, "duplicate value 'a' in 'Literal[...]'"),
        ("q: Literal['a -> x", 11, "unterminated string"),
        ("q; r -> a", 1, "expected ':', ',' or '->' after `q`"),
        ("q - a", 2, "expected ':', ',' or '->' after `q`"),
    ],
)
def test_malformed_signatures_point_at_the_column(spec: str, column: int, expected: str) -> None:
    message = _error(spec)
    first, shown, caret = message.split("\n")
    assert first.startswith("Invalid signature: ")
    assert expected in first
    assert first.endswith(f" at column {column}")
    assert shown == "  " + spec
    assert caret == "  " + " " * column + "^"


def test_caret_stays_aligned_for_multiline_specs() -> None:
    message = _error("question,\n\t-> answer")
    _, shown, caret = message.split("\n")
    assert shown == "  question,  -> answer"
    assert caret.index("^") == shown.index("->")


def test_signature_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Signature("q")


# --------------------------------------------------------------------------- class form


class QA(Signature):
    """Answer with one word."""

    question: str = InputField(desc="the question")
    answer: int = OutputField()


def test_class_form_reads_annotations_docstring_and_descriptions() -> None:
    sig = QA()
    assert str(sig) == "question: str -> answer: int"
    assert sig.instructions == "Answer with one word."
    assert sig.input_fields["question"].description == "the question"
    assert sig.output_fields["answer"].annotation is int
    assert isinstance(sig, QA)


def test_class_form_equals_string_form() -> None:
    same = Signature("question -> answer: int", instructions="Answer with one word.",
                     descriptions={"question": "the question"})
    assert QA() == same
    assert hash(QA()) == hash(same)


def test_class_form_supports_every_type() -> None:
    class Everything(Signature):
        text: str = InputField()
        items: list[str] = InputField(description="things")
        table: dict[str, list[int]] = InputField()
        legacy: typing.List[int] = InputField()  # noqa: UP006
        label: Literal["pos", "neg"] = OutputField()
        score: float = OutputField()
        ok: bool = OutputField()

    sig = Everything()
    assert str(sig) == ("text: str, items: list[str], table: dict[str, list[int]], "
                        "legacy: list[int] -> label: Literal['pos', 'neg'], score: float, ok: bool")
    assert sig.input_fields["items"].description == "things"
    assert sig.input_fields["legacy"].annotation == list[int]
    # Without a docstring the default instructions apply.
    assert sig.instructions.startswith("Given the fields `text`, `items`")


def test_class_form_fields_named_like_signature_attributes() -> None:
    class Odd(Signature):
        instructions: str = InputField()
        input_fields: str = InputField()  # type: ignore[assignment]
        coerce: str = OutputField()  # type: ignore[assignment]

    sig = Odd()
    assert list(sig.input_fields) == ["instructions", "input_fields"]
    assert list(sig.output_fields) == ["coerce"]
    assert sig.instructions.startswith("Given the fields")


def test_class_form_without_annotation_is_str_and_classvars_are_ignored() -> None:
    class Loose(Signature):
        version: ClassVar[int] = 3
        question = InputField()
        answer = OutputField()

    assert str(Loose()) == "question: str -> answer: str"


def test_class_form_inheritance_adds_fields() -> None:
    class Base(Signature):
        """Base instructions."""

        question: str = InputField()

    class Child(Base):
        answer: str = OutputField()

    assert str(Child()) == "question: str -> answer: str"
    assert Child().instructions == "Base instructions."
    with pytest.raises(SignatureError, match="Base has no output fields"):
        Base()


def test_class_form_instructions_override() -> None:
    assert QA(instructions="Be terse.").instructions == "Be terse."


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (tuple[int], "unsupported type"),
        (list, "list needs type arguments"),
        (dict[list[str], int], "dict keys must be"),
        (Literal[1, 2], "Literal\\[...\\] must list one or more strings"),
        (typing.Optional[str], "unsupported type"),  # noqa: UP045
    ],
)
def test_class_form_rejects_unsupported_types(annotation: Any, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        type("Bad", (Signature,), {"__annotations__": {"x": annotation},
                                   "x": InputField(), "y": OutputField()})


def test_class_form_annotation_without_field_marker_is_rejected() -> None:
    with pytest.raises(SignatureError, match=r"Bad\.x: declare it as"):
        type("Bad", (Signature,), {"__annotations__": {"x": str}})


def test_class_form_refuses_a_spec_string() -> None:
    with pytest.raises(SignatureError, match="defined by its class body"):
        QA("q -> a")


def test_field_markers_accept_desc_or_description_not_both() -> None:
    with pytest.raises(SignatureError, match="either desc= or description="):
        InputField("a", description="b")


# --------------------------------------------------------------------------- coerce


def test_coerce_accepts_strings_instances_and_subclasses() -> None:
    sig = Signature("q -> a")
    assert Signature.coerce(sig) is sig
    assert Signature.coerce("q -> a") == sig
    assert Signature.coerce(QA) == QA()


@pytest.mark.parametrize("bad", [42, None, Signature, int])
def test_coerce_rejects_anything_else(bad: Any) -> None:
    with pytest.raises(SignatureError):
        Signature.coerce(bad)


# --------------------------------------------------------------------------- derivation


def test_with_instructions_returns_a_new_signature() -> None:
    sig = Signature("q -> a")
    new = sig.with_instructions("Think.")
    assert new.instructions == "Think."
    assert sig.instructions == "Given the fields `q`, produce the fields `a`."
    assert new != sig
    with pytest.raises(SignatureError, match="must not be empty"):
        sig.with_instructions("   ")


def test_prepend_output_and_append_input() -> None:
    sig = Signature("question -> answer: int")
    cot = sig.prepend_output("reasoning", description="think step by step before answering")
    assert list(cot.output_fields) == ["reasoning", "answer"]
    assert cot.output_fields["reasoning"] == Field(
        "reasoning", "str", str, "think step by step before answering", False)
    # Default instructions follow the fields; explicit ones are kept.
    assert cot.instructions == (
        "Given the fields `question`, produce the fields `reasoning`, `answer`.")
    explicit = sig.with_instructions("Solve it.").prepend_output("reasoning")
    assert explicit.instructions == "Solve it."

    retry = sig.append_input("previous_code").append_input("error", "list[str]", "what failed")
    assert str(retry) == "question: str, previous_code: str, error: list[str] -> answer: int"
    assert retry.input_fields["error"].description == "what failed"
    assert str(sig) == "question: str -> answer: int"  # unchanged


def test_derived_fields_are_validated() -> None:
    sig = Signature("question -> answer")
    with pytest.raises(SignatureError, match="already has it"):
        sig.prepend_output("question")
    with pytest.raises(SignatureError, match="expected a Python identifier"):
        sig.append_input("not valid")
    with pytest.raises(SignatureError) as info:
        sig.prepend_output("score", "list[flaot]")
    assert str(info.value) == (
        "Invalid type: unknown type 'flaot'; expected str, int, float, bool, list[...], "
        "dict[..., ...] or Literal[...] at column 5\n"
        "  list[flaot]\n"
        "       ^")
    with pytest.raises(SignatureError, match="expected the end of the type at column 4"):
        sig.prepend_output("score", "int int")


def test_derived_from_class_form_is_a_plain_signature() -> None:
    new = QA().prepend_output("reasoning")
    assert type(new) is Signature
    assert new.instructions == "Answer with one word."


# --------------------------------------------------------------------------- value semantics


def test_equality_and_hash_cover_fields_order_and_instructions() -> None:
    a = Signature("x, y -> z")
    assert a == Signature("x: str, y: str -> z: str")
    assert hash(a) == hash(Signature("x, y -> z"))
    assert a != Signature("y, x -> z")
    assert a != Signature("x, y -> z: int")
    assert a != Signature("x, y -> z", instructions="other")
    assert a != Signature("x, y -> z", descriptions={"z": "d"})
    assert a != "x, y -> z"
    assert len({a, Signature("x, y -> z"), Signature("x -> z")}) == 2


def test_signatures_are_immutable() -> None:
    sig = Signature("q -> a")
    with pytest.raises(AttributeError):
        sig.instructions = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sig._inputs = {}
    with pytest.raises(AttributeError):
        del sig._outputs
    with pytest.raises(TypeError):
        sig.input_fields["b"] = sig.input_fields["q"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        sig.output_fields["a"].name = "b"  # type: ignore[misc]


def test_pickle_and_copy_round_trip() -> None:
    sig = Signature("q: list[str] -> a: Literal['x', 'y']", instructions="Do it.")
    assert pickle.loads(pickle.dumps(sig)) == sig
    assert copy.deepcopy(sig) == sig
    assert pickle.loads(pickle.dumps(QA())) == QA()


def test_repr_and_html() -> None:
    assert repr(Signature("q -> a")) == "Signature('q: str -> a: str')"
    assert repr(Signature("q -> a", instructions="Go.")) == (
        "Signature('q: str -> a: str', instructions='Go.')")
    assert repr(QA()).startswith("QA('question: str -> answer: int'")
    page = Signature("q -> a: list[str]", descriptions={"a": "<b>items</b>"})._repr_html_()
    assert page.startswith("<table>")
    assert "<code>list[str]</code>" in page
    assert "&lt;b&gt;items&lt;/b&gt;" in page
    assert "<b>" not in page
