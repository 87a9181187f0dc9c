"""Spec text -> :class:`Spec` with diagnostics, positioned by PyYAML's node marks.

The text is composed (``yaml.compose``: a node tree with line and column
marks, duplicate keys kept), never loaded, so every diagnostic points at the
key or value it is about, and duplicate keys — which ``yaml.safe_load`` drops
silently — are found. :func:`parse` never raises: whatever the text, the
result is a :class:`Spec` whose ``diagnostics`` explain what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dspex_lab.programs.config import MODULE_KINDS
from dspex_lab.variables._constraints import Constraint, ConstraintError
from dspex_lab.variables._diagnostics import Diagnostic
from dspex_lab.variables._spec import Budget, DatasetRef, Spec
from dspex_lab.variables._spec_checks import Checker
from dspex_lab.variables._spec_nodes import (
    BAD,
    TAG,
    describe,
    objective_direction,
    suggest,
)
from dspex_lab.variables._spec_vars import VARIABLE_KEYS
from dspex_lab.variables._strategy import STRATEGIES

__all__ = ["KNOWN_OBJECTIVES", "TOP_KEYS", "VARIABLE_KEYS", "objective_direction", "parse",
           "parse_strict"]

TOP_KEYS = ("name", "description", "signature", "instructions", "model", "adapter", "module",
            "temperature", "max_tokens", "dataset", "metric", "variables", "constraints",
            "objectives", "weights", "budget", "strategy")
BUDGET_KEYS = ("dollars", "trials", "minutes", "seconds")
DATASET_KEYS = ("name", "split", "size")
KNOWN_OBJECTIVES = ("accuracy", "cost", "latency", "tokens")
_STRATEGY_ALIASES = {"bayesian": "tpe", "bayesian_optimization": "tpe", "bayes": "tpe",
                     "grid_search": "grid", "gridsearch": "grid", "genetic": "nsga2",
                     "nsga": "nsga2", "nsga-ii": "nsga2", "nsgaii": "nsga2",
                     "gaussian_process": "gp", "random_search": "random", "adaptive": "auto"}


class _Parser(Checker):
    """The whole spec parser: the run and the top-level keys."""

    # -- the run -----------------------------------------------------------------------
    def compose(self) -> Node | None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            node: Node | None = yaml.compose(self.text, Loader=loader)
            return node
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            self.error(mark, "yaml-syntax", f"invalid YAML: {problem}{context}",
                       _yaml_fix(problem, self.lines[mark.line] if mark is not None
                                 and 0 <= mark.line < len(self.lines) else ""))
        except yaml.YAMLError as exc:
            where = (getattr(exc, "position", 0), 0)
            line = self.text.count("\n", 0, where[0]) if isinstance(where[0], int) else 0
            self.error((line, 0), "yaml-syntax", f"invalid YAML: {exc}")
        except RecursionError:
            self.error((0, 0), "yaml-syntax", "invalid YAML: nested too deeply")
        except (UnicodeError, ValueError) as exc:
            self.error((0, 0), "not-text", f"the spec cannot be read as text: {exc}")
        return None

    def run(self) -> Spec:
        root = self.compose()
        if root is None:
            if not self.diags:
                self.error((0, 0), "missing-key", "the spec is empty; it needs at least a "
                           "signature", "signature: question -> answer")
            return self.finish()
        if not isinstance(root, MappingNode):
            value = self.py(root)
            shown = describe(value) if value is not BAD else "not a mapping"
            self.error(root, "not-mapping", f"a spec is a mapping of keys (name, signature, "
                       f"variables, ...), not {shown}", "signature: question -> answer")
            return self.finish()
        self.check_duplicates(root)
        entries = self.mapping(root, "the spec", TOP_KEYS, hint=_top_hint)
        self.key_nodes = entries
        for key in TOP_KEYS:
            if key not in entries:
                continue
            k, v = entries[key]
            if isinstance(v, ScalarNode) and v.tag == TAG + "null" and key != "signature":
                continue  # `key:` with nothing after it: as if absent
            getattr(self, f"_{key}")(k, v)
        if "signature" not in entries:
            self.error((0, 0), "missing-key", "the spec has no signature",
                       "signature: question -> answer")
        self.check_expressions()
        space = self.check_space()
        self.check_optimization(space)
        return self.finish()

    def finish(self) -> Spec:
        self.diags.sort(key=lambda d: (d.line, d.column))
        return Spec(**self.fields, diagnostics=self.diags, source=self.text, _cache=self.cache)

    def check_duplicates(self, root: Node) -> None:
        seen_nodes: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, MappingNode):
                first: dict[str, Node] = {}
                for k, v in node.value:
                    if isinstance(k, ScalarNode):
                        if k.value in first:
                            where = first[k.value].start_mark.line + 1
                            self.error(k, "duplicate-key",
                                       f"{k.value!r} appears twice in this mapping (first on "
                                       f"line {where}); YAML keeps only the last",
                                       "remove or rename one of them")
                        else:
                            first[k.value] = k
                    stack.append(v)
            elif isinstance(node, SequenceNode):
                stack.extend(node.value)

    # -- top-level keys ------------------------------------------------------------------
    def _name(self, k: Node, v: Node) -> None:
        value = self.text_of(v, "name", lenient=True)
        if value is not None:
            self.fields["name"] = value

    def _description(self, k: Node, v: Node) -> None:
        value = self.text_of(v, "description", lenient=True)
        if value is not None:
            self.fields["description"] = value

    def _signature(self, k: Node, v: Node) -> None:
        from dspex_lab.errors import SignatureError
        from dspex_lab.programs.signature import Signature

        if isinstance(v, ScalarNode) and v.tag == TAG + "null":
            self.error(v if v.value else k, "missing-key", "the signature is empty",
                       "signature: question -> answer")
            return
        text = self.text_of(v, "signature")
        if text is None:
            return
        self.fields["signature"] = text
        try:
            Signature(text)
        except SignatureError as exc:
            message = str(exc).split("\n", 1)[0]
            found = re.search(r" at column (\d+)$", message)
            col = int(found.group(1)) if found else 0
            message = re.sub(r" at column \d+$", "", message)
            message = message.replace("Invalid signature: ", "")
            self.error(self.expr_pos(v, col), "signature-error", f"the signature does not "
                       f"parse: {message}", "write it as `question, context: list[str] -> "
                       "answer: int`")

    def _instructions(self, k: Node, v: Node) -> None:
        text = self.text_of(v, "instructions")
        if text is None:
            return
        if not text.strip():
            self.error(v, "bad-value", "instructions are empty", "remove the key or write "
                       "the task")
            return
        self.fields["instructions"] = text

    def _model(self, k: Node, v: Node) -> None:
        text = self.text_of(v, "model")
        if text is not None and self.check_model(v, text):
            self.fields["model"] = text

    def _choice_key(self, k: Node, v: Node, key: str, choices: Sequence[str]) -> None:
        text = self.text_of(v, key)
        if text is None:
            return
        if text not in choices:
            close = suggest(text, choices)
            self.error(v, "bad-value", f"{key} {text!r} is not one of {', '.join(choices)}."
                       + (f" Did you mean {close!r}?" if close else ""), close)
            return
        self.fields[key] = text

    def _adapter(self, k: Node, v: Node) -> None:
        from dspex_lab.programs.adapters import ADAPTER_NAMES

        self._choice_key(k, v, "adapter", ADAPTER_NAMES)

    def _module(self, k: Node, v: Node) -> None:
        self._choice_key(k, v, "module", MODULE_KINDS)

    def _temperature(self, k: Node, v: Node) -> None:
        value = self.number_of(v, "temperature")
        if value is None:
            return
        if not 0.0 <= value <= 2.0:
            self.error(v, "bad-value", f"temperature {value!r} is outside [0, 2]")
            return
        self.fields["temperature"] = float(value)

    def _max_tokens(self, k: Node, v: Node) -> None:
        value = self.number_of(v, "max_tokens", integer=True)
        if value is None:
            return
        if value < 1:
            self.error(v, "bad-value", f"max_tokens {value!r} must be at least 1")
            return
        self.fields["max_tokens"] = int(value)

    def _dataset(self, k: Node, v: Node) -> None:
        from dspex_lab.datasets import SPLIT_SIZES, names

        if isinstance(v, ScalarNode):
            name_node: Node = v
            entries: dict[str, tuple[Node, Node]] = {}
        else:
            entries = self.mapping(v, "dataset", DATASET_KEYS,
                                   fix="dataset: sim-math, or {name: sim-math, split: val, "
                                       "size: 50}")
            if not entries:
                return
            if "name" not in entries:
                self.error(v, "missing-key", "the dataset has no name", "name: sim-math")
                return
            name_node = entries["name"][1]
        name = self.text_of(name_node, "the dataset name")
        if name is None:
            return
        if name not in names():
            close = suggest(name, names())
            self.error(name_node, "unknown-dataset", f"no built-in dataset {name!r}; "
                       f"built in: {', '.join(names())}."
                       + (f" Did you mean {close!r}?" if close else ""), close)
            return
        split = "val"
        if "split" in entries:
            got = self.text_of(entries["split"][1], "split")
            if got is None:
                return
            if got not in SPLIT_SIZES:
                close = suggest(got, list(SPLIT_SIZES))
                self.error(entries["split"][1], "bad-value", f"split {got!r} is not one of "
                           f"{', '.join(SPLIT_SIZES)}", close)
                return
            split = got
        size: int | None = None
        if "size" in entries:
            n = self.number_of(entries["size"][1], "size", integer=True)
            if n is None:
                return
            if not 1 <= n <= SPLIT_SIZES[split]:
                self.error(entries["size"][1], "bad-value", f"size {n} is outside [1, "
                           f"{SPLIT_SIZES[split]}] (the {split} split's rows)")
                return
            size = int(n)
        self.fields["dataset"] = DatasetRef(name, split, size)

    def _metric(self, k: Node, v: Node) -> None:
        from dspex_lab.programs.metrics import BY_NAME

        text = self.text_of(v, "metric")
        if text is None:
            return
        if text not in BY_NAME:
            close = suggest(text, list(BY_NAME))
            self.error(v, "unknown-metric", f"no metric {text!r}; metrics: "
                       f"{', '.join(BY_NAME)}." + (f" Did you mean {close!r}?" if close else ""),
                       close)
            return
        self.fields["metric"] = text

    def _strategy(self, k: Node, v: Node) -> None:
        text = self.text_of(v, "strategy")
        if text is None:
            return
        if text not in STRATEGIES:
            close = _STRATEGY_ALIASES.get(text.lower().replace(" ", "_")) \
                or suggest(text, STRATEGIES)
            self.error(v, "bad-value", f"strategy {text!r} is not one of "
                       f"{', '.join(STRATEGIES)}." + (f" Did you mean {close!r}?" if close
                                                     else ""), close)
            return
        self.fields["strategy"] = text

    def _budget(self, k: Node, v: Node) -> None:
        entries = self.mapping(v, "budget", BUDGET_KEYS, fix="budget: {dollars: 2.0, "
                               "trials: 40}")
        values: dict[str, Any] = {}
        for key, (bk, bv) in entries.items():
            self.sub_nodes[("budget", key)] = (bk, bv)
            value = self.number_of(bv, f"budget.{key}", integer=key == "trials")
            if value is None:
                continue
            if value <= 0:
                self.error(bv, "bad-value", f"budget.{key} must be positive, not {value!r}")
                continue
            values[key] = int(value) if key == "trials" else float(value)
        if values:
            self.fields["budget"] = Budget(**values)

    def _objectives(self, k: Node, v: Node) -> None:
        objectives: dict[str, str] = {}
        if isinstance(v, SequenceNode):
            for item in v.value:
                name = self.text_of(item, "an objective")
                if name is None:
                    continue
                self.sub_nodes[("objectives", name)] = (item, item)
                self.check_objective_name(item, name)
                objectives[name] = objective_direction(name)
        else:
            if not isinstance(v, MappingNode):
                self.mapping(v, "objectives", (), fix="objectives: {accuracy: max, cost: min}")
                return
            for ok, ov in v.value:
                name = self.key_name(ok)
                if name is None:
                    continue
                self.sub_nodes[("objectives", name)] = (ok, ov)
                self.check_objective_name(ok, name)
                direction = self.text_of(ov, f"the direction of {name!r}")
                if direction is None:
                    continue
                if direction not in ("max", "min"):
                    close = {"maximize": "max", "maximise": "max", "minimize": "min",
                             "minimise": "min", "maximum": "max", "minimum": "min",
                             "high": "max", "low": "min"}.get(direction.lower())
                    self.error(ov, "bad-value", f"an objective's direction is max or min, not "
                               f"{direction!r}", close or "max or min")
                    continue
                if name in KNOWN_OBJECTIVES and direction != objective_direction(name):
                    self.warn(ov, "bad-value", f"{direction}imizing {name} is unusual "
                              f"({objective_direction(name)} is the usual direction)",
                              objective_direction(name))
                objectives[name] = direction
        if objectives:
            self.fields["objectives"] = objectives

    def check_objective_name(self, node: Node, name: str) -> None:
        if name not in KNOWN_OBJECTIVES:
            close = suggest(name, KNOWN_OBJECTIVES)
            self.warn(node, "unknown-objective", f"{name!r} is not a measured objective "
                      f"({', '.join(KNOWN_OBJECTIVES)}); it needs a metric of that name."
                      + (f" Did you mean {close!r}?" if close else ""), close)

    def _weights(self, k: Node, v: Node) -> None:
        if not isinstance(v, MappingNode):
            self.mapping(v, "weights", (), fix="weights: {accuracy: 0.5, cost: 0.5}")
            return
        weights: dict[str, float] = {}
        for wk, wv in v.value:
            name = self.key_name(wk)
            if name is None:
                continue
            self.sub_nodes[("weights", name)] = (wk, wv)
            value = self.number_of(wv, f"the weight of {name!r}")
            if value is None:
                continue
            if value < 0:
                self.error(wv, "bad-value", f"a weight must be >= 0, not {value!r}")
                continue
            weights[name] = float(value)
        if weights:
            self.fields["weights"] = weights

    def _constraints(self, k: Node, v: Node) -> None:
        items: list[Node]
        if isinstance(v, ScalarNode) and isinstance(self.py(v), str):
            items = [v]
        elif isinstance(v, SequenceNode):
            items = list(v.value)
        else:
            value = self.py(v)
            if value is not BAD:
                self.error(v, "wrong-type", f"constraints must be a list of expressions, not "
                           f"{describe(value)}", '- model == "sim/small" -> module != "pot"')
            return
        texts: list[str] = []
        for item in items:
            text = self.text_of(item, "a constraint", lenient=True)
            if text is None:
                continue
            if text in texts:
                self.warn(item, "redundant-constraint", "this constraint is listed twice",
                          "remove one of them")
                continue
            try:
                Constraint(text)
            except ConstraintError as exc:
                self.expr_errors = True
                self.error(self.expr_pos(item, exc.column), "constraint-syntax",
                           f"the constraint does not parse: {exc.reason}",
                           'e.g. provider == "groq" -> module in ["predict", "cot"]')
                continue
            texts.append(text)
            self.constraint_nodes.append(item)
        self.fields["constraints"] = texts


def _top_hint(key: str) -> str | None:
    hints = {"optimizer": "use `strategy:` (auto, grid, random, tpe, nsga2, gp)",
             "program": "a spec describes one module: use `signature:` and `module:`",
             "params": "put what varies under `variables:`",
             "parameters": "put what varies under `variables:`"}
    return f"unknown key {key!r}: {hints[key]}" if key in hints else None


def _yaml_fix(problem: str, line: str) -> str | None:
    if "mapping values are not allowed" in problem:
        found = re.match(r"(\s*(?:- )?[\w.\[\]]+:\s+)(.*?)\s*$", line)
        if found and ": " in found.group(2) and found.group(2)[:1] not in "'\"{[":
            value = found.group(2).replace('"', '\\"')
            return f'quote the value: {found.group(1).strip()} "{value}"'
        return "quote the value (it contains ': '), or indent it under its key"
    if "found character '\\t'" in problem:
        return "indent with spaces, not tabs"
    if "could not find expected ':'" in problem:
        return "write `key: value`"
    return None


def parse(text: Any) -> Spec:
    """:func:`parse_spec`'s implementation: never raises."""
    try:
        return parse_strict(text)
    except Exception as exc:  # the analyser's own bug: report it instead of raising
        return Spec(diagnostics=[Diagnostic(1, 1, "error", "internal-error",
                                            f"the spec analyser failed: "
                                            f"{type(exc).__name__}: {exc}",
                                            "please report this spec")],
                    source=text if isinstance(text, str) else None)


def parse_strict(text: Any) -> Spec:
    """Like :func:`parse` but lets the analyser's own bugs raise (used by the tests)."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Spec(diagnostics=[Diagnostic(1, 1, "error", "not-text",
                                                f"the spec is not UTF-8 text: {exc}")])
    if not isinstance(text, str):
        return Spec(diagnostics=[Diagnostic(1, 1, "error", "not-text",
                                            f"a spec is text, not {type(text).__name__}",
                                            "pass the YAML text, or use load_spec(path)")])
    return _Parser(text).run()
