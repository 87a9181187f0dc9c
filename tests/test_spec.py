"""The spec language: malformed specs (line, column, kind), round trips, the Python API, build."""

from __future__ import annotations

from pathlib import Path

import pytest

import dspex_lab as dx
from dspex_lab.errors import ConfigurationError
from dspex_lab.variables import (
    KINDS,
    Budget,
    Categorical,
    DatasetRef,
    Diagnostic,
    Float,
    Int,
    Space,
    Spec,
    SpecError,
    adapter,
    demos,
    instructions,
    load_spec,
    max_tokens,
    model,
    module,
    parse_spec,
    temperature,
)

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
constraints:
  - model == "sim/small" -> module != "pot"
objectives: {accuracy: max, cost: min, latency: min}
weights: {accuracy: 0.5, cost: 0.3, latency: 0.2}
budget: {dollars: 2.0, trials: 40}
strategy: auto
"""

H = "name: qa\nsignature: question -> answer\nmodel: sim/small\n"  # three lines
V = H + "variables:\n"  # four lines: variables start on line 5

# (id, text, line, column, kind, severity): the diagnostic each malformed spec must carry.
MALFORMED = [
    ('misspelled-top-key',
     'name: qa\n'
     'variabels:\n'
     '  x: {choices: [a, b]}\n'
     'signature: q -> a\n',
     2, 1, 'unknown-key', 'error'),
    ('unknown-top-key-no-match',
     H + 'zebra: 1\n',
     4, 1, 'unknown-key', 'error'),
    ('top-key-hint',
     H + 'optimizer: tpe\n',
     4, 1, 'unknown-key', 'error'),
    ('duplicate-top-key',
     H + 'name: other\n',
     4, 1, 'duplicate-key', 'error'),
    ('duplicate-variable',
     V + ('  module: [predict, cot]\n'
           '  module: [cot]\n'),
     6, 3, 'duplicate-key', 'error'),
    ('duplicate-nested-key',
     V + '  temperature: {range: [0.0, 1.0], range: [0.1, 0.2]}\n',
     5, 36, 'duplicate-key', 'error'),
    ('missing-signature',
     'name: qa\n'
     'model: sim/small\n',
     1, 1, 'missing-key', 'error'),
    ('empty-signature',
     'name: qa\n'
     'signature:\n',
     2, 1, 'missing-key', 'error'),
    ('signature-wrong-type',
     'name: qa\n'
     'signature: [q, a]\n',
     2, 12, 'wrong-type', 'error'),
    ('signature-parse',
     'name: qa\n'
     'signature: question, -> answer\n',
     2, 22, 'signature-error', 'error'),
    ('signature-parse-quoted',
     'name: qa\n'
     "signature: 'q -> a: lis[int]'\n",
     2, 21, 'signature-error', 'error'),
    ('signature-parse-block',
     'name: qa\n'
     'signature: |\n'
     '  question -> answer\n'
     '  extra ->\n',
     4, 3, 'signature-error', 'error'),
    ('yaml-colon',
     'name: qa\n'
     'signature: question -> answer: int\n',
     2, 30, 'yaml-syntax', 'error'),
    ('yaml-unclosed-flow',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  m: {choices: [a, b}\n',
     4, 21, 'yaml-syntax', 'error'),
    ('yaml-tab',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '\tm: [a]\n',
     4, 1, 'yaml-syntax', 'error'),
    ('not-mapping',
     '- a\n'
     '- b\n',
     1, 1, 'not-mapping', 'error'),
    ('empty',
     '',
     1, 1, 'missing-key', 'error'),
    ('model-no-provider',
     'name: qa\n'
     'signature: q -> a\n'
     'model: gpt-4o\n',
     3, 8, 'bad-value', 'error'),
    ('unknown-model',
     'name: qa\n'
     'signature: q -> a\n'
     'model: openai/gpt-4o-mni\n',
     3, 8, 'unknown-model', 'warning'),
    ('unknown-model-choice',
     V + '  model: {choices: [sim/small, sim/hudge]}\n',
     5, 32, 'unknown-model', 'warning'),
    ('bad-adapter',
     'name: qa\n'
     'signature: q -> a\n'
     'adapter: jsn\n',
     3, 10, 'bad-value', 'error'),
    ('bad-module',
     'name: qa\n'
     'signature: q -> a\n'
     'module: chain\n',
     3, 9, 'bad-value', 'error'),
    ('temperature-out-of-range',
     'name: qa\n'
     'signature: q -> a\n'
     'temperature: 3\n',
     3, 14, 'bad-value', 'error'),
    ('max-tokens-not-int',
     'name: qa\n'
     'signature: q -> a\n'
     'max_tokens: many\n',
     3, 13, 'wrong-type', 'error'),
    ('name-wrong-type',
     'name: [a]\n'
     'signature: q -> a\n',
     1, 7, 'wrong-type', 'error'),
    ('unknown-dataset',
     'name: qa\n'
     'signature: q -> a\n'
     'dataset: sim-mat\n',
     3, 10, 'unknown-dataset', 'error'),
    ('dataset-size',
     'name: qa\n'
     'signature: q -> a\n'
     'dataset: {name: sim-math, size: 900}\n',
     3, 33, 'bad-value', 'error'),
    ('dataset-split',
     'name: qa\n'
     'signature: q -> a\n'
     'dataset: {name: sim-math, split: dev}\n',
     3, 34, 'bad-value', 'error'),
    ('unknown-metric',
     'name: qa\n'
     'signature: q -> a\n'
     'metric: exact\n',
     3, 9, 'unknown-metric', 'error'),
    ('low-gt-high',
     V + '  temperature: {range: [1.5, 0.2]}\n',
     5, 24, 'bad-range', 'error'),
    ('log-nonpositive',
     V + '  lr: {range: [0.0, 1.0], log: true}\n',
     5, 15, 'bad-range', 'error'),
    ('range-one-bound',
     V + '  temperature: {range: [0.5]}\n',
     5, 24, 'wrong-type', 'error'),
    ('range-text-bound',
     V + '  temperature: {range: [0.0, hot]}\n',
     5, 30, 'wrong-type', 'error'),
    ('temperature-bound',
     V + '  temperature: {range: [0.0, 2.5]}\n',
     5, 30, 'bad-value', 'error'),
    ('int-type-float-bound',
     V + '  k: {range: [1, 2.5], type: int}\n',
     5, 18, 'wrong-type', 'error'),
    ('bad-type',
     V + '  k: {range: [1, 2], type: integer}\n',
     5, 28, 'bad-value', 'error'),
    ('empty-choices',
     V + '  adapter: {choices: []}\n',
     5, 22, 'empty-choices', 'error'),
    ('duplicate-choice',
     V + '  adapter: {choices: [chat, json, chat]}\n',
     5, 35, 'duplicate-choice', 'error'),
    ('bad-adapter-choice',
     V + '  adapter: {choices: [chat, jsn]}\n',
     5, 29, 'bad-value', 'error'),
    ('choices-and-range',
     V + '  temperature: {choices: [0.1], range: [0.0, 1.0]}\n',
     5, 33, 'bad-value', 'error'),
    ('variable-unknown-key',
     V + '  temperature: {rnage: [0.0, 1.0]}\n',
     5, 17, 'unknown-key', 'error'),
    ('variable-no-domain',
     V + '  temperature: {default: 0.5}\n',
     5, 3, 'missing-key', 'error'),
    ('variable-scalar',
     V + '  temperature: 0.7\n',
     5, 16, 'wrong-type', 'error'),
    ('log-on-choices',
     V + '  module: {choices: [predict, cot], log: true}\n',
     5, 37, 'unknown-key', 'error'),
    ('bad-default-choice',
     V + '  module: {choices: [predict, cot], default: pot}\n',
     5, 46, 'bad-default', 'error'),
    ('bad-default-range',
     V + '  temperature: {range: [0.0, 1.0], default: 1.5}\n',
     5, 45, 'bad-default', 'error'),
    ('range-for-adapter',
     V + '  adapter: {range: [0, 1]}\n',
     5, 20, 'wrong-type', 'error'),
    ('target-unknown-key',
     V + '  gen.temprature: {range: [0.0, 1.0]}\n',
     5, 3, 'unknown-key', 'error'),
    ('free-variable-typo',
     V + '  temprature: {range: [0.0, 1.0]}\n',
     5, 3, 'free-variable', 'warning'),
    ('variable-provider',
     V + '  provider: [openai, groq]\n',
     5, 3, 'bad-value', 'error'),
    ('bad-variable-name',
     V + "  'two words': [a, b]\n",
     5, 3, 'bad-value', 'error'),
    ('demos-k-reversed',
     V + '  demos: {k: [8, 0], pool: 8}\n',
     5, 14, 'bad-range', 'error'),
    ('demos-bad-select',
     V + '  demos: {k: [0, 2], select: any, pool: 4}\n',
     5, 30, 'bad-value', 'error'),
    ('demos-choices',
     V + '  demos: {choices: [1, 2]}\n',
     5, 11, 'unknown-key', 'error'),
    ('demos-pool-too-big',
     'name: qa\n'
     'signature: q -> a\n'
     'dataset: sim-math\n'
     'variables:\n'
     '  demos: {k: [0, 4], pool: 400}\n',
     5, 28, 'bad-value', 'error'),
    ('constraint-syntax',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - module = "cot"\n'),
     7, 12, 'constraint-syntax', 'error'),
    ('constraint-syntax-quoted',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - \'module == "cot" &&\'\n'),
     7, 22, 'constraint-syntax', 'error'),
    ('constraint-unknown-variable',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - modul == "cot" -> adapter == "json"\n'),
     7, 5, 'unknown-variable', 'error'),
    ('constraint-unknown-value',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - module == "pot"\n'),
     7, 15, 'unknown-value', 'error'),
    ('constraint-unknown-provider',
     V + ('  model: [sim/small, sim/large]\n'
           'constraints:\n'
           '  - provider == "groq" -> module != "pot"\n'),
     7, 17, 'unknown-value', 'error'),
    ('constraint-type-mismatch',
     V + ('  temperature: {range: [0.0, 1.0]}\n'
           'constraints:\n'
           '  - temperature == "hot"\n'),
     7, 20, 'type-mismatch', 'error'),
    ('constraint-constant-value',
     'name: qa\n'
     'signature: q -> a\n'
     'constraints:\n'
     '  - adapter == "xml"\n',
     4, 16, 'unknown-value', 'error'),
    ('constraints-not-list',
     V + ('  module: [predict, cot]\n'
           'constraints: {a: b}\n'),
     6, 14, 'wrong-type', 'error'),
    ('unsatisfiable',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - module == "cot"\n'
           '  - module == "predict"\n'),
     8, 5, 'unsatisfiable', 'error'),
    ('unsatisfiable-numeric',
     V + ('  temperature: {range: [0.0, 1.0]}\n'
           'constraints:\n'
           '  - temperature > 0.8\n'
           '  - temperature < 0.2\n'),
     8, 5, 'unsatisfiable', 'error'),
    ('unsatisfiable-single',
     V + ('  module: [predict, cot]\n'
           'constraints:\n'
           '  - module == "cot" and module != "cot"\n'),
     7, 5, 'unsatisfiable', 'error'),
    ('dead-variable-when',
     V + ('  module: [predict, cot]\n'
           '  timeout: {range: [1, 5], when: \'module == "cot"\'}\n'
           'constraints:\n'
           '  - module != "cot"\n'),
     6, 3, 'dead-variable', 'warning'),
    ('dead-value',
     V + ('  module: [predict, cot, pot]\n'
           '  model: [sim/small, sim/large]\n'
           'constraints:\n'
           '  - module != "pot"\n'),
     5, 26, 'dead-value', 'warning'),
    ('redundant-constraint',
     V + ('  temperature: {range: [0.0, 1.0]}\n'
           'constraints:\n'
           '  - temperature <= 2\n'),
     7, 5, 'redundant-constraint', 'warning'),
    ('when-syntax',
     V + ('  module: [predict, pot]\n'
           '  t: {range: [1, 5], when: module ==}\n'),
     6, 37, 'constraint-syntax', 'error'),
    ('when-unknown-variable',
     V + ('  module: [predict, pot]\n'
           '  t: {range: [1, 5], when: modle == "pot"}\n'),
     6, 28, 'unknown-variable', 'error'),
    ('when-cycle',
     V + ('  a: {choices: [1, 2], when: b == 1}\n'
           '  b: {choices: [1, 2], when: a == 1}\n'),
     5, 30, 'when-cycle', 'error'),
    ('when-self',
     V + '  a: {choices: [1, 2], when: a == 1}\n',
     5, 30, 'when-cycle', 'error'),
    ('objective-direction',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {accuracy: maximize}\n',
     3, 24, 'bad-value', 'error'),
    ('unknown-objective',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {acuracy: max}\n',
     3, 14, 'unknown-objective', 'warning'),
    ('weight-not-objective',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {accuracy: max, cost: min}\n'
     'weights: {accuracy: 0.5, cost: 0.3, latency: 0.2}\n',
     4, 37, 'objective-mismatch', 'error'),
    ('objective-without-weight',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {accuracy: max, cost: min}\n'
     'weights: {accuracy: 1.0}\n',
     3, 29, 'objective-mismatch', 'error'),
    ('weights-sum',
     'name: qa\n'
     'signature: q -> a\n'
     'weights: {accuracy: 0.5, cost: 0.6}\n',
     3, 1, 'bad-weights', 'warning'),
    ('weights-negative',
     'name: qa\n'
     'signature: q -> a\n'
     'weights: {accuracy: -1}\n',
     3, 21, 'bad-value', 'error'),
    ('budget-negative',
     'name: qa\n'
     'signature: q -> a\n'
     'budget: {dollars: -1}\n',
     3, 19, 'bad-value', 'error'),
    ('budget-unknown-key',
     'name: qa\n'
     'signature: q -> a\n'
     'budget: {dolars: 1}\n',
     3, 10, 'unknown-key', 'error'),
    ('budget-trials-float',
     'name: qa\n'
     'signature: q -> a\n'
     'budget: {trials: 2.5}\n',
     3, 18, 'wrong-type', 'error'),
    ('budget-scalar',
     'name: qa\n'
     'signature: q -> a\n'
     'budget: 2.0\n',
     3, 9, 'wrong-type', 'error'),
    ('budget-too-small',
     'name: qa\n'
     'signature: question -> answer\n'
     'model: sim/large\n'
     'dataset: sim-math\n'
     'budget: {dollars: 0.01, trials: 5}\n',
     5, 19, 'budget-too-small', 'error'),
    ('strategy-unknown',
     'name: qa\n'
     'signature: q -> a\n'
     'strategy: bayesian\n',
     3, 11, 'bad-value', 'error'),
    ('strategy-grid-continuous',
     V + ('  temperature: {range: [0.0, 1.0]}\n'
           'strategy: grid\n'),
     6, 11, 'strategy-mismatch', 'error'),
    ('strategy-grid-too-big',
     V + ('  module: [predict, cot, pot]\n'
           '  adapter: [chat, json, markdown]\n'
           'budget: {trials: 5}\n'
           'strategy: grid\n'),
     8, 11, 'strategy-mismatch', 'warning'),
    ('yaml-tag',
     'name: !!python/name:os.system qa\n'
     'signature: q -> a\n',
     1, 7, 'bad-value', 'error'),
    ('merge-key',
     'base: &b {name: qa}\n'
     '<<: *b\n'
     'signature: q -> a\n',
     2, 1, 'bad-value', 'error'),
    ('bool-as-text',
     'name: qa\n'
     'signature: q -> a\n'
     'instructions: yes\n',
     3, 15, 'wrong-type', 'error'),
    ('budget-exceeded',
     'name: qa\n'
     'signature: question -> answer\n'
     'model: sim/large\n'
     'dataset: sim-math\n'
     'variables:\n'
     '  temperature: {range: [0.0, 1.0]}\n'
     'budget: {dollars: 1.0, trials: 50}\n',
     7, 19, 'budget-exceeded', 'warning'),
    ('maybe-unsatisfiable',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  a: {range: [0, 999]}\n'
     '  b: {range: [0, 999]}\n'
     '  c: {range: [0, 999]}\n'
     'constraints:\n'
     '  - a < b\n'
     '  - b < c\n'
     '  - c < a\n',
     8, 5, 'maybe-unsatisfiable', 'warning'),
    ('duplicate-constraint',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  module: [predict, cot]\n'
     'constraints:\n'
     '  - module != "cot"\n'
     '  - module != "cot"\n',
     7, 5, 'redundant-constraint', 'warning'),
    ('defaults-violate',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  module: [predict, cot]\n'
     '  adapter: [chat, json]\n'
     'constraints:\n'
     '  - module == "predict" -> adapter == "json"\n',
     7, 5, 'bad-default', 'warning'),
    ('nsga2-one-objective',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {accuracy: max}\n'
     'strategy: nsga2\n',
     4, 11, 'strategy-mismatch', 'warning'),
    ('zero-weights',
     'name: qa\n'
     'signature: q -> a\n'
     'weights: {accuracy: 0, cost: 0}\n',
     3, 1, 'bad-weights', 'error'),
    ('no-demo-pool',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  demos: {k: [0, 4]}\n',
     4, 3, 'no-demo-pool', 'info'),
    ('module-targets',
     'name: qa\n'
     'signature: q -> a\n'
     'variables:\n'
     '  a.temperature: {range: [0.0, 1.0]}\n'
     '  b.temperature: {range: [0.0, 1.0]}\n',
     5, 3, 'module-target', 'warning'),
    ('unusual-direction',
     'name: qa\n'
     'signature: q -> a\n'
     'objectives: {cost: max}\n',
     3, 20, 'bad-value', 'warning'),
]


@pytest.mark.parametrize(("text", "line", "column", "kind", "severity"),
                         [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_spec_is_reported_at_its_line_and_column(text: str, line: int, column: int,
                                                           kind: str, severity: str) -> None:
    spec = parse_spec(text)
    found = [(d.line, d.column, d.kind, d.severity) for d in spec.diagnostics]
    assert (line, column, kind, severity) in found, spec.render_diagnostics()
    assert kind in KINDS
    if severity == "error":
        assert not spec.ok
    assert "internal-error" not in {d.kind for d in spec.diagnostics}


def test_there_are_at_least_forty_malformed_specs() -> None:
    assert len(MALFORMED) >= 40
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED)


def test_the_issue_example() -> None:
    spec = parse_spec(ISSUE_SPEC)
    assert spec.ok, spec.render_diagnostics()
    assert [d.kind for d in spec.diagnostics] == ["no-demo-pool"]  # info only: no dataset
    assert spec.name == "qa" and spec.model == "sim/small"
    assert list(spec.variables) == ["adapter", "module", "model", "temperature", "demos"]
    assert spec.variables["temperature"] == Float("temperature", 0.0, 1.5)
    assert spec.constraints == ['model == "sim/small" -> module != "pot"']
    assert spec.weights == {"accuracy": 0.5, "cost": 0.3, "latency": 0.2}
    assert spec.budget == Budget(dollars=2.0, trials=40)
    assert parse_spec(spec.to_text()) == spec


def test_misspelled_key_on_line_two_suggests_the_key() -> None:
    spec = parse_spec("name: qa\nvariabels:\n  x: {choices: [a, b]}\nsignature: q -> a\n")
    (d,) = spec.errors
    assert (d.line, d.column, d.kind, d.fix) == (2, 1, "unknown-key", "variables")
    assert "Did you mean 'variables'?" in d.message


def test_renders_with_a_caret_under_the_column() -> None:
    spec = parse_spec("name: qa\nsignature: question, -> answer\n")
    (d,) = spec.diagnostics
    text = d.render()
    lines = text.splitlines()
    assert lines[0].startswith("2:22: error[signature-error]:")
    assert lines[1] == "  signature: question, -> answer"
    assert lines[2] == "  " + " " * 21 + "^"
    assert lines[3].startswith("  fix: ")
    assert str(d) == text and spec.render_diagnostics() == text
    html = spec._repr_html_()
    assert "signature-error" in html and "<table>" in html and "&gt;" in html
    assert "<span" in d._repr_html_()


def test_html_escapes_user_text() -> None:
    spec = parse_spec("name: qa\nsignature: q -> a\nmetric: <script>\n")
    html = spec._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_diagnostics_are_sorted_and_never_raise_on_types() -> None:
    spec = parse_spec("zzz: 1\nname: [x]\nsignature: q -> a\naaa: 2\n")
    positions = [(d.line, d.column) for d in spec.diagnostics]
    assert positions == sorted(positions)
    for value in (None, 42, ["a"], b"\xff\xfe", object()):
        out = parse_spec(value)
        assert not out.ok and out.diagnostics[0].kind == "not-text"
    assert parse_spec(b"name: qa\nsignature: q -> a\n").ok


def test_strict_and_load(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("name: qa\n", strict=True)
    assert "missing-key" in str(info.value) and info.value.diagnostics
    path = tmp_path / "qa.yaml"
    path.write_text(ISSUE_SPEC, encoding="utf-8")
    assert load_spec(path) == parse_spec(ISSUE_SPEC)
    assert isinstance(SpecError([]), ConfigurationError)


FULL_SPEC = """\
name: full
description: every key and every variable kind
signature: "question, context: list[str] -> answer: int"
instructions: |
  Answer with a number.
  Think step by step.
