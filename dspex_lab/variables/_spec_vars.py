"""Reading the ``variables:`` of a spec: one definition -> one :class:`Variable`.

Every problem is reported at the key or value it is about: the choice that
is listed twice, the range bound that is out of bounds, the default that is
not a value of its variable. See ``docs/spec.md`` ("Variables").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dspex_lab.errors import ConfigurationError
from dspex_lab.programs.config import CONFIG_KEYS, MODULE_KINDS
from dspex_lab.variables._constraints import Constraint, ConstraintError
from dspex_lab.variables._spec_nodes import (
    BAD,
    TAG,
    NodeReader,
    describe,
    is_num,
    same,
    suggest,
)
from dspex_lab.variables._variable import (
    UNSET,
    Categorical,
    Demos,
    Float,
    Int,
    Variable,
    config_key,
    key_value_problem,
)

__all__ = ["MAX_DEMOS", "VARIABLE_KEYS", "VariableReader"]

VARIABLE_KEYS = ("choices", "range", "type", "log", "step", "default", "when", "k", "pool",
                 "select")
MAX_DEMOS = 10_000
_VAR_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*\Z")


@functools.lru_cache(maxsize=4096)
def _like_config_key(name: str) -> str | None:
    """The config key ``name`` looks like a misspelling of (difflib ratio >= 0.75, which
    needs lengths within a factor 0.6 of each other: a cheap filter first)."""
    keys = [k for k in CONFIG_KEYS if k != "lm"
            and 0.6 <= len(k) / max(1, len(name)) <= 1 / 0.6]
    return suggest(name, keys, cutoff=0.75) if keys else None


class VariableReader(NodeReader):
    """The variable-definition part of the spec parser."""

    def _variables(self, k: Node, v: Node) -> None:
        if not isinstance(v, MappingNode):
            value = self.py(v)
            if value is not BAD:
                self.error(v, "wrong-type", f"variables must be a mapping of name -> "
                           f"definition, not {describe(value)}",
                           "variables:\n  temperature: {range: [0.0, 1.0]}")
            return
        variables: dict[str, Variable] = {}
        for vk, vv in v.value:
            name = self.key_name(vk)
            if name is None or not self.check_var_name(vk, name):
                continue
            if name in variables:
                variables.pop(name)  # the duplicate is reported; YAML keeps the last
            var = self.variable(name, vk, vv)
            if var is not None:
                variables[name] = var
                self.var_nodes[name] = (vk, vv)
        self.fields["variables"] = variables
        targets: dict[str, Node] = {}
        for name, var in variables.items():
            if var.target is not None:
                targets.setdefault(var.target, self.var_nodes[name][0])
        odd = [t for t in targets if not t.isidentifier()]
        if len(targets) > 1 or odd:
            where = targets[odd[0]] if odd else list(targets.values())[1]
            self.warn(where, "module-target", f"variables target module paths "
                      f"{sorted(targets)}; the program spec.build() makes has one module, so "
                      f"these need spec.build(program=...)",
                      "drop the module path, or pass your own program")

    def check_var_name(self, k: Node, name: str) -> bool:
        if not _VAR_NAME.match(name):
            self.error(k, "bad-value", f"{name!r} is not a variable name (letters, digits, _; "
                       f"a dotted module path like gen.temperature)")
            return False
        key = config_key(name)
        last = name.rpartition(".")[2]
        if last == "lm":
            self.error(k, "bad-value", "an LM object cannot vary in a spec; vary 'model'",
                       name[:-2] + "model")
            return False
        if last == "provider":
            self.error(k, "bad-value", "'provider' is derived from 'model' (the part before "
                       "'/'); vary 'model' instead", name[:-len("provider")] + "model")
            return False
        if "." in name and key is None:
            close = suggest(last, CONFIG_KEYS)
            fix = f"{name.rpartition('.')[0]}.{close}" if close else None
            self.error(k, "unknown-key", f"{last!r} is not a config key a module path can "
                       f"target (keys: {', '.join(c for c in CONFIG_KEYS if c != 'lm')})."
                       + (f" Did you mean {fix!r}?" if fix else ""), fix)
            return False
        if key is None:
            close = _like_config_key(name)
            if close:
                self.warn(k, "free-variable", f"{name!r} is no config key, so it is a free "
                          f"variable the program must read itself. Did you mean {close!r}?",
                          close)
        return True

    def variable(self, name: str, k: Node, v: Node) -> Variable | None:
        key = config_key(name)
        entries: dict[str, tuple[Node, Node]]
        if isinstance(v, SequenceNode):
            entries = {"choices": (v, v)}
        elif isinstance(v, ScalarNode) and v.tag == TAG + "null":
            entries = {}
        elif isinstance(v, MappingNode):
            entries = self.mapping(v, f"variable {name!r}", VARIABLE_KEYS)
            if not entries and v.value:
                return None
        else:
            value = self.py(v)
            if value is not BAD:
                self.error(v, "wrong-type", f"variable {name!r} must be a mapping such as "
                           f"{{choices: [...]}} or {{range: [low, high]}}, not "
                           f"{describe(value)}", "{choices: [a, b]}")
            return None
        when = self.when_of(name, entries)
        if when is BAD:
            return None
        if key == "demos":
            return self.demos_variable(name, k, v, entries, when)
        for unused in ("k", "pool", "select"):
            if unused in entries:
                self.error(entries[unused][0], "unknown-key", f"{unused!r} is only for demos "
                           f"variables")
        if "choices" in entries and "range" in entries:
            self.error(entries["range"][0], "bad-value", f"variable {name!r} has both choices "
                       f"and a range; give one", "remove range or choices")
            return None
        if "choices" in entries:
            for unused in ("log", "step"):
                if unused in entries:
                    self.error(entries[unused][0], "unknown-key", f"{unused!r} applies to "
                               f"ranges, not choices")
            if "type" in entries:
                t = self.text_of(entries["type"][1], "type")
                if t is not None and t != "categorical":
                    self.error(entries["type"][1], "bad-value", f"a choices variable has type "
                               f"categorical, not {t!r}", "categorical")
            return self.categorical(name, entries, when)
        if "range" in entries:
            return self.range_variable(name, entries, when)
        if key in ("adapter", "module") and "type" not in entries:
            from dspex_lab.programs.adapters import ADAPTER_NAMES

            choices = list(ADAPTER_NAMES if key == "adapter" else MODULE_KINDS)
            return self.build_var(lambda d: Categorical(name, choices, default=d, when=when),
                                  name, entries, v)
        self.error(k, "missing-key", f"variable {name!r} has neither choices nor a range",
                   "{choices: [a, b]} or {range: [low, high]}")
        return None

    def when_of(self, name: str, entries: dict[str, tuple[Node, Node]]) -> Any:
        if "when" not in entries:
            return None
        node = entries["when"][1]
        text = self.text_of(node, "when", lenient=True)
        if text is None:
            return BAD
        try:
            Constraint(text)
        except ConstraintError as exc:
            self.expr_errors = True
            self.error(self.expr_pos(node, exc.column), "constraint-syntax",
                       f"the condition does not parse: {exc.reason}", 'e.g. module == "pot"')
            return BAD
        self.when_nodes[name] = node
        return text

    def build_var(self, make: Callable[[Any], Variable], name: str,
                  entries: dict[str, tuple[Node, Node]], where: Node) -> Variable | None:
        """Construct without the default, check the default, construct with it."""
        try:
            var = make(UNSET)
        except ConfigurationError as exc:
            self.error(where, "bad-value", str(exc))
            return None
        if "default" not in entries:
            return var
        node = entries["default"][1]
        default = self.py(node)
        if default is BAD:
            return var
        if isinstance(var, Demos) and isinstance(default, int) and not isinstance(default, bool):
            default = list(range(default)) if 0 <= default <= MAX_DEMOS else default
        if isinstance(var, Demos) and isinstance(default, list):
            default = tuple(default)
        if isinstance(var, Float) and is_num(default):
            default = float(default)
        problem = var.problem(default)
        if problem:
            self.error(node, "bad-default", f"the default of {name!r}: {problem}",
                       repr(var.first()))
            return var
        try:
            return make(default)
        except ConfigurationError as exc:  # pragma: no cover - problem() found it first
            self.error(node, "bad-default", str(exc))
            return var

    def categorical(self, name: str, entries: dict[str, tuple[Node, Node]],
                    when: str | None) -> Variable | None:
        key = config_key(name)
        node = entries["choices"][1]
        if not isinstance(node, SequenceNode):
            value = self.py(node)
            if value is not BAD:
                self.error(node, "wrong-type", f"choices must be a list, not "
                           f"{describe(value)}", f"[{node.value}]" if isinstance(
                               node, ScalarNode) else None)
            return None
        if not node.value:
            self.error(node, "empty-choices", f"variable {name!r} has no choices",
                       "list at least two values, or remove the variable")
            return None
        choices: list[Any] = []
        ok = True
        for i, item in enumerate(node.value):
            self.choice_nodes[(name, i)] = item
            if not isinstance(item, ScalarNode):
                value = self.py(item)
                if value is not BAD:
                    self.error(item, "wrong-type", f"a choice is a single value, not "
                               f"{describe(value)}")
                ok = False
                continue
            value = self.py(item)
            if value is BAD:
                ok = False
                continue
            if key == "instructions" and not isinstance(value, str):
                self.error(item, "wrong-type", f"an instructions candidate is text, not "
                           f"{describe(value)}", f"'{item.value}'")
                ok = False
                continue
            if any(same(value, c) for c in choices):
                self.error(item, "duplicate-choice", f"{value!r} is listed twice",
                           "remove the repeat")
                ok = False
                continue
            problem = key_value_problem(key, value)
            if problem:
                close = None
                if key in ("adapter", "module") and isinstance(value, str):
                    from dspex_lab.programs.adapters import ADAPTER_NAMES

                    close = suggest(value, ADAPTER_NAMES if key == "adapter" else MODULE_KINDS)
                self.error(item, "bad-value", f"{value!r} {problem}."
                           + (f" Did you mean {close!r}?" if close else ""), close)
                ok = False
                continue
            if key == "model" and isinstance(value, str):
                self.check_model(item, value)
            choices.append(value)
        if not ok:
            return None
        return self.build_var(lambda d: Categorical(name, choices, default=d, when=when),
                              name, entries, node)

    def range_variable(self, name: str, entries: dict[str, tuple[Node, Node]],
                       when: str | None) -> Variable | None:
        key = config_key(name)
        node = entries["range"][1]
        if key in ("adapter", "module", "model", "instructions"):
            self.error(node, "wrong-type", f"{key} takes choices, not a range",
                       "{choices: [...]}")
            return None
        if not isinstance(node, SequenceNode) or len(node.value) != 2:
            value = self.py(node)
            if value is not BAD:
                self.error(node, "wrong-type", f"a range is [low, high], not "
                           f"{describe(value)}", "[0.0, 1.0]")
            return None
        bounds = [self.number_of(b, "a range bound") for b in node.value]
        if any(b is None for b in bounds):
            return None
        low, high = bounds
        assert low is not None and high is not None
        kind: str | None = None
        if "type" in entries:
            kind = self.text_of(entries["type"][1], "type")
            if kind is None:
                return None
            if kind not in ("float", "int"):
                self.error(entries["type"][1], "bad-value", f"a range's type is float or int, "
                           f"not {kind!r}", suggest(kind, ("float", "int")) or "float")
                return None
        if kind is None:
            if key == "temperature":
                kind = "float"
            elif key in ("max_tokens", "max_code_retries"):
                kind = "int"
            else:
                kind = "int" if all(isinstance(b, int) for b in bounds) else "float"
        if kind == "int":
            for b, bn in zip(bounds, node.value, strict=True):
                if not isinstance(b, int):
                    self.error(bn, "wrong-type", f"an integer range needs integer bounds, "
                               f"not {b!r}", str(int(b or 0)))
                    return None
        if key in ("max_tokens", "max_code_retries") and kind == "float":
            self.error(entries["type"][1], "bad-value", f"{key} is an integer", "int")
            return None
        if low > high:
            self.error(node, "bad-range", f"the range of {name!r} has low {low!r} > high "
                       f"{high!r}", f"[{high!r}, {low!r}]")
            return None
        log = False
        if "log" in entries:
            value = self.py(entries["log"][1])
            if value is BAD:
                return None
            if not isinstance(value, bool):
                self.error(entries["log"][1], "wrong-type", f"log is true or false, not "
                           f"{describe(value)}", "true")
                return None
            log = value
            if log and low <= 0:
                self.error(node, "bad-range", f"a log range needs low > 0, not {low!r}",
                           "start the range above 0, or drop log")
                return None
        for b, bn in zip(bounds, node.value, strict=True):
            problem = key_value_problem(key, b)
            if problem:
                self.error(bn, "bad-value", f"{b!r} {problem}")
                return None
        step: float | int | None = None
        if "step" in entries:
            step = self.number_of(entries["step"][1], "step", integer=kind == "int")
            if step is None:
                return None
            if step <= 0:
                self.error(entries["step"][1], "bad-value", f"step must be positive, not "
                           f"{step!r}")
                return None
            if log:
                self.error(entries["step"][1], "bad-value", "step and log cannot be combined",
                           "remove step or log")
                return None
        where = node
        if kind == "int":
            int_step = int(step) if step is not None else 1
            return self.build_var(lambda d: Int(name, int(low), int(high), log=log,
                                                step=int_step, default=d, when=when),
                                  name, entries, where)
        return self.build_var(lambda d: Float(name, float(low), float(high), log=log,
                                              step=step, default=d, when=when),
                              name, entries, where)

    def demos_variable(self, name: str, k: Node, v: Node, entries: dict[str, tuple[Node, Node]],
                       when: str | None) -> Variable | None:
        for unused in ("choices", "range", "type", "log", "step"):
            if unused in entries:
                self.error(entries[unused][0], "unknown-key", f"{unused!r} does not apply to "
                           f"demos; use k (a count or [low, high]), pool and select",
                           "k" if unused in ("choices", "range") else None)
                return None
        k_range: tuple[int, int] = (0, 4)
        if "k" in entries:
            node = entries["k"][1]
            value = self.py(node)
            if value is BAD:
                return None
            if isinstance(value, int) and not isinstance(value, bool):
                k_range = (value, value)
                bad_node: Node = node
            elif isinstance(value, list) and len(value) == 2 and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in value):
                k_range = (value[0], value[1])
                bad_node = node
            else:
                self.error(node, "wrong-type", f"k is a count or [low, high] of integers, not "
                           f"{describe(value)}", "[0, 8]")
                return None
            if k_range[0] > k_range[1]:
                self.error(bad_node, "bad-range", f"k has low {k_range[0]} > high "
                           f"{k_range[1]}", f"[{k_range[1]}, {k_range[0]}]")
                return None
            if k_range[0] < 0 or k_range[1] > MAX_DEMOS:
                self.error(bad_node, "bad-range", f"k must be within [0, {MAX_DEMOS}]")
                return None
        select = "first"
        if "select" in entries:
            got = self.text_of(entries["select"][1], "select")
            if got is None:
                return None
            if got not in ("first", "subset"):
                self.error(entries["select"][1], "bad-value", f"select is first or subset, not "
                           f"{got!r}", suggest(got, ("first", "subset")))
                return None
            select = got
        pool: list[dict[str, Any]] | None = None
        pool_size: int | None = None
        limit, where = MAX_DEMOS, ""
        if "dataset" in self.fields:
            from dspex_lab.datasets import SPLIT_SIZES

            limit, where = SPLIT_SIZES["train"], " (the dataset's train split)"
        if "pool" in entries:
            node = entries["pool"][1]
            value = self.py(node)
            if value is BAD:
                return None
            if isinstance(value, int) and not isinstance(value, bool):
                if not k_range[1] <= value <= limit:
                    self.error(node, "bad-value", f"the pool ({value}) must hold at least k's "
                               f"high ({k_range[1]}) and at most {limit} demos{where}")
                    return None
                pool_size = value
            elif isinstance(value, list) and all(isinstance(d, dict) for d in value):
                if len(value) < k_range[1]:
                    self.error(node, "bad-value", f"the pool has {len(value)} demos but k goes "
                               f"up to {k_range[1]}")
                    return None
                pool = value
            else:
                self.error(node, "wrong-type", f"pool is a number of demos (drawn from the "
                           f"dataset) or a list of demo mappings, not {describe(value)}", "16")
                return None
        elif k_range[1] > limit or (select == "subset" and 2 * k_range[1] > limit):
            self.error(entries.get("k", (k, k))[1], "bad-value", f"k goes up to {k_range[1]} "
                       f"but the pool can hold at most {limit} demos{where}")
            return None
        elif "dataset" not in self.key_nodes:
            self.diag(k, "info", "no-demo-pool", "demos has no pool yet: add a dataset (demos "
                      "come from its train split) or pool: [...]; until then bind one with "
                      "space.with_demo_pool(rows)")
        return self.build_var(lambda d: Demos(k_range, pool=pool, select=select,
                                              pool_size=pool_size, name=name, default=d,
                                              when=when), name, entries, v)
