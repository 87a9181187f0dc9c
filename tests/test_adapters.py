"""Adapters: exact prompt text per docs/internals/prompt-protocol.md, parsing, round trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspex_lab.errors import ConfigurationError, DatasetError, ParseError
from dspex_lab.programs import (
    ADAPTER_NAMES,
    Adapter,
    ChatAdapter,
    InputField,
    JSONAdapter,
    MarkdownAdapter,
    OutputField,
    Signature,
    fallback_adapter,
    get_adapter,
)

# The signature of the protocol page's preamble example (a chain of thought).
COT = Signature(
    "question, context: list[str] -> answer",
    descriptions={"question": "the question to answer"},
).prepend_output("reasoning", description="think step by step before answering")

PREAMBLE = """\
Your input fields are:
1. `question` (str): the question to answer
2. `context` (list[str])
Your output fields are:
1. `reasoning` (str): think step by step before answering
2. `answer` (str)
"""
TASK = ("Your task: Given the fields `question`, `context`, "
        "produce the fields `reasoning`, `answer`.")
INPUTS = {"question": "What is 2 + 3?", "context": ["math", "addition"]}
OUTPUTS = {"reasoning": "2 plus 3 is 5.", "answer": "5"}

SIMPLE = Signature("question -> answer")


def every_adapter() -> list[Adapter]:
    return [get_adapter(name) for name in ADAPTER_NAMES]


# --------------------------------------------------------------------------- registry


def test_get_adapter_by_name() -> None:
    assert ADAPTER_NAMES == ("chat", "json", "markdown")
    assert isinstance(get_adapter("chat"), ChatAdapter)
    assert isinstance(get_adapter("json"), JSONAdapter)
    assert isinstance(get_adapter("markdown"), MarkdownAdapter)
    assert isinstance(get_adapter(" JSON "), JSONAdapter)
    assert [get_adapter(name).name for name in ADAPTER_NAMES] == list(ADAPTER_NAMES)
    assert repr(get_adapter("chat")) == "ChatAdapter()"


def test_unknown_adapter_lists_the_valid_names() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_adapter("xml")
    assert str(info.value) == "unknown adapter 'xml'; valid names are 'chat', 'json', 'markdown'"


def test_fallback_map() -> None:
    assert {name: fallback_adapter(name) for name in ADAPTER_NAMES} == {
        "chat": "json", "json": "chat", "markdown": "chat"}
    with pytest.raises(ConfigurationError, match="valid names"):
        fallback_adapter("yaml")


def test_request_params() -> None:
    json_adapter = get_adapter("json")
    assert json_adapter.request_params(supports_json_mode=True) == {
        "response_format": {"type": "json_object"}}
    assert json_adapter.request_params(supports_json_mode=False) == {}
    for name in ("chat", "markdown"):
        assert get_adapter(name).request_params(supports_json_mode=True) == {}
    # Callers may mutate what they get.
    json_adapter.request_params(supports_json_mode=True)["response_format"]["type"] = "x"
    assert json_adapter.request_params(supports_json_mode=True)["response_format"] == {
        "type": "json_object"}


# --------------------------------------------------------------------------- exact text

CHAT_SYSTEM = PREAMBLE + """
Every exchange uses this structure, with each value filled in:

