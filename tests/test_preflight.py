"""Pre-flight analysis: estimates against real runs on the simulator, strategy, budget."""

from __future__ import annotations

import pytest

import dspex_lab as dx
from dspex_lab.variables import (
    Analysis,
    BudgetExceededError,
    choose_strategy,
    model_info,
    parse_spec,
)

N = 40  # examples per evaluation


def _fixed_spec(module: str, adapter: str, model: str, demos: int = 0) -> str:
    variables = f"variables:\n  demos: {{k: {demos}}}\n" if demos else ""
    return (f"name: fixed\nsignature: 'question -> answer: int'\nmodel: {model}\n"
            f"module: {module}\nadapter: {adapter}\ndataset: {{name: sim-math, size: {N}}}\n"
            f"{variables}budget: {{trials: 1}}\n")


@pytest.mark.parametrize(("module", "adapter", "model", "demos"), [
    ("predict", "chat", "sim/small", 0),
    ("predict", "json", "sim/medium", 0),
    ("predict", "markdown", "sim/small", 3),
    ("cot", "chat", "sim/small", 2),
    ("cot", "json", "sim/large", 0),
    ("pot", "chat", "sim/medium", 0),
])
def test_dollar_estimate_within_25_percent_of_a_real_run(sim_url: str, module: str,
                                                          adapter: str, model: str,
                                                          demos: int) -> None:
    spec = parse_spec(_fixed_spec(module, adapter, model, demos))
    assert spec.ok, spec.render_diagnostics()
    analysis = spec.analyze()
    est = analysis.estimate
    assert est is not None and est.trials == 1 and est.dataset_size == N
    assert est.dollars is not None
    program, space = spec.build()
    assignment = space.default()
    if demos:
        assignment = {"demos": tuple(range(demos))}
    data = spec.dataset_object()
    assert data is not None
    result = dx.evaluate(program.with_config(space.to_config(assignment)), data.val[:N],
                         "exact_match")
    assert result.cost is not None and result.cost > 0
    assert abs(est.dollars / result.cost - 1) <= 0.25, (est.dollars, result.cost)
    assert abs(est.calls / result.lm_calls - 1) <= 0.25


def test_grid_run_total_within_25_percent(sim_url: str) -> None:
    spec = parse_spec("""\
name: grid
signature: "question -> answer: int"
model: sim/small
dataset: {name: sim-math, size: 30}
variables:
  module: [predict, cot, pot]
  adapter: [chat, json]
  model: [sim/small, sim/medium]
  demos: {k: [0, 2]}
constraints:
  - module == "pot" -> (demos == 0 and adapter == "chat")
  - model == "sim/medium" -> module != "pot"
  - demos == 1 or module == "pot"
budget: {trials: 50}
strategy: grid
""")
    assert spec.ok, spec.render_diagnostics()
    analysis = spec.analyze()
    est = analysis.estimate
    assert est is not None and est.configs_exhaustive
    program, space = spec.build()
    grid = list(space.grid())
    assert est.trials == len(grid) == analysis.space_size == 9
    data = spec.dataset_object()
    assert data is not None
    spent = 0.0
    calls = 0
    for assignment in grid:
        result = dx.evaluate(program.with_config(space.to_config(assignment)), data.val[:30],
                             "exact_match")
        assert result.cost is not None
        spent += result.cost
        calls += result.lm_calls
    assert est.dollars is not None
    assert abs(est.dollars / spent - 1) <= 0.25, (est.dollars, spent)
    assert abs(est.calls / calls - 1) <= 0.25


ISSUE_SPEC = """\
name: qa
signature: question -> answer
instructions: Answer with one word.
model: sim/small
variables:
  adapter: {choices: [chat, json, markdown]}
  module: {choices: [predict, cot, pot]}
  model: {choices: [sim/small, sim/large]}
  temperature: {range: [0.0, 1.5]}
  demos: {k: [0, 8]}
  pot_timeout: {range: [1, 10], when: module == "pot"}
constraints:
  - model == "sim/small" -> module != "pot"
objectives: {accuracy: max, cost: min, latency: min}
weights: {accuracy: 0.5, cost: 0.3, latency: 0.2}
budget: {dollars: 2.0, trials: 40}
strategy: auto
"""


def test_analysis_reports_everything() -> None:
    spec = parse_spec(ISSUE_SPEC)
    analysis = spec.analyze(dataset_size=50)
    assert isinstance(analysis, Analysis)
    assert analysis.space_size is None and analysis.raw_size is None  # temperature: continuous
    assert analysis.dependencies == {"pot_timeout": ["module"]}
    assert analysis.couplings == [('model == "sim/small" -> module != "pot"',
                                   ["model", "module"])]
    caps = {c["model"]: c for c in analysis.capabilities}
    assert caps["sim/small"]["json_mode"] is False and caps["sim/large"]["json_mode"] is True
    assert caps["sim/large"]["context_window"] == 128_000
    assert caps["sim/small"]["input_per_million"] == pytest.approx(0.15)
    assert caps["sim/small"]["fits_context"] is True
    assert analysis.strategy.name == "tpe" and "6 variables (> 5)" in analysis.strategy.reason
    est = analysis.estimate
    assert est is not None and est.trials == 40 and est.dataset_size == 50
    assert est.calls > 40 * 50 and est.tokens > est.calls * 50
    assert est.dollars is not None and est.wall_time_s > 0
    assert est.trial_dollars is not None
    lo, mean, hi = est.trial_dollars
    assert lo <= mean <= hi and est.dollars == pytest.approx(mean * 40)
    assert analysis.dataset_size_source == "dataset_size argument"
    assert analysis.trials_source == "budget.trials"
    text = analysis.text()
    for fragment in ("space: 6 variables", "pot_timeout is active depending on module",
                     "sim/large: $3/M in", "strategy: tpe", "LM calls", "dollars $",
                     "budget: dollars 2.0"):
        assert fragment in text, text
    assert str(analysis) == text
    html = analysis._repr_html_()
    assert "<table>" in html and "tpe" in html and "sim/large" in html


