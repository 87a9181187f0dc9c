"""``SpaceBuilder``: a form that writes a ``%%dspex`` spec.

Pick models, modules, adapters, a temperature range or choices, a demos
range, instruction candidates, constraints, the signature, a dataset, a budget
and a strategy; the form shows the equivalent spec text as you go
(``builder.spec_text``) and ``builder.spec()`` is the parsed
:class:`~dspex_lab.variables.Spec`.

The promise: ``spec_text`` always parses without error (``parse_spec(text).ok``).
The form is checked by the spec's own parser, never by rules copied here:

1. Each free-text item (a model name, a constraint line, the signature) is
   checked alone; an invalid one is shown in red by its field and left out.
2. The assembled text is parsed. An error the parser reports on a line the form
   wrote (an unknown variable in a constraint, an unsatisfiable set of
   constraints, a dollar budget too small for one trial, ``grid`` over a
   continuous range, ...) is shown by the field that wrote that line, the line is
   left out, and the text is parsed again, until no error remains.

So what the text says is always runnable, and what was left out is always said
where it was typed (``builder.errors``).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from dspex_lab.errors import ConfigurationError
from dspex_lab.variables import (
    STRATEGIES,
    Budget,
    Constraint,
    ConstraintError,
    DatasetRef,
    Diagnostic,
    Spec,
    Variable,
    parse_spec,
)
from dspex_lab.variables import adapter as adapter_var
from dspex_lab.variables import demos as demos_var
from dspex_lab.variables import instructions as instructions_var
from dspex_lab.variables import model as model_var
from dspex_lab.variables import module as module_var
from dspex_lab.variables import temperature as temperature_var

__all__ = ["FIELDS", "SpaceBuilder"]

DEFAULT_SIGNATURE = "question -> answer"

FIELDS = ("signature", "name", "models", "modules", "adapters", "temperature",
          "temperature_range", "temperature_choices", "demos", "demos_k", "demos_select",
          "instructions", "constraints", "dataset", "dataset_size", "dollars", "trials",
          "minutes", "strategy")
"""The form's fields, as :meth:`SpaceBuilder.state` and :meth:`SpaceBuilder.set` name them."""

# which form field wrote a spec line (errors on it are shown there, and it is left out)
_OWNER = {"name": "name", "signature": "signature", "instructions": "instructions",
          "model": "models", "adapter": "adapters", "module": "modules",
          "temperature": "temperature", "dataset": "dataset", "budget": "dollars",
          "strategy": "strategy", "demos": "demos"}
_MAX_PASSES = 12


def _catalogue_models() -> list[str]:
    from dspex_lab.lm._builtin_models import BUILTIN_MODELS

    return list(BUILTIN_MODELS)


def _dataset_names() -> list[str]:
    from dspex_lab.datasets import names

    return list(names())


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _errors_of(spec: Spec) -> list[Diagnostic]:
    return [d for d in spec.diagnostics if d.is_error]


class _Draft:
    """The spec being assembled from the form: settings, variables, constraints."""

    def __init__(self, signature: str) -> None:
        self.signature = signature
        self.name: str | None = None
        self.settings: dict[str, Any] = {}          # model, adapter, module, temperature,
        self.variables: dict[str, Variable] = {}    # instructions
        self.constraints: list[tuple[int, str]] = []  # (form line index, text)
        self.dataset: DatasetRef | None = None
        self.budget: dict[str, Any] = {}
        self.strategy = "auto"

    def spec(self) -> Spec:
        return Spec(signature=self.signature, name=self.name, variables=dict(self.variables),
                    constraints=[c for _, c in self.constraints], dataset=self.dataset,
                    budget=Budget(**self.budget), strategy=self.strategy, **self.settings)

    def text(self) -> str:
        return self.spec().to_text()