[[ ## question ## ]]
{question}

[[ ## context ## ]]
{context}

[[ ## reasoning ## ]]
{reasoning}

[[ ## answer ## ]]
{answer}

[[ ## completed ## ]]

""" + TASK

JSON_SYSTEM = PREAMBLE + """
Reply with a single JSON object and nothing else. Its keys are: "reasoning" (string), \
"answer" (string).

""" + TASK

MARKDOWN_SYSTEM = PREAMBLE + """
Every exchange uses Markdown, one level-2 heading per field:

## question
{question}

## context
{context}

## reasoning
{reasoning}

## answer
{answer}

""" + TASK


def test_chat_exact_messages() -> None:
    messages = get_adapter("chat").format(COT, INPUTS)
    assert messages == [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": (
            "[[ ## question ## ]]\nWhat is 2 + 3?\n\n"
            "[[ ## context ## ]]\n[\"math\",\"addition\"]\n\n"
            "Reply with the fields `[[ ## reasoning ## ]]`, then `[[ ## answer ## ]]`, "
            "and end with `[[ ## completed ## ]]`.")},
    ]
    assert get_adapter("chat").format_outputs(COT, OUTPUTS) == (
        "[[ ## reasoning ## ]]\n2 plus 3 is 5.\n\n"
        "[[ ## answer ## ]]\n5\n\n"
        "[[ ## completed ## ]]")


def test_json_exact_messages() -> None:
    messages = get_adapter("json").format(COT, INPUTS)
    assert messages == [
        {"role": "system", "content": JSON_SYSTEM},
        {"role": "user", "content": '{"question":"What is 2 + 3?","context":["math","addition"]}'},
    ]
    assert get_adapter("json").format_outputs(COT, OUTPUTS) == (
        '{"reasoning":"2 plus 3 is 5.","answer":"5"}')


def test_markdown_exact_messages() -> None:
    messages = get_adapter("markdown").format(COT, INPUTS)
    assert messages == [
        {"role": "system", "content": MARKDOWN_SYSTEM},
        {"role": "user", "content": (
            "## question\nWhat is 2 + 3?\n\n"
            "## context\n[\"math\",\"addition\"]\n\n"
            "Reply with the headings ## reasoning, ## answer in this order.")},
    ]
    assert get_adapter("markdown").format_outputs(COT, OUTPUTS) == (
        "## reasoning\n2 plus 3 is 5.\n\n## answer\n5")


def test_single_field_chat_user_message_matches_the_protocol_example() -> None:
    message = get_adapter("chat").format_inputs(SIMPLE, {"question": "What is 2 + 3?"})
    assert message == {"role": "user", "content": (
        "[[ ## question ## ]]\nWhat is 2 + 3?\n\n"
        "Reply with the fields `[[ ## answer ## ]]`, and end with `[[ ## completed ## ]]`.")}


def test_json_type_names() -> None:
    sig = Signature("q -> s: str, i: int, f: float, b: bool, l: list[int], "
                    "d: dict[str, list[str]], c: Literal['x', 'y']")
    system = get_adapter("json").format_prefix(sig)[0]["content"]
    assert ('Its keys are: "s" (string), "i" (integer), "f" (number), "b" (boolean), '
            '"l" (array), "d" (object), "c" (string).') in system
    assert "7. `c` (Literal['x', 'y'])" in system


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_instructions_override_and_multiline_task(adapter: Adapter) -> None:
    system = adapter.format_prefix(SIMPLE, instructions="Line one.\nLine two.")[0]["content"]
    assert system.endswith("\n\nYour task: Line one.\nLine two.")
    default = adapter.format_prefix(SIMPLE)[0]["content"]
    assert default.endswith(
        "\n\nYour task: Given the fields `question`, produce the fields `answer`.")
    # The signature's own instructions are used when the module gives none.
    custom = adapter.format_prefix(SIMPLE.with_instructions("Be brief."), instructions=None)
    assert custom[0]["content"].endswith("\n\nYour task: Be brief.")


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_preamble_and_task_are_identical_across_adapters(adapter: Adapter) -> None:
    system = adapter.format_prefix(COT)[0]["content"]
    assert system.startswith(PREAMBLE + "\n")
    assert system.endswith("\n\n" + TASK)


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_signature_strings_and_classes_are_accepted(adapter: Adapter) -> None:
    class QA(Signature):
        question: str = InputField()
        answer: str = OutputField()

    expected = adapter.format(SIMPLE, {"question": "q"})
    assert adapter.format("question -> answer", {"question": "q"}) == expected
    assert adapter.format(QA, {"question": "q"}) == expected
    assert adapter.parse(QA, adapter.format_outputs(QA, {"answer": "a"})) == {"answer": "a"}


# --------------------------------------------------------------------------- demos

DEMOS: list[dict[str, Any]] = [
    {"question": "What is 1 + 1?", "context": ["math"], "reasoning": "One and one.",
     "answer": "2", "extra": "ignored"},
    {"question": "Capital of France?", "answer": "Paris"},  # no context, no reasoning
]


def test_chat_demo_messages() -> None:
    messages = get_adapter("chat").format(COT, INPUTS, demos=DEMOS)
    assert [m["role"] for m in messages] == [
        "system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == (
        "[[ ## question ## ]]\nWhat is 1 + 1?\n\n[[ ## context ## ]]\n[\"math\"]")
    assert messages[2]["content"] == (
        "[[ ## reasoning ## ]]\nOne and one.\n\n[[ ## answer ## ]]\n2\n\n[[ ## completed ## ]]")
    assert messages[3]["content"] == "[[ ## question ## ]]\nCapital of France?"
    assert messages[4]["content"] == "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"


def test_json_demo_messages() -> None:
    messages = get_adapter("json").format(COT, INPUTS, demos=DEMOS)
    assert [m["content"] for m in messages[1:5]] == [
        '{"question":"What is 1 + 1?","context":["math"]}',
        '{"reasoning":"One and one.","answer":"2"}',
        '{"question":"Capital of France?"}',
        '{"answer":"Paris"}',
    ]


def test_markdown_demo_messages() -> None:
    messages = get_adapter("markdown").format(COT, INPUTS, demos=DEMOS)
    assert [m["content"] for m in messages[1:5]] == [
        "## question\nWhat is 1 + 1?\n\n## context\n[\"math\"]",
        "## reasoning\nOne and one.\n\n## answer\n2",
        "## question\nCapital of France?",
        "## answer\nParis",
    ]


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_demo_count_equals_assistant_messages(adapter: Adapter) -> None:
    prefix = adapter.format_prefix(COT, demos=DEMOS * 3)
    assert len(prefix) == 1 + 2 * 6
    assert sum(m["role"] == "assistant" for m in prefix) == 6


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_demo_without_outputs_is_a_configuration_error(adapter: Adapter) -> None:
    demos = [DEMOS[0], {"question": "only inputs", "answer": None}]
    with pytest.raises(ConfigurationError, match="demo 1 has none of the output fields"):
        adapter.format_prefix(COT, demos=demos)


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_none_values_in_demos_are_omitted(adapter: Adapter) -> None:
    with_none = adapter.format_prefix(COT, demos=[{"question": "q", "context": None,
                                                   "reasoning": None, "answer": "a"}])
    without = adapter.format_prefix(COT, demos=[{"question": "q", "answer": "a"}])
    assert with_none == without


# --------------------------------------------------------------------------- missing inputs


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_missing_input_is_a_dataset_error(adapter: Adapter) -> None:
    with pytest.raises(DatasetError, match="input field 'context' is missing"):
        adapter.format(COT, {"question": "q"})
    with pytest.raises(DatasetError, match="input field 'question' is missing or None"):
        adapter.format_inputs(COT, {"question": None, "context": []})


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_format_outputs_needs_every_output(adapter: Adapter) -> None:
    with pytest.raises(DatasetError, match="output field 'reasoning' is missing"):
        adapter.format_outputs(COT, {"answer": "5"})


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_extra_inputs_are_ignored(adapter: Adapter) -> None:
    assert adapter.format(SIMPLE, {"question": "q", "gold": "x"}) == adapter.format(
        SIMPLE, {"question": "q"})


# --------------------------------------------------------------------------- values


def test_values_str_as_is_others_compact_json() -> None:
    sig = Signature("s, i: int, f: float, b: bool, l: list[str], d: dict[int, str], u -> a")
    message = get_adapter("chat").format_inputs(sig, {
        "s": "  text, kept as is\n", "i": 3, "f": 2.5, "b": True, "l": ["a", "b"],
        "d": {1: "x"}, "u": {"ünï": ("t", 1)}})
    content = message["content"]
    assert "[[ ## s ## ]]\n  text, kept as is\n\n\n" in content
    for rendered in ("\n3\n", "\n2.5\n", "\ntrue\n", '\n["a","b"]\n', '\n{"1":"x"}\n',
                     '\n{"ünï":["t",1]}\n'):
        assert rendered in content


def test_values_beyond_64_bits_and_unserializable_objects() -> None:
    sig = Signature("x: int, y -> a: list[int]")
    big = 2**80
    content = get_adapter("json").format_inputs(sig, {"x": big, "y": object})["content"]
    assert content == f'{{"x":{big},"y":"<class \'object\'>"}}'
    for adapter in every_adapter():
        text = adapter.format_outputs(sig, {"a": [big, -big]})
        assert adapter.parse(sig, text) == {"a": [big, -big]}


# --------------------------------------------------------------------------- round trips

ALL_TYPES = Signature(
    "q -> s: str, i: int, f: float, b: bool, ls: list[str], li: list[int], "
    "lf: list[float], lb: list[bool], dsi: dict[str, int], dis: dict[int, str], "
    "nested: dict[str, list[dict[str, float]]], lit: Literal['yes', 'no', 'maybe'], "
    "llit: list[Literal['a', 'b']], dlit: dict[Literal['k'], bool]")
ALL_VALUES: dict[str, Any] = {
    "s": "multi-line\ntext with: colons and \"quotes\"", "i": -42, "f": 3.25, "b": False,
    "ls": ["a", "", "c d"], "li": [1, 2, 3], "lf": [0.5, -1.0, 1e20], "lb": [True, False],
    "dsi": {"a": 1}, "dis": {1: "one", -2: "minus two"},
    "nested": {"x": [{"y": 1.5}], "z": []}, "lit": "maybe", "llit": ["b", "a"],
    "dlit": {"k": True},
}


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_round_trip_every_type(adapter: Adapter) -> None:
    text = adapter.format_outputs(ALL_TYPES, ALL_VALUES)
    parsed = adapter.parse(ALL_TYPES, text)
    assert parsed == ALL_VALUES
    assert list(parsed) == list(ALL_TYPES.output_fields)
    assert type(parsed["f"]) is float and type(parsed["i"]) is int


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_round_trip_of_empty_containers_and_strings(adapter: Adapter) -> None:
    sig = Signature("q -> s, l: list[int], d: dict[str, str]")
    values = {"s": "", "l": [], "d": {}}
    assert adapter.parse(sig, adapter.format_outputs(sig, values)) == values


# Markers and headings are the formats' delimiters; values avoid "[" and "#".
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="[#"))
HYPOTHESIS_SIG = Signature(
    "q -> s: str, i: int, f: float, b: bool, ls: list[str], li: list[int], "
    "lf: list[float], lb: list[bool]")
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
@settings(max_examples=150, deadline=None)
@given(
    s=TEXT.map(str.strip), i=st.integers(), f=FINITE, b=st.booleans(),
    ls=st.lists(TEXT, max_size=5), li=st.lists(st.integers(), max_size=5),
    lf=st.lists(FINITE, max_size=5), lb=st.lists(st.booleans(), max_size=5),
)
def test_round_trip_property(adapter: Adapter, s: str, i: int, f: float, b: bool,
                             ls: list[str], li: list[int], lf: list[float],
                             lb: list[bool]) -> None:
    values = {"s": s, "i": i, "f": f, "b": b, "ls": ls, "li": li, "lf": lf, "lb": lb}
    assert adapter.parse(HYPOTHESIS_SIG, adapter.format_outputs(HYPOTHESIS_SIG, values)) == values


@settings(max_examples=100, deadline=None)
@given(value=st.text(st.characters(codec="utf-8")).map(str.strip))
def test_json_round_trips_any_string(value: str) -> None:
    adapter = get_adapter("json")
    assert adapter.parse(SIMPLE, adapter.format_outputs(SIMPLE, {"answer": value})) == {
        "answer": value}


# --------------------------------------------------------------------------- parse: chat

TYPED = Signature("question -> reasoning, answer: int")


def test_chat_parse_is_forgiving() -> None:
    chat = get_adapter("chat")
    reply = ("Sure! Here you go.\n[[ ## REASONING ## ]]\n  2 plus 3  \n"
             "[[ ## question ## ]]\necho of the input\n"
             "[[##answer##]]\n 5 \n")
    assert chat.parse(TYPED, reply) == {"reasoning": "2 plus 3", "answer": 5}


def test_chat_parse_ignores_everything_after_completed_and_repeated_blocks() -> None:
    chat = get_adapter("chat")
    reply = ("[[ ## reasoning ## ]]\nfirst\n\n[[ ## answer ## ]]\n5\n\n[[ ## completed ## ]]\n"
             "[[ ## answer ## ]]\n6")
    assert chat.parse(TYPED, reply) == {"reasoning": "first", "answer": 5}
    twice = "[[ ## reasoning ## ]]\na\n[[ ## reasoning ## ]]\nb\n[[ ## answer ## ]]\n1"
    assert chat.parse(TYPED, twice) == {"reasoning": "a", "answer": 1}


def test_chat_missing_field_is_a_parse_error_keeping_raw() -> None:
    reply = "[[ ## reasoning ## ]]\nI think it is 5.\n\n[[ ## completed ## ]]"
    with pytest.raises(ParseError) as info:
        get_adapter("chat").parse(TYPED, reply)
    error = info.value
    assert str(error) == ("chat adapter: the reply has no field `answer` (int); expected a "
                          "`[[ ## answer ## ]]` block")
    assert error.raw == reply
    assert error.adapter == "chat"
    assert error.kind == "parse_error"


@pytest.mark.parametrize("value", ["The answer is 42", "42.", "4 2", "42.0", "", "1_000", "0x1f"])
def test_chat_int_is_strict(value: str) -> None:
    reply = f"[[ ## reasoning ## ]]\nr\n\n[[ ## answer ## ]]\n{value}\n\n[[ ## completed ## ]]"
    with pytest.raises(ParseError) as info:
        get_adapter("chat").parse(TYPED, reply)
    assert "field `answer` should be int (expected an integer)" in str(info.value)
    assert info.value.raw == reply


@pytest.mark.parametrize(
    ("type_str", "text", "expected"),
    [
        ("int", "+7", 7), ("int", "-007", -7),
        ("float", "2", 2.0), ("float", "-2.5e3", -2500.0), ("float", "1E-2", 0.01),
        ("bool", "True", True), ("bool", "yes", True), ("bool", "NO", False),
        ("bool", "false", False),
        ("Literal['Positive', 'negative']", "positive", "Positive"),
        ("Literal['Positive', 'negative']", "NEGATIVE", "negative"),
        ("Literal['Positive', 'negative']", "'negative'", "negative"),
        ("Literal['a', 'A']", "A", "A"),
        ("list[int]", "[1, 2]", [1, 2]),
        ("list[int]", '["1", 2]', [1, 2]),
        ("list[int]", "```json\n[1, 2]\n```", [1, 2]),
        ("list[float]", "[1, 2.5]", [1.0, 2.5]),
        ("list[str]", '[" padded "]', [" padded "]),
        ("list[bool]", '[true, "no"]', [True, False]),
        ("dict[str, int]", '{"a": 1}', {"a": 1}),
        ("dict[int, list[str]]", '{"1": ["x"]}', {1: ["x"]}),
        ("str", "  padded  \n", "padded"),
    ],
)
@pytest.mark.parametrize("adapter_name", ["chat", "markdown"])
def test_text_coercion(adapter_name: str, type_str: str, text: str, expected: Any) -> None:
    sig = Signature(f"q -> value: {type_str}")
    adapter = get_adapter(adapter_name)
    reply = (f"[[ ## value ## ]]\n{text}\n" if adapter_name == "chat" else f"## value\n{text}\n")
    assert adapter.parse(sig, reply) == {"value": expected}


@pytest.mark.parametrize(
    ("type_str", "text", "reason"),
    [
        ("float", "42.", "expected a number"),
        ("float", "nan", "expected a number"),
        ("float", "about 3", "expected a number"),
        ("bool", "maybe", "expected true, false, yes or no"),
        ("bool", "1", "expected true, false, yes or no"),
        ("Literal['a', 'b']", "c", "expected one of 'a', 'b'"),
        ("list[int]", "1, 2", "expected a JSON array"),
        ("list[int]", '{"a": 1}', "expected a JSON array"),
        ("list[int]", "[1, 2.5]", "item 1: expected an integer"),
        ("list[int]", "[true]", "item 0: expected an integer"),
        ("list[str]", "[null]", "item 0: expected a string"),
        ("dict[str, int]", "[1]", "expected a JSON object"),
        ("dict[int, int]", '{"x": 1}', "key 'x': expected an integer"),
        ("dict[str, list[int]]", '{"k": [1, "x"]}', "key 'k': item 1: expected an integer"),
    ],
)
@pytest.mark.parametrize("adapter_name", ["chat", "markdown"])
def test_text_coercion_errors(adapter_name: str, type_str: str, text: str, reason: str) -> None:
    sig = Signature(f"q -> value: {type_str}")
    adapter = get_adapter(adapter_name)
    reply = (f"[[ ## value ## ]]\n{text}\n" if adapter_name == "chat" else f"## value\n{text}\n")
    with pytest.raises(ParseError) as info:
        adapter.parse(sig, reply)
    message = str(info.value)
    assert message.startswith(f"{adapter_name} adapter: field `value` should be {type_str} ")
    assert f"({reason})" in message
    assert message.endswith(f"got {text!r}")
    assert info.value.raw == reply


def test_long_bad_values_are_shortened_in_the_message() -> None:
    reply = "[[ ## answer ## ]]\n" + "x" * 500
    with pytest.raises(ParseError) as info:
        get_adapter("chat").parse(Signature("q -> answer: int"), reply)
    assert "'" + "x" * 80 + "...'" in str(info.value)
    assert info.value.raw == reply


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
@pytest.mark.parametrize("reply", ["", "   \n"])
def test_empty_reply_is_a_parse_error(adapter: Adapter, reply: str) -> None:
    with pytest.raises(ParseError, match=f"^{adapter.name} adapter: reply is empty$") as info:
        adapter.parse(SIMPLE, reply)
    assert info.value.raw == reply
    assert info.value.adapter == adapter.name


# --------------------------------------------------------------------------- parse: json


@pytest.mark.parametrize(
    "reply",
    [
        '{"reasoning": "r", "answer": 5}',
        '```json\n{"reasoning": "r", "answer": 5}\n```',
        'Here is my answer:\n{"reasoning": "r", "answer": 5}\nHope that helps!',
        '{"Reasoning": " r ", "ANSWER": "5", "confidence": 0.9}',
        '{"reasoning": "r", "answer": " 5 "}',
        'Using {a, b}:\n{"reasoning": "r", "answer": 5}\n(see {note})',
    ],
)
def test_json_parse_is_forgiving(reply: str) -> None:
    assert get_adapter("json").parse(TYPED, reply) == {"reasoning": "r", "answer": 5}


def test_json_parse_prefers_exact_keys_and_accepts_numbers_for_str() -> None:
    sig = Signature("q -> answer, note")
    reply = '{"ANSWER": "upper", "answer": 42, "note": 2.5}'
    assert get_adapter("json").parse(sig, reply) == {"answer": "42", "note": "2.5"}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("no json here", "json adapter: the reply contains no JSON object"),
        ("} backwards {", "json adapter: the reply contains no JSON object"),
        ('{"reasoning": "r", "answer": 5', "json adapter: the reply contains no JSON object"),
        ('{"reasoning": "r", answer: 5}', "json adapter: the reply's JSON object does not parse"),
        ('{"reasoning": "r"}',
         'json adapter: the reply has no field `answer` (int); expected a "answer" key'),
        ('{"reasoning": "r", "answer": null}',
         "json adapter: field `answer` should be int (expected an integer), got 'null'"),
        ('{"reasoning": "r", "answer": 5.5}',
         "json adapter: field `answer` should be int (expected an integer), got '5.5'"),
        ('{"reasoning": "r", "answer": "five"}',
         "json adapter: field `answer` should be int (expected an integer), got 'five'"),
        ('{"reasoning": ["r"], "answer": 5}',
         "json adapter: field `reasoning` should be str (expected a string), got '[\"r\"]'"),
        ('{"reasoning": true, "answer": 5}',
         "json adapter: field `reasoning` should be str (expected a string), got 'true'"),
    ],
)
def test_json_parse_errors(reply: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        get_adapter("json").parse(TYPED, reply)
    assert str(info.value).startswith(message)
    assert info.value.raw == reply
    assert info.value.adapter == "json"


def test_json_parse_types_inside_the_object() -> None:
    sig = Signature("q -> ok: bool, tags: list[str], label: Literal['pos', 'neg'], "
                    "score: float, table: dict[int, bool]")
    reply = ('{"ok": "yes", "tags": ["a"], "label": " POS ", "score": 1, '
             '"table": {"1": true, "2": "no"}}')
    assert get_adapter("json").parse(sig, reply) == {
        "ok": True, "tags": ["a"], "label": "pos", "score": 1.0,
        "table": {1: True, 2: False}}


# --------------------------------------------------------------------------- parse: markdown


def test_markdown_parse_is_forgiving() -> None:
    reply = ("Let me answer.\n\n## Reasoning:\nStep one.\n\n## Notes\nnot a field, kept\n"
             "### sub heading\n##no space is not a heading\n"
             "## question\necho\n## ANSWER\n 5 \n")
    assert get_adapter("markdown").parse(TYPED, reply) == {
        "reasoning": ("Step one.\n\n## Notes\nnot a field, kept\n### sub heading\n"
                      "##no space is not a heading"),
        "answer": 5,
    }


def test_markdown_missing_heading() -> None:
    reply = "## reasoning\nr\n\nanswer: 5"
    with pytest.raises(ParseError) as info:
        get_adapter("markdown").parse(TYPED, reply)
    assert str(info.value) == ("markdown adapter: the reply has no field `answer` (int); "
                               "expected a `## answer` heading")
    assert info.value.raw == reply


def test_headings_must_start_the_line() -> None:
    with pytest.raises(ParseError, match="no field `answer`"):
        get_adapter("markdown").parse(SIMPLE, "text ## answer\nx")


# --------------------------------------------------------------------------- caching


@pytest.mark.parametrize("adapter", every_adapter(), ids=ADAPTER_NAMES)
def test_cached_pieces_follow_the_signature(adapter: Adapter) -> None:
    first = adapter.format_prefix(Signature("question -> answer"))[0]["content"]
    other = adapter.format_prefix(Signature("question -> answer: int"))[0]["content"]
    described = adapter.format_prefix(
        Signature("question -> answer", descriptions={"answer": "d"}))[0]["content"]
    assert len({first, other, described}) == 3
    assert adapter.format_prefix(Signature("question -> answer"))[0]["content"] == first