def test_budget_refuses_unless_forced() -> None:
    spec = parse_spec(ISSUE_SPEC)
    cheap = spec.analyze(dataset_size=5, trials=10)
    assert not cheap.exceeds_budget
    cheap.check_budget()  # nothing to refuse
    dear = spec.analyze(dataset_size=200, trials=400)
    assert dear.exceeds_budget and dear.budget_problems
    with pytest.raises(BudgetExceededError) as info:
        dear.check_budget()
    assert info.value.analysis is dear and "force=True" in str(info.value)
    assert isinstance(info.value, dx.DspexError)
    dear.check_budget(force=True)
    assert "EXCEEDED" in dear.text() and "budget exceeded" in dear._repr_html_()


def test_minutes_budget() -> None:
    spec = parse_spec("name: m\nsignature: q -> a\nmodel: sim/small\nvariables:\n"
                      "  temperature: {range: [0.0, 1.0]}\nbudget: {minutes: 0.01}\n")
    analysis = spec.analyze(dataset_size=100, trials=50)
    assert analysis.exceeds_budget and "min" in analysis.budget_problems[0]


def test_unknown_models_have_unknown_cost_and_no_warning() -> None:
    spec = parse_spec("name: u\nsignature: q -> a\nmodel: acme/brain-9000\n")
    assert [d.kind for d in spec.diagnostics] == ["unknown-model"]
    analysis = spec.analyze(trials=3)  # warnings are errors in this suite
    assert analysis.estimate is not None and analysis.estimate.dollars is None
    assert analysis.capabilities[0]["known"] is False
    assert not analysis.exceeds_budget
    assert "unknown" in analysis.text()


def test_price_map_models() -> None:
    info = model_info("openai/gpt-4o-mini")
    assert info.known and info.source == "price map" and info.context_window
    assert info.input_per_million is not None and info.input_per_million > 0
    assert not model_info("openai/no-such-model").known


def test_grid_small_spaces_and_estimate_scales() -> None:
    spec = parse_spec("name: g\nsignature: q -> a\nmodel: sim/small\nvariables:\n"
                      "  module: [predict, cot]\n  adapter: [chat, json]\n")
    a = spec.analyze(dataset_size=10)
    assert a.space_size == 4 and a.strategy.name == "grid"
    assert a.estimate is not None and a.estimate.trials == 4  # the grid is exhausted
    assert a.estimate.configs_exhaustive
    b = spec.analyze(dataset_size=20)
    assert b.estimate is not None and a.estimate.dollars is not None
    assert b.estimate.dollars == pytest.approx(2 * a.estimate.dollars)
    assert "no dataset" in " ".join(a.notes)


def test_cot_and_demos_cost_more() -> None:
    def dollars(extra: str) -> float:
        spec = parse_spec("name: c\nsignature: question -> answer\nmodel: sim/small\n"
                          f"dataset: sim-math\n{extra}")
        est = spec.analyze(dataset_size=10, trials=1).estimate
        assert est is not None and est.dollars is not None
        return est.dollars

    base = dollars("")
    assert dollars("module: cot\n") > base
    assert dollars("variables:\n  demos: {k: 4}\n") > base * 1.5


@pytest.mark.parametrize(("kwargs", "name", "rule"), [
    ({"discrete": True, "size": 12, "trials": 40}, "grid", "small-discrete"),
    ({"discrete": True, "size": 60, "trials": 100}, "tpe", "default"),
    ({"discrete": True, "size": 12, "trials": 5}, "random", "few-trials"),
    ({"discrete": False, "size": None, "trials": 30, "n_variables": 7}, "tpe",
     "many-variables"),
    ({"discrete": False, "size": None, "trials": 30, "conditional": True}, "tpe",
     "many-variables"),
    ({"discrete": False, "size": None, "trials": 200, "weighted": False}, "nsga2", "pareto"),
    ({"discrete": False, "size": None, "trials": 50, "n_numeric": 2}, "gp", "few-numeric"),
])
def test_strategy_rules(kwargs: dict[str, object], name: str, rule: str) -> None:
    args: dict[str, object] = {"n_variables": 2, "n_objectives": 3, "weighted": True,
                               "conditional": False, "n_numeric": 0}
    args.update(kwargs)
    choice = choose_strategy(**args)  # type: ignore[arg-type]
    assert (choice.name, choice.rule) == (name, rule)
    assert choice.reason


def test_explicit_strategy_notes_mismatches() -> None:
    choice = choose_strategy(requested="grid", n_variables=2, discrete=True, size=100,
                             trials=10, n_objectives=1, weighted=False, conditional=False,
                             n_numeric=0)
    assert choice.name == "grid" and choice.rule == "requested"
    assert "will not finish" in choice.reason
