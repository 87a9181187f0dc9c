"""Property tests: no text makes the spec parser raise, and specs round-trip through text.

``parse_spec`` has a last-resort guard that turns an analyser bug into an
``internal-error`` diagnostic; these tests call the unguarded parser
(``parse_strict``) so such a bug fails them instead of hiding.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspex_lab.variables import Spec, parse_spec
from dspex_lab.variables._spec_parse import TOP_KEYS, parse_strict
from dspex_lab.variables._spec_vars import VARIABLE_KEYS
from dspex_lab.variables._variable import (
    Categorical,
    Demos,
    Float,
    Int,
    Variable,
)

SEED = """\
name: qa
signature: "question -> answer: int"
model: sim/small
dataset: {name: sim-math, size: 20}
variables:
  module: {choices: [predict, cot, pot]}
  adapter: [chat, json]
  temperature: {range: [0.0, 1.5]}
  demos: {k: [0, 4]}
  t: {range: [1, 5], when: module == "pot"}
constraints:
  - module == "pot" -> adapter == "chat"
objectives: {accuracy: max, cost: min}
weights: {accuracy: 0.7, cost: 0.3}
budget: {dollars: 1.0, trials: 20}
strategy: auto
"""

# DSPEX_FUZZ_EXAMPLES=5000 for a long local run
_N = int(os.environ.get("DSPEX_FUZZ_EXAMPLES", "300"))
FAST = settings(max_examples=_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(text: Any) -> Spec:
    spec = parse_strict(text)
    assert isinstance(spec, Spec)
    n_lines = len(text.splitlines()) + 1 if isinstance(text, str) else 1
    for d in spec.diagnostics:
        assert d.kind != "internal-error"
        assert 1 <= d.line <= max(n_lines, 1) + 1 and d.column >= 1
        assert d.severity in ("error", "warning", "info")
        assert d.render()
    if spec.ok:
        assert parse_strict(spec.to_text()) == spec
    return spec


@FAST
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check(text)


@FAST
@given(st.lists(st.sampled_from([*":-[]{},'\"#&*!|>?%@`\n\t ab1.", "->", "a: ", "- ",
                                  "signature: ", "variables:\n  "]), max_size=40))
def test_yaml_punctuation_soup_never_raises(pieces: list[str]) -> None:
    _check("".join(pieces))


@FAST
@given(st.data())
def test_mutated_specs_never_raise(data: st.DataObject) -> None:
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 12)))
        insert = data.draw(st.text(alphabet="abc01:-[]{},'\" \n.>=<!&|()", max_size=8))
        text = text[:i] + insert + text[j:]
    _check(text)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**15),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                     st.sampled_from(["sim/small", "predict", "cot", "pot", "chat", "json",
                                      "sim-math", "module == 'pot'", "question -> answer",
                                      "a -> b", "max", "min", "grid", "tpe", "subset"]))
_keys = st.one_of(st.sampled_from(list(TOP_KEYS) + list(VARIABLE_KEYS)
                                  + ["temperature", "module", "adapter", "model", "demos",
                                     "gen.temperature", "accuracy", "cost", "dollars",
                                     "trials", "name", "size"]),
                  st.text(min_size=1, max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)


@FAST
@given(st.dictionaries(_keys, _values, max_size=8))
def test_structured_nonsense_never_raises(doc: dict[str, Any]) -> None:
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    _check(text)


@FAST
@given(st.dictionaries(st.sampled_from(list(VARIABLE_KEYS)), _values, max_size=5),
       st.sampled_from(["temperature", "module", "adapter", "model", "demos", "max_tokens",
                        "instructions", "x", "gen.temperature"]))
def test_variable_bodies_never_raise(body: dict[str, Any], name: str) -> None:
    doc = {"name": "v", "signature": "question -> answer", "variables": {name: body},
           "constraints": [f"{name.replace('gen.', '')} != 1"]}
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    _check(text)


def test_the_guard_turns_a_crash_into_a_diagnostic(monkeypatch: Any) -> None:
    from dspex_lab.variables import _spec_parse

    def boom(text: Any) -> Spec:
        raise RuntimeError("bug")

    monkeypatch.setattr(_spec_parse, "parse_strict", boom)
    spec = parse_spec("name: x\n")
    assert [d.kind for d in spec.diagnostics] == ["internal-error"] and not spec.ok


_names = st.sampled_from(["alpha", "beta", "gamma", "delta"])
_choice = st.one_of(st.text(alphabet="abcxyz -/:'\"#", min_size=1, max_size=6),
                    st.integers(-50, 50), st.booleans(), st.none(),
                    st.floats(-10, 10, allow_nan=False))


@st.composite
def _variable(draw: st.DrawFn, name: str) -> Variable:
    kind = "demos" if name == "demos" else draw(st.sampled_from(["cat", "float", "int"]))
    if kind == "cat":
        choices = draw(st.lists(_choice, min_size=1, max_size=4, unique_by=repr))
        uniq: list[Any] = []
        for c in choices:
            if not any((type(c) is type(u) and c == u) or (
                    isinstance(c, int | float) and not isinstance(c, bool)
                    and isinstance(u, int | float) and not isinstance(u, bool) and c == u)
                    for u in uniq):
                uniq.append(c)
        return Categorical(name, uniq)
    if kind == "float":
        low = draw(st.floats(0.001, 100, allow_nan=False))
        high = draw(st.floats(low, 1000, allow_nan=False))
        return Float(name, low, high, log=draw(st.booleans()))
    if kind == "int":
        low = draw(st.integers(-100, 100))
        return Int(name, low, draw(st.integers(low, 200)), step=draw(st.integers(1, 5)))
    k_low = draw(st.integers(0, 3))
    return Demos((k_low, draw(st.integers(k_low, 6))),
                 select=draw(st.sampled_from(["first", "subset"])))


@settings(max_examples=max(150, _N // 2), deadline=None)
@given(st.data())
def test_python_specs_round_trip(data: st.DataObject) -> None:
    names = data.draw(st.lists(_names, max_size=3, unique=True))
    variables = [data.draw(_variable(n)) for n in names]
    if data.draw(st.booleans()):
        variables.append(data.draw(_variable("demos")))
    spec = Spec.from_python(
        "question -> answer", name=data.draw(st.one_of(st.none(), st.text(max_size=10))),
        instructions=data.draw(st.one_of(st.none(), st.text(min_size=1, max_size=30).filter(
            str.strip))),
        variables=variables,
        budget={"trials": data.draw(st.integers(1, 500))},
        strategy=data.draw(st.sampled_from(["auto", "random", "tpe"])))
    again = parse_spec(spec.to_text())
    assert again == spec, (spec.to_text(), again.render_diagnostics())
