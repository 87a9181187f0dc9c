"""The spec builder: whatever the form holds, its text is a spec without errors.

A property test fills the form with random states (valid and invalid models,
temperatures, instructions with YAML punctuation, constraints that do not parse
or name unknown variables or contradict each other, budgets too small, grids over
continuous ranges) and checks that ``spec_text`` parses with ``spec.ok``, that
``spec()`` is that parse, and that nothing the user did not type appears.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dspex_lab as dx
from dspex_lab.jupyter.builder import FIELDS, SpaceBuilder
from dspex_lab.variables import STRATEGIES

_N = int(os.environ.get("DSPEX_FUZZ_EXAMPLES", "60"))
FORMS = settings(max_examples=_N, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MODELS = ["sim/tiny", "sim/small", "sim/medium", "sim/large", "openai/gpt-4o-mini", "nope",
          "/bad", "bad/", "local/smollm2", "x/y z"]
CONSTRAINTS = [
    'model == "sim/tiny" -> module == "cot"', 'module != "pot"', "temperature <= 1.0",
    "demos <= 2", 'adapter == "json" -> model != "sim/tiny"', 'provider == "sim"',
    'model = "sim/tiny"', "foo == 1", 'module == "cott"', "temperature == \"hot\"",
    'module == "predict"', 'module == "cot"', "not (", "demos > 100", "", "# a comment",
    'instructions != "x"', "0.2 <= temperature <= 1.5 or module == \"predict\"",
]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
               max_size=30)


def _temperature_pair() -> st.SearchStrategy[tuple[float, float]]:
    value = st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0, 1.5, 2.0])
    return st.tuples(value, value).map(lambda p: (min(p), max(p)))


FORM = st.fixed_dictionaries({
    "signature": st.sampled_from(["question -> answer", "question, context -> answer: int",
                                  "q -> ", "->", "question -> answer: list[", ""]),
    "name": st.one_of(st.just(""), TEXT),
    "models": st.lists(st.sampled_from(MODELS), max_size=4),
    "modules": st.lists(st.sampled_from(["predict", "cot", "pot"]), max_size=3, unique=True),
    "adapters": st.lists(st.sampled_from(["chat", "json", "markdown"]), max_size=3,
                         unique=True),
    "temperature": st.sampled_from(["default", "range", "choices"]),
    "temperature_range": _temperature_pair(),
    "temperature_choices": st.one_of(
        st.lists(st.sampled_from(["0", "0.5", "0.7", "2", "2.5", "-1", "hot", " "]),
                 max_size=4).map(", ".join), TEXT),
    "demos": st.booleans(),
    "demos_k": st.tuples(st.integers(0, 8), st.integers(0, 8)).map(
        lambda p: (min(p), max(p))),
    "demos_select": st.sampled_from(["first", "subset"]),
    "instructions": st.lists(st.one_of(
        st.sampled_from(["Be brief.", "Think: then answer.", "# not a comment", "- dash",
                         "'quoted'", '"dq"', "Answer with one word.", "a: b: c"]), TEXT),
        max_size=4).map("\n".join),
    "constraints": st.lists(st.one_of(st.sampled_from(CONSTRAINTS), TEXT), max_size=5).map(
        "\n".join),
    "dataset": st.sampled_from(["", "sim-math", "sim-lookup"]),
    "dataset_size": st.sampled_from([0, 5, 20, 500]),
    "dollars": st.sampled_from([0.0, 1e-7, 0.01, 2.0]),
    "trials": st.sampled_from([0, 1, 4, 40]),
    "minutes": st.sampled_from([0.0, 0.001, 5.0]),
    "strategy": st.sampled_from(list(STRATEGIES)),
})


@pytest.fixture(scope="module")
def builder() -> SpaceBuilder:
    return SpaceBuilder()


@FORMS
@given(form=FORM)
def test_any_form_state_writes_a_spec_without_errors(builder: SpaceBuilder,
                                                     form: dict[str, Any]) -> None:
    builder.set(**form)
    assert builder.state() == {k: (list(v) if isinstance(v, list) else v)
                               for k, v in form.items()}
    spec = dx.parse_spec(builder.spec_text)
    assert spec.ok, (builder.spec_text, spec.render_diagnostics())
    assert builder.spec() == spec
    assert dx.parse_spec(spec.to_text()) == spec
    # nothing invented: constraints and instructions are lines the user typed
    typed = [line.strip() for line in form["constraints"].splitlines()]
    assert all(c in typed for c in spec.constraints)
    lines = [line.strip() for line in form["instructions"].splitlines()]
    if spec.instructions is not None:
        assert spec.instructions in lines
    if "instructions" in spec.variables:
        assert set(spec.variables["instructions"].choices) <= set(lines)  # type: ignore[attr-defined]
    models = spec.variables["model"].choices if "model" in spec.variables else (  # type: ignore[attr-defined]
        [spec.model] if spec.model else [])
    assert set(models) <= set(form["models"])
    assert set(builder.errors) <= set(FIELDS)
    # the inline messages are the errors, each by its own field
    for field, widget in builder.messages.items():
        assert bool(widget.value) == bool(builder.errors.get(field))
    assert builder.output.value == builder.spec_text


def test_a_bad_constraint_is_shown_by_its_field_and_left_out() -> None:
    b = SpaceBuilder(models=["sim/tiny", "sim/small"], modules=["predict", "cot"])
    before = b.rebuilds
    b.inputs["constraints"].value = 'model = "sim/tiny"\nmodel == "sim/tiny" -> module == "cot"'
    assert b.rebuilds == before + 1  # the widget's own change rebuilds
    assert "use '==' to compare" in b.errors["constraints"][0]
    assert "line 1" in b.errors["constraints"][0]
    shown = b.messages["constraints"].value
    assert "color:#b00020" in shown and "use &#x27;==&#x27; to compare" in shown
    assert b.spec().constraints == ['model == "sim/tiny" -> module == "cot"']
    assert 'model = "sim/tiny"' not in b.spec_text
    # the parser's own checks: an unknown variable, a value a variable never takes
    b.set(constraints='temprature < 1\nmodule == "cott"\nmodule == "cot" -> model == "sim/small"')
    problems = b.errors["constraints"]
    assert "line 1" in problems[0] and "'temprature' is no declared variable" in problems[0]
    assert "line 2" in problems[1] and "'cott'" in problems[1]
    assert b.spec().constraints == ['module == "cot" -> model == "sim/small"']
    # contradictory constraints: the one the parser names goes, the other stays
    b.set(constraints='module == "predict"\nmodule == "cot"')
    assert b.spec().constraints == ['module == "predict"']
    assert "no configuration satisfies" in b.errors["constraints"][0]
    b.set(constraints="")
    assert "constraints" not in b.errors and not b.messages["constraints"].value


def test_bad_items_are_left_out_each_by_its_field() -> None:
    b = SpaceBuilder(models=["sim/tiny", "nope", "sim/large"], temperature="choices",
                     temperature_choices="0.2, 3, hot, 0.9", signature="question -> ")
    assert b.spec().variables["model"].choices == ("sim/tiny", "sim/large")  # type: ignore[attr-defined]
    assert "'nope'" in b.errors["models"][0]
    assert b.spec().variables["temperature"].choices == (0.2, 0.9)  # type: ignore[attr-defined]
    assert len(b.errors["temperature_choices"]) == 2
    assert b.spec().signature == "question -> answer" and "signature" in b.errors
    b.set(signature="question, context -> answer: int")
    assert b.spec().signature == "question, context -> answer: int"
    assert "signature" not in b.errors


def test_cross_field_errors_fall_back_where_they_belong() -> None:
    b = SpaceBuilder(models=["sim/tiny", "sim/large"], dataset="sim-math", dataset_size=20,
                     dollars=1e-7, trials=10, temperature="range",
                     temperature_range=(0.1, 0.9), strategy="grid")
    spec = b.spec()
    assert spec.ok and spec.budget.dollars is None and spec.budget.trials == 10
    assert "budget" in " ".join(b.errors["dollars"]) or "$" in " ".join(b.errors["dollars"])
    assert spec.strategy == "auto" and "continuous" in " ".join(b.errors["strategy"])
    b.set(dataset_size=500)
    assert b.spec().dataset == dx.variables.DatasetRef("sim-math")
    assert "dataset_size" in b.errors


def test_state_round_trips_and_unknown_fields_are_refused() -> None:
    b = SpaceBuilder()
    state = b.state()
    assert set(state) == set(FIELDS)
    b.set(**{**state, "models": ["sim/tiny", "sim/small"], "demos": True})
    assert b.state()["models"] == ["sim/tiny", "sim/small"] and b.state()["demos"]
    assert "demos: {k: [0, 4]}" in b.spec_text
    with pytest.raises(dx.ConfigurationError, match="unknown SpaceBuilder fields"):
        b.set(modles=["sim/tiny"])


def test_the_built_spec_runs(tmp_path: Path, sim_url: str) -> None:
    dx.configure(store=tmp_path / "x.duckdb")
    b = SpaceBuilder(models=["sim/tiny", "sim/small"], modules=["predict", "cot"],
                     constraints='model == "sim/tiny" -> module == "cot"',
                     dataset="sim-math", dataset_size=10, trials=3, dollars=1.0)
    run = dx.optimize(b.spec()).wait(60)
    assert run.state == "finished" and len(run.trial_list()) == 3
    assert all(not (t.params["model"] == "sim/tiny" and t.params["module"] != "cot")
               for t in run.trial_list())
