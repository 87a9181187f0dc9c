"""Constraint expressions: tokenizer, parser (with columns), evaluator, static helpers."""

from __future__ import annotations

import pickle

import pytest

from dspex_lab.variables import Constraint, ConstraintError


@pytest.mark.parametrize(("text", "env", "expected"), [
    ('module == "cot"', {"module": "cot"}, True),
    ('module == "cot"', {"module": "pot"}, False),
    ("module != 'pot'", {"module": "cot"}, True),
    ('module in ["predict", "cot"]', {"module": "cot"}, True),
    ('module in ["predict", "cot"]', {"module": "pot"}, False),
    ('module not in ["predict", "cot"]', {"module": "pot"}, True),
    ("temperature < 0.5", {"temperature": 0.2}, True),
    ("temperature <= 0.5", {"temperature": 0.5}, True),
    ("temperature > 0.5", {"temperature": 0.5}, False),
    ("temperature >= -1", {"temperature": 0}, True),
    ("0.2 < temperature <= 1", {"temperature": 1.0}, True),
    ("0.2 < temperature <= 1", {"temperature": 0.1}, False),
    ("k == 3", {"k": 3.0}, True),
    ("flag", {"flag": True}, True),
    ("not flag", {"flag": False}, True),
    ("flag == true", {"flag": 1}, False),  # booleans never equal numbers
    ("x == null", {}, True),  # a name without a value is null
    ("x < 3", {}, False),  # ordering with null is false
    ('x < "b"', {"x": "a"}, True),
    ('x < "b"', {"x": 1}, False),  # a number and a string never order
    ("a and b or c", {"a": True, "b": False, "c": True}, True),
    ("a and (b or c)", {"a": False, "b": True, "c": True}, False),
    ("not a and b", {"a": False, "b": True}, True),
    ("a -> b", {"a": False, "b": False}, True),
    ("a -> b", {"a": True, "b": False}, False),
    ("a -> b -> c", {"a": True, "b": True, "c": False}, False),  # right-associative
    ("a -> b -> c", {"a": True, "b": False, "c": False}, True),
    ('provider == "groq" -> module in ["predict", "cot"]',
     {"provider": "groq", "module": "pot"}, False),
    ('provider == "groq" -> module in ["predict", "cot"]',
     {"provider": "openai", "module": "pot"}, True),
    ("gen.temperature > 0.5", {"gen.temperature": 0.7}, True),
    ("steps[0].module == 'cot'", {"steps[0].module": "cot"}, True),
    ("x in [1, 2.5, true, null, 'a']", {"x": 2.5}, True),
    ("x in []", {"x": 1}, False),
    ("x == 1e3", {"x": 1000}, True),
    ("x == -2", {"x": -2}, True),
    ("True and not False and None == null", {}, True),
    ('s == "a\\"b"', {"s": 'a"b'}, True),
])
def test_evaluates(text: str, env: dict[str, object], expected: bool) -> None:
    assert Constraint(text).evaluate(env) is expected


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("", 0, "empty expression"),
    ("module = 'cot'", 7, "use '=='"),
    ("a && b", 2, "use 'and'"),
    ("a || b", 2, "use 'or'"),
    ("a => b", 2, "use '->'"),
    ("!a", 0, "use 'not'"),
    ("a == 'x", 5, "unterminated string"),
    ("(a == 1", 7, "expected ')'"),
    ("a == ", 5, "expected a variable name"),
    ("a in b", 5, "expected a list"),
    ("a in [b]", 6, "a list holds values"),
    ("a in [1 2]", 8, "expected ',' or ']'"),
    ("a == 1 b", 7, "unexpected 'b'"),
    ("a == 1.2.3", 5, "malformed number"),
    ("a == - b", 7, "expected a number after '-'"),
    ("a @ b", 2, "unexpected character '@'"),
    ("and a", 0, "expected a variable name"),
])
def test_syntax_errors_carry_a_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConstraintError) as info:
        Constraint(text)
    assert info.value.column == column
    assert fragment in info.value.reason
    lines = str(info.value).splitlines()
    assert lines[-1].index("^") == column + 2  # the caret sits under the column


def test_names_and_comparisons() -> None:
    c = Constraint('model == "sim/small" -> module not in ["pot", "cot"] and t < 0.5')
    assert c.names == {"model", "module", "t"}
    found = [(n.name, op, lit.value, lit.pos) for n, op, lit in c.comparisons()]
    assert ("model", "==", "sim/small", 9) in found
    assert ("module", "not in", "pot", 39) in found
    assert ("module", "not in", "cot", 46) in found
    assert ("t", "<", 0.5, 61) in found
    assert c.literals_for("t") == [0.5]
    assert [n.pos for n in c.name_nodes() if n.name == "module"] == [24]


def test_equality_hash_pickle_and_repr() -> None:
    a, b = Constraint("x == 1"), Constraint("x == 1")
    assert a == b and hash(a) == hash(b) and a != Constraint("x == 2")
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(a)).evaluate({"x": 1})
    assert repr(a) == "Constraint('x == 1')" and str(a) == "x == 1"
    assert a({"x": 1})  # callable


def test_never_evaluates_python() -> None:
    # names that look like Python are only names, never executed
    c = Constraint("__import__ == 'os'")
    assert c.evaluate({}) is False
    with pytest.raises(ConstraintError):
        Constraint("__import__('os').system('true')")


def test_not_text_is_a_configuration_error() -> None:
    from dspex_lab.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Constraint(42)  # type: ignore[arg-type]
