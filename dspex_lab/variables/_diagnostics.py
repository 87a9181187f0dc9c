"""What static analysis reports: :class:`Diagnostic`, and the error raised with them.

A diagnostic points at a 1-based line and column of the spec text, says how
bad it is (``error``, ``warning``, ``info``), names its kind with a stable
code (``unknown-key``, ``bad-range``, ... — the full list is in
``docs/spec.md`` and :data:`KINDS`), explains itself and, when there is an
obvious one, suggests a fix. It renders as text with the source line and a
caret under the column, and as HTML for the notebook.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from dspex_lab.errors import ConfigurationError

__all__ = ["KINDS", "Diagnostic", "Severity", "SpecError", "render_diagnostics",
           "render_diagnostics_html"]

Severity = Literal["error", "warning", "info"]

KINDS: dict[str, str] = {
    # text and structure
    "not-text": "the spec is not text",
    "yaml-syntax": "the text is not valid YAML",
    "not-mapping": "the spec (or a part of it) is not the mapping expected there",
    "unknown-key": "a key the spec language does not have (with a did-you-mean)",
    "duplicate-key": "the same key twice in one mapping (YAML would keep the last)",
    "missing-key": "a required key is absent",
    "wrong-type": "a value of the wrong type (text where a number belongs, ...)",
    "bad-value": "a value of the right type that is not allowed here",
    # variables
    "bad-range": "a range with low > high, or a log range that is not positive",
    "empty-choices": "a choice list with nothing in it",
    "duplicate-choice": "the same value twice in a choice list",
    "bad-default": "a default outside the variable's values, or defaults that violate a "
                   "constraint",
    "free-variable": "a variable that is no config key (read it from the assignment); "
                     "reported when it looks like a misspelled key",
    "no-demo-pool": "a demos variable with no pool to draw from yet",
    "module-target": "variables that target module paths the spec's own program cannot have",
    # constraints and conditions
    "constraint-syntax": "a constraint or `when` expression that does not parse",
    "unknown-variable": "an expression names no variable, derived name or fixed setting",
    "unknown-value": "an expression compares a variable with a value it can never take",
    "type-mismatch": "an expression compares values of types that never compare",
    "when-cycle": "conditional variables that depend on each other in a cycle",
    "unsatisfiable": "constraints that together leave no valid configuration",
    "maybe-unsatisfiable": "no valid configuration was found by sampling a space too large "
                           "to enumerate",
    "redundant-constraint": "a constraint that rejects nothing",
    "dead-variable": "a variable the constraints never activate, or pin to one value",
    "dead-value": "a choice no valid configuration can use",
    # the program
    "signature-error": "the signature does not parse",
    "unknown-model": "a model neither the price map nor the built-in catalogue knows",
    "unknown-dataset": "a dataset name that is not built in",
    "unknown-metric": "a metric name that does not exist",
    # optimization
    "unknown-objective": "an objective the optimizer does not measure",
    "objective-mismatch": "weights and objectives that do not name the same things",
    "bad-weights": "weights that do not sum to 1 (they are normalised)",
    "strategy-mismatch": "a strategy that cannot work on this space or budget",
    "budget-too-small": "a budget that cannot pay for one trial",
    "budget-exceeded": "an estimated spend above the dollar budget",
    "internal-error": "the analyser itself failed (a bug: please report it)",
}
"""Every diagnostic kind and what it means."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of static analysis, positioned in the spec text.

    ``line`` and ``column`` are 1-based (column counts characters);
    ``source_line`` is the text of that line (empty when unknown) so the
    diagnostic renders on its own.
    """

    line: int
    column: int
    severity: Severity
    kind: str
    message: str
    fix: str | None = None
    source_line: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        """``line:column: severity[kind]: message``, the source line, a caret, the fix."""
        head = f"{self.line}:{self.column}: {self.severity}[{self.kind}]: {self.message}"
        parts = [head]
        if self.source_line:
            shown = self.source_line.replace("\t", " ")
            parts.append(f"  {shown}")
            parts.append(f"  {' ' * max(0, self.column - 1)}^")
        if self.fix:
            parts.append(f"  fix: {self.fix}")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.render()

    def _html_row(self) -> str:
        color = {"error": "#b00020", "warning": "#a15c00", "info": "#1f5fa8"}[self.severity]
        snippet = ""
        if self.source_line:
            pad = " " * max(0, self.column - 1)
            snippet = (f"<pre style='margin:2px 0'>{html.escape(self.source_line)}\n"
                       f"{pad}<span style='color:{color}'>^</span></pre>")
        fix = f"<div><i>fix:</i> {html.escape(self.fix)}</div>" if self.fix else ""
        return (f"<tr><td style='text-align:left;vertical-align:top'>{self.line}:{self.column}"
                f"</td><td style='text-align:left;vertical-align:top;color:{color}'>"
                f"{self.severity}</td><td style='text-align:left;vertical-align:top'>"
                f"<code>{html.escape(self.kind)}</code></td><td style='text-align:left'>"
                f"{html.escape(self.message)}{snippet}{fix}</td></tr>")

    def _repr_html_(self) -> str:
        return render_diagnostics_html([self])


def render_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    """Every diagnostic rendered as text, in order, separated by blank lines."""
    return "\n\n".join(d.render() for d in diagnostics)


def render_diagnostics_html(diagnostics: Sequence[Diagnostic]) -> str:
    """An HTML table of diagnostics (empty string when there are none)."""
    if not diagnostics:
        return ""
    rows = "".join(d._html_row() for d in diagnostics)
    return ("<table><thead><tr><th>where</th><th>severity</th><th>kind</th><th>message</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


class SpecError(ConfigurationError):
    """A spec with errors was used (built, run or parsed with ``strict=True``).

    ``diagnostics`` holds every diagnostic; the message renders the errors
    with their carets.
    """

    kind = "spec"

    def __init__(self, diagnostics: Sequence[Diagnostic], what: str = "The spec") -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        shown = errors or self.diagnostics
        noun = "error" if len(errors) == 1 else "errors"
        super().__init__(f"{what} has {len(errors)} {noun}:\n\n{render_diagnostics(shown)}")