def _line_owners(text: str) -> dict[int, tuple[str, Any]]:
    """1-based line -> what wrote it: ``("key", name)``, ``("variable", name)`` or
    ``("constraint", position)`` (the order :meth:`Spec.to_text` writes them in)."""
    owners: dict[int, tuple[str, Any]] = {}
    section = None
    position = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(" "):
            key = line.split(":", 1)[0]
            section = key
            owners[number] = ("key", key)
        elif section == "variables":
            owners[number] = ("variable", parse_spec_key(line))
        elif section == "constraints":
            owners[number] = ("constraint", position)
            position += 1
    return owners


def _line_number(message: str) -> int:
    head = message.split(" ", 2)
    return int(head[1]) if len(head) > 1 and head[0] == "line" and head[1].isdigit() else 0


def parse_spec_key(line: str) -> str:
    """The variable name of a ``  name: {...}`` line (names may be quoted)."""
    import yaml

    head = line.strip()
    loaded = yaml.safe_load(head)
    if isinstance(loaded, dict) and len(loaded) == 1:
        return str(next(iter(loaded)))
    return head.split(":", 1)[0]


class SpaceBuilder(widgets.VBox):  # type: ignore[misc]
    """A form for a ``%%dspex`` spec; ``spec_text`` is always a spec without errors.

    ``state()`` reads the form as plain data and ``set(**fields)`` fills it (one
    rebuild, however many fields); ``errors`` maps each field to the problems that
    kept something it holds out of the text; ``spec()`` is the parsed spec.
    """

    def __init__(self, **initial: Any) -> None:
        self._holding = 0
        self._last_signature = DEFAULT_SIGNATURE
        self.spec_text = ""
        self.errors: dict[str, list[str]] = {}
        self.dropped: list[str] = []
        self.rebuilds = 0
        self._spec: Spec | None = None
        text = {"continuous_update": False, "layout": widgets.Layout(width="420px")}
        area = {"continuous_update": False, "layout": widgets.Layout(width="420px",
                                                                     height="80px")}
        self.inputs: dict[str, Any] = {
            "signature": widgets.Text(value=DEFAULT_SIGNATURE, description="signature",
                                      **text),
            "name": widgets.Text(value="", description="name", **text),
            "models": widgets.TagsInput(value=["sim/small"], allow_duplicates=False),
            "modules": widgets.SelectMultiple(options=["predict", "cot", "pot"],
                                              value=["predict"], description="modules",
                                              rows=3),
            "adapters": widgets.SelectMultiple(options=["chat", "json", "markdown"],
                                               value=["chat"], description="adapters",
                                               rows=3),
            "temperature": widgets.ToggleButtons(options=["default", "range", "choices"],
                                                 value="default", description="temperature"),
            "temperature_range": widgets.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=2.0,
                                                          step=0.05, description="range",
                                                          continuous_update=False),
            "temperature_choices": widgets.Text(value="0.0, 0.7", description="choices",
                                                placeholder="0.0, 0.7, 1.0", **text),
            "demos": widgets.Checkbox(value=False, description="vary few-shot demos"),
            "demos_k": widgets.IntRangeSlider(value=(0, 4), min=0, max=16, step=1,
                                              description="k", continuous_update=False),
            "demos_select": widgets.Dropdown(options=["first", "subset"], value="first",
                                             description="select"),
            "instructions": widgets.Textarea(value="", description="instructions",
                                             placeholder="one candidate per line", **area),
            "constraints": widgets.Textarea(value="", description="constraints",
                                            placeholder='model == "sim/tiny" -> module == '
                                                        '"cot"', **area),
            "dataset": widgets.Dropdown(options=[("(none)", ""), *((n, n) for n in
                                                                   _dataset_names())],
                                        value="", description="dataset"),
            "dataset_size": widgets.BoundedIntText(value=0, min=0, max=100_000,
                                                   description="rows (0: all)"),
            "dollars": widgets.BoundedFloatText(value=0.0, min=0.0, max=1e9, step=0.1,
                                                description="$ (0: none)"),
            "trials": widgets.BoundedIntText(value=0, min=0, max=1_000_000,
                                             description="trials (0: none)"),
            "minutes": widgets.BoundedFloatText(value=0.0, min=0.0, max=1e9,
                                                description="minutes (0: none)"),
            "strategy": widgets.Dropdown(options=list(STRATEGIES), value="auto",
                                         description="strategy"),
        }
        self.messages: dict[str, Any] = {f: widgets.HTML() for f in FIELDS}
        self.output = widgets.Textarea(value="", disabled=True, description="%%dspex",
                                       layout=widgets.Layout(width="480px", height="340px"))
        self.summary = widgets.HTML()
        self.diagnostics = widgets.HTML()
        for widget in self.inputs.values():
            widget.observe(self._on_change, names=["value"])
        super().__init__([widgets.HBox([self._form(), widgets.VBox(
            [self.output, self.summary, self.diagnostics])])])
        self.set(**initial)

    def _form(self) -> Any:
        def row(*names: str, label: str | None = None) -> Any:
            parts = [widgets.HTML(f"<b>{html.escape(label)}</b>")] if label else []
            for n in names:
                parts += [self.inputs[n], self.messages[n]]
            return widgets.VBox(parts)

        return widgets.VBox([
            row("signature", "name"),
            row("models", label="models (provider/name; built in: "
                + ", ".join(_catalogue_models()) + ")"),
            row("modules", "adapters"),
            row("temperature", "temperature_range", "temperature_choices"),
            row("demos", "demos_k", "demos_select"),
            row("instructions", "constraints"),
            row("dataset", "dataset_size", label="data"),
            row("dollars", "trials", "minutes", label="budget"),
            row("strategy")], layout=widgets.Layout(width="470px"))

    # -- state ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The form as plain data (the keys of :data:`FIELDS`)."""
        out: dict[str, Any] = {}
        for name, widget in self.inputs.items():
            value = widget.value
            out[name] = list(value) if isinstance(value, tuple | list) and name in (
                "models", "modules", "adapters") else value
        return out

    def set(self, **values: Any) -> SpaceBuilder:
        """Fill fields (names as in :data:`FIELDS`) and rebuild the spec once."""
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ConfigurationError(f"unknown SpaceBuilder fields {sorted(unknown)}; "
                                     f"fields: {', '.join(FIELDS)}")
        with self.hold():
            for name, value in values.items():
                widget = self.inputs[name]
                if name in ("modules", "adapters", "models", "temperature_range", "demos_k"):
                    value = tuple(value)
                widget.value = value
        return self

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Change several fields with one rebuild at the end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding:
                self.rebuild()

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if not self._holding:
            self.rebuild()

    # -- the spec ---------------------------------------------------------------------
    def spec(self) -> Spec:
        """The parsed spec (``parse_spec(builder.spec_text)``; never has errors)."""
        if self._spec is None:
            self._spec = parse_spec(self.spec_text)
        return self._spec

    def rebuild(self) -> str:
        """Read the form, check it, write ``spec_text`` and show what was left out."""
        self.rebuilds += 1
        errors: dict[str, list[str]] = {}

        def fail(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        draft = self._draft(fail)
        spec = self._settle(draft, fail)
        if "constraints" in errors:  # in the order of the lines, whenever they were found
            errors["constraints"].sort(key=_line_number)
        self.spec_text = spec.to_text() if spec.source is None else spec.source
        self._spec = spec
        self.errors = errors
        self._show(spec)
        return self.spec_text

    def _draft(self, fail: Any) -> _Draft:
        """The form's values, each item checked on its own (parser rules, not copies)."""
        s = self.state()
        signature = str(s["signature"]).strip()
        why = self._probe_setting("signature", signature) if signature else "it is empty"
        if why is None:
            self._last_signature = signature
        else:
            fail("signature", f"{why} (using {self._last_signature!r})")
        draft = _Draft(self._last_signature)
        name = str(s["name"]).strip()
        if name:
            if self._fits(draft, name=name):
                draft.name = name
            else:
                fail("name", "cannot be written in a spec")

        models = []
        for m in _dedupe([str(m).strip() for m in s["models"] if str(m).strip()]):
            problem = self._probe_setting("model", m)
            if problem:
                fail("models", f"{m!r}: {problem}")
            else:
                models.append(m)
        self._choice(draft, "model", models, model_var)
        self._choice(draft, "module", _dedupe(s["modules"]), module_var)
        self._choice(draft, "adapter", _dedupe(s["adapters"]), adapter_var)

        if s["temperature"] == "range":
            low, high = (round(float(v), 4) for v in s["temperature_range"])
            if low == high:
                draft.settings["temperature"] = low
            else:
                draft.variables["temperature"] = temperature_var(low, high)
        elif s["temperature"] == "choices":
            values = []
            for part in str(s["temperature_choices"]).replace(";", ",").split(","):
                if not part.strip():
                    continue
                try:
                    value = float(part)
                except ValueError:
                    fail("temperature_choices", f"{part.strip()!r} is not a number")
                    continue
                problem = self._probe_setting("temperature", value)
                if problem:
                    fail("temperature_choices", f"{value:g}: {problem}")
                else:
                    values.append(value)
            values = list(dict.fromkeys(values))
            if len(values) == 1:
                draft.settings["temperature"] = values[0]
            elif values:
                draft.variables["temperature"] = temperature_var(choices=values)
            else:
                fail("temperature_choices", "no valid temperature: none is used")

        if s["demos"]:
            low, high = (int(v) for v in s["demos_k"])
            draft.variables["demos"] = demos_var(low if low == high else (low, high),
                                                 select=str(s["demos_select"]))

        lines = _dedupe([ln.strip() for ln in str(s["instructions"]).splitlines()
                         if ln.strip()])
        candidates = []
        for line in lines:
            if self._fits(draft, instructions=line):
                candidates.append(line)
            else:
                fail("instructions", f"{line[:40]!r} cannot be written in a spec")
        if len(candidates) == 1:
            draft.settings["instructions"] = candidates[0]
        elif candidates:
            draft.variables["instructions"] = instructions_var(candidates)

        for index, line in enumerate(str(s["constraints"]).splitlines()):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                Constraint(text)
            except ConstraintError as exc:
                fail("constraints", f"line {index + 1} `{text}`: {exc.reason} (column "
                                    f"{exc.column + 1})")
                continue
            if not self._fits(draft, constraints=[text]):
                fail("constraints", f"line {index + 1} `{text}`: cannot be written in a "
                                    f"spec")
                continue
            draft.constraints.append((index, text))

        if s["dataset"]:
            size = int(s["dataset_size"]) or None
            draft.dataset = DatasetRef(str(s["dataset"]), "val", size)
        for key in ("dollars", "trials", "minutes"):
            value = s[key]
            if value:
                try:
                    Budget(**{key: value})
                except ConfigurationError as exc:
                    fail(key, str(exc))
                    continue
                draft.budget[key] = value
        draft.strategy = str(s["strategy"])
        return draft

    @staticmethod
    def _choice(draft: _Draft, key: str, values: list[str], make: Any) -> None:
        if len(values) == 1:
            draft.settings[key] = values[0]
        elif values:
            draft.variables[key] = make(values)

    @staticmethod
    def _probe_setting(key: str, value: Any) -> str | None:
        """The parser's verdict on one setting alone (its first error, or None)."""
        fields = {"signature": DEFAULT_SIGNATURE, key: value}
        try:
            text = Spec(**fields).to_text()
        except ConfigurationError as exc:
            return str(exc)
        parsed = parse_spec(text)
        errors = _errors_of(parsed)
        if errors:
            return errors[0].message
        return None if getattr(parsed, key) == value else "does not survive being written"

    @staticmethod
    def _fits(draft: _Draft, **fields: Any) -> bool:
        """Whether a text value survives being written into a spec (YAML) and read back."""
        try:
            parsed = parse_spec(Spec(signature=draft.signature, **fields).to_text())
        except ConfigurationError:
            return False
        return all(getattr(parsed, key) == value for key, value in fields.items())

    def _settle(self, draft: _Draft, fail: Any) -> Spec:
        """Parse the assembled text; leave out each line the parser finds an error on
        (reporting it by its field), until none is left."""
        for _ in range(_MAX_PASSES):
            text = draft.text()
            spec = parse_spec(text)
            errors = _errors_of(spec)
            if not errors:
                return spec
            owners = _line_owners(text)
            targets: dict[tuple[str, Any], Diagnostic] = {}
            for d in errors:
                owner = owners.get(d.line)
                # an unsatisfiable set: leaving out the one constraint named may be enough
                if owner is None or owner in targets or (d.kind == "unsatisfiable" and any(
                        t.kind == "unsatisfiable" for t in targets.values())):
                    continue
                targets[owner] = d
            # constraints from the last one up, so the positions of the others hold
            ordered = sorted(targets.items(), key=lambda item: (
                (0, -int(item[0][1])) if item[0][0] == "constraint" else (1, 0)))
            dropped = [self._drop(draft, owner, d, fail) for owner, d in ordered]
            if not any(dropped):
                break
        fail("signature", "the form could not be made into a valid spec; only the "
                          "signature is kept")
        return parse_spec(Spec(signature=draft.signature).to_text())

    def _drop(self, draft: _Draft, owner: tuple[str, Any], d: Diagnostic, fail: Any) -> bool:
        """Leave out what wrote the line of error ``d``; False when nothing can be."""
        kind, what = owner
        if kind == "constraint":
            index, text = draft.constraints.pop(int(what))
            fail("constraints", f"line {index + 1} `{text}`: {d.message}")
            return True
        if kind == "variable":
            field = {"temperature": "temperature", "demos": "demos",
                     "instructions": "instructions", "model": "models",
                     "module": "modules", "adapter": "adapters"}.get(str(what), "signature")
            draft.variables.pop(str(what), None)
            fail(field, f"{d.message} (left out)")
            return True
        if what in ("model", "adapter", "module", "temperature", "instructions"):
            draft.settings.pop(what, None)
            fail(_OWNER[what], f"{d.message} (left out)")
            return True
        if what == "budget":
            key = "dollars" if "dollars" in draft.budget and "dollar" in d.message.lower() \
                else next(iter(draft.budget), None)
            if key is None:
                return False
            draft.budget.pop(key)
            fail(key, f"{d.message} (left out)")
            return True
        if what == "dataset" and draft.dataset is not None:
            if draft.dataset.size is not None:
                draft.dataset = DatasetRef(draft.dataset.name, draft.dataset.split, None)
                fail("dataset_size", f"{d.message} (all rows used)")
            else:
                draft.dataset = None
                fail("dataset", f"{d.message} (left out)")
            return True
        if what == "strategy" and draft.strategy != "auto":
            fail("strategy", f"{d.message} (auto used)")
            draft.strategy = "auto"
            return True
        if what == "name" and draft.name is not None:
            draft.name = None
            fail("name", f"{d.message} (left out)")
            return True
        return False

    # -- display ----------------------------------------------------------------------
    def _show(self, spec: Spec) -> None:
        from dspex_lab.variables._diagnostics import render_diagnostics_html

        for field, widget in self.messages.items():
            problems = self.errors.get(field, [])
            widget.value = "".join(
                f"<div style='color:#b00020;font-size:12px'>{html.escape(p)}</div>"
                for p in problems)
        self.output.value = self.spec_text
        try:
            size = spec.space(bind_demos=False).size
            shown = "continuous" if size is None else f"{size:,} valid configurations"
        except Exception as exc:  # the summary is a courtesy; the text is what matters
            shown = f"space: {exc}"
        left_out = sum(len(v) for v in self.errors.values())
        note = f"; {left_out} problem(s) left out (in red)" if left_out else ""
        self.summary.value = (f"<div style='font-size:12px;color:#555'>{html.escape(shown)}"
                              f"{html.escape(note)} · paste under <code>%%dspex</code> or "
                              f"<code>dx.parse_spec(text)</code></div>")
        self.diagnostics.value = render_diagnostics_html(spec.diagnostics)

    def __repr__(self) -> str:
        return f"SpaceBuilder(\n{self.spec_text})"