model: sim/small
adapter: chat
module: cot
temperature: 0.2
max_tokens: 300
dataset: {name: sim-math, split: val, size: 50}
metric: exact_match
variables:
  adapter: [chat, json]
  module: {choices: [predict, cot, pot], default: cot}
  model: {choices: [sim/small, sim/medium, groq/llama-3.1-8b-instant]}
  temperature: {range: [0.0, 1.2], step: 0.3}
  max_tokens: {range: [64, 1024], log: true, default: 128}
  instructions: {choices: ["Be brief.", "Think step by step."]}
  demos: {k: [0, 4], select: subset, pool: 8}
  gen.temperature: {range: [0.1, 0.5]}
  pot_timeout: {range: [1.0, 10.0], when: module == "pot"}
  retries: {range: [0, 6], step: 2}
  style: {choices: [terse, verbose, null, true, 3]}
constraints:
  - provider == "groq" -> module in ["predict", "cot"]
  - demos <= 2 or model != "sim/small"
objectives: {accuracy: max, cost: min, latency: min}
weights: {accuracy: 0.6, cost: 0.2, latency: 0.2}
budget: {dollars: 5.0, trials: 60, minutes: 30}
strategy: tpe
"""


def test_every_key_round_trips() -> None:
    spec = parse_spec(FULL_SPEC)
    assert spec.ok, spec.render_diagnostics()
    assert spec.signature == "question, context: list[str] -> answer: int"
    assert spec.instructions == "Answer with a number.\nThink step by step.\n"
    assert spec.dataset == DatasetRef("sim-math", "val", 50)
    assert spec.variables["max_tokens"] == Int("max_tokens", 64, 1024, log=True, default=128)
    assert spec.variables["retries"] == Int("retries", 0, 6, step=2)
    assert spec.variables["pot_timeout"].when == 'module == "pot"'
    assert spec.variables["style"] == Categorical("style", ["terse", "verbose", None, True, 3])
    assert spec.budget == Budget(5.0, 60, 30.0)
    text = spec.to_text()
    again = parse_spec(text)
    assert again == spec and again.to_text() == text
    assert again.ok


def test_python_api_expresses_the_same_spec() -> None:
    built = Spec.from_python(
        "question, context: list[str] -> answer: int", name="full",
        description="every key and every variable kind",
        instructions="Answer with a number.\nThink step by step.\n", model="sim/small",
        adapter="chat", module="cot", temperature=0.2, max_tokens=300,
        dataset=DatasetRef("sim-math", "val", 50), metric="exact_match",
        variables=[
            adapter(["chat", "json"]), module(default="cot"),
            model(["sim/small", "sim/medium", "groq/llama-3.1-8b-instant"]),
            temperature(0.0, 1.2, step=0.3), max_tokens(64, 1024, log=True, default=128),
            instructions(["Be brief.", "Think step by step."]),
            demos((0, 4), select="subset", pool_size=8),
            temperature(0.1, 0.5, name="gen.temperature"),
            Float("pot_timeout", 1.0, 10.0, when='module == "pot"'),
            Int("retries", 0, 6, step=2),
            Categorical("style", ["terse", "verbose", None, True, 3])],
        constraints=['provider == "groq" -> module in ["predict", "cot"]',
                     'demos <= 2 or model != "sim/small"'],
        objectives={"accuracy": "max", "cost": "min", "latency": "min"},
        weights={"accuracy": 0.6, "cost": 0.2, "latency": 0.2},
        budget={"dollars": 5.0, "trials": 60, "minutes": 30.0}, strategy="tpe")
    assert built == parse_spec(FULL_SPEC)
    assert built.ok and built.source == built.to_text()


def test_python_api_gets_the_same_diagnostics() -> None:
    spec = Spec.from_python("q -> a", variables=[module(["predict", "cot"])],
                            constraints=['module == "pot"'])
    assert not spec.ok
    (d,) = spec.errors
    assert d.kind == "unknown-value" and spec.source is not None
    assert spec.source.splitlines()[d.line - 1].strip().startswith("- module")
    space_spec = Spec.from_python("q -> a", variables=Space([module()], ['module != "pot"']),
                                  objectives=["accuracy", "cost"])
    assert space_spec.constraints == ['module != "pot"']
    assert space_spec.objectives == {"accuracy": "max", "cost": "min"}
    with pytest.raises(ConfigurationError, match="twice"):
        Spec.from_python("q -> a", variables=[module(), module()])


def test_build_gives_program_and_space(sim_url: str) -> None:
    spec = parse_spec(ISSUE_SPEC)
    program, space = spec.build()
    assert isinstance(program, dx.Predict)
    assert program.signature.instructions == "Answer with one word."
    assert program.cfg.lm is not None and program.cfg.lm.model == "sim/small"
    assert set(space.variables) == set(spec.variables)
    assert space.constants == {}  # every fixed setting is also a variable here
    a = {"adapter": "json", "module": "cot", "model": "sim/large", "temperature": 0.5,
         "demos": ()}
    tuned = program.with_config(space.to_config(a))
    assert isinstance(tuned, dx.ChainOfThought)
    assert tuned.cfg.adapter == "json" and tuned.cfg.temperature == 0.5
    assert space.validate({**a, "model": "sim/small", "module": "pot"}) != []


def test_build_binds_demos_from_the_dataset(sim_url: str) -> None:
    spec = parse_spec("name: m\nsignature: 'question -> answer: int'\nmodel: sim/small\n"
                      "module: pot\ndataset: sim-math\nvariables:\n  demos: {k: [0, 3]}\n")
    assert spec.ok, spec.render_diagnostics()
    program, space = spec.build()
    assert isinstance(program, dx.ProgramOfThought)
    config = space.to_config({"demos": (0, 1, 2)})
    assert len(config["demos"]) == 3
    assert set(config["demos"][0]) == {"question", "answer"}
    assert len(program.with_config(config).cfg.demos) == 3


def test_build_targets_one_module(sim_url: str) -> None:
    spec = parse_spec("name: t\nsignature: q -> a\nmodel: sim/small\nvariables:\n"
                      "  gen.temperature: {range: [0.0, 1.0]}\n")
    assert spec.ok
    program, space = spec.build()
    assert list(program.named_modules()) == ["gen"]
    assert program.input_names() == ["q"]
    tuned = program.with_config(space.to_config({"gen.temperature": 0.4}))
    assert tuned.config()["gen"]["temperature"] == 0.4

    class Other(dx.Module):
        def __init__(self) -> None:
            self.step = dx.Predict("q -> a")

        def forward(self, q: str) -> object:
            return self.step(q=q)

    with pytest.raises(ConfigurationError, match="targets module 'gen'"):
        spec.build(program=Other())


def test_build_refuses_a_spec_with_errors() -> None:
    spec = parse_spec("name: qa\nsignature: q -> a\nadapter: jsn\n")
    with pytest.raises(SpecError) as info:
        spec.build()
    assert "bad-value" in str(info.value) and "^" in str(info.value)
    with pytest.raises(SpecError):
        spec.analyze()


def test_constraints_see_fixed_settings_and_derived_provider() -> None:
    spec = parse_spec("name: g\nsignature: q -> a\nmodel: groq/llama-3.1-8b-instant\n"
                      "variables:\n  module: [predict, cot, pot]\nconstraints:\n"
                      "  - provider == \"groq\" -> module in [\"predict\", \"cot\"]\n")
    assert spec.ok, spec.render_diagnostics()
    kinds = {d.kind for d in spec.diagnostics}
    assert "dead-value" in kinds  # pot is never valid with a groq model
    space = spec.space()
    assert space.size == 2


def test_diagnostic_is_plain_data() -> None:
    d = Diagnostic(3, 4, "warning", "dead-value", "msg", "fix", "  line")
    assert not d.is_error and d.render().startswith("3:4: warning[dead-value]: msg")
