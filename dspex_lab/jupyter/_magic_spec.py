"""``%%dspex [name]``: a cell holding a spec, and finding specs for ``%dspex optimize``.

A spec cell never raises on what the user wrote (``dx.parse_spec`` does not):
its diagnostics are shown with line, column, caret and fix. An ok spec is
bound as the :class:`dx.Spec` itself, so everything after the cell is plain
Python (``qa.build()``, ``qa.analyze()``, ``dx.optimize(qa)``), and its pre-flight
analysis is shown. Nothing is built at definition time: building creates LM
clients (a ``sim/`` model needs the simulator running), analysis does not.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from dspex_lab.jupyter._magic_args import is_name, valid_name
from dspex_lab.jupyter._magic_common import Notebook, fail, show

if TYPE_CHECKING:
    from dspex_lab.variables import Spec

__all__ = ["define", "find", "refuse"]

_DEFAULT_NAME = "spec"


def _target(name: str | None, spec: Spec) -> tuple[str, str | None]:
    """The variable to bind, and a note when the spec's own name could not be used."""
    if name is not None:
        return name, None
    if spec.name and is_name(spec.name):
        return spec.name, None
    if spec.name:
        return _DEFAULT_NAME, (f"the spec's name {spec.name!r} is not a Python variable name, "
                               f"so it is bound to `{_DEFAULT_NAME}`")
    return _DEFAULT_NAME, None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def refuse(spec: Spec, consequence: str) -> NoReturn:
    """Show a spec's diagnostics (text with carets, HTML in a notebook), then fail."""
    show(spec.render_diagnostics(), spec._repr_html_())
    fail(f"the spec has {_plural(len(spec.errors), 'error')} (shown above), so "
         f"{consequence}: fix them and run the cell again.")


def _show_analysis(target: str, spec: Spec, note: str | None) -> None:
    import html

    from dspex_lab.errors import DspexError

    head = (f"{target}: the spec{f' {spec.name!r}' if spec.name else ''} "
            f"({_plural(len(spec.variables), 'variable')}, "
            f"{_plural(len(spec.constraints), 'constraint')}); "
            f"run it with %dspex optimize {target}")
    if note:
        head += f"\nnote: {note}"
    head_html = "".join(f"<div>{html.escape(line)}</div>" for line in head.splitlines())
    try:
        analysis = spec.analyze()
    except DspexError as exc:  # the spec is bound either way; say why no estimate
        message = f"pre-flight analysis failed: {exc}"
        show(f"{head}\n{message}", f"{head_html}<div>{html.escape(message)}</div>")
        return
    text = f"{head}\n{analysis.text()}"
    if spec.diagnostics:
        text += "\n\n" + spec.render_diagnostics()
    show(text, head_html + analysis._repr_html_())


def define(nb: Notebook, name: str | None, cell: str) -> str:
    """Parse the cell as a spec; bind it (returning the variable) or show what is wrong."""
    import dspex_lab as dx

    if name is not None:
        valid_name(name, "the spec variable")
    spec = dx.parse_spec(cell)
    target, note = _target(name, spec)
    if not spec.ok:
        refuse(spec, f"`{target}` was not (re)defined")
    nb.bind(target, spec)
    _show_analysis(target, spec, note)
    return target


def _missing(nb: Notebook, name: str) -> NoReturn:
    import dspex_lab as dx

    specs = sorted({k for ns in nb.namespaces() for k, v in ns.items()
                    if isinstance(v, dx.Spec) and not k.startswith("_")})
    close = difflib.get_close_matches(name, specs, n=1)
    hint = (f" Did you mean `{close[0]}`?" if close
            else f" Specs in the notebook: {', '.join(specs)}." if specs else "")
    fail(f"no spec named `{name}` in the notebook: define it in a `%%dspex {name}` cell "
         f"(or `{name} = dx.parse_spec(text)`), or give a .yaml file.{hint}")


def find(nb: Notebook, name: str) -> Spec:
    """The ok spec a name refers to: a ``dx.Spec`` or spec text in the notebook, or a
    ``.yaml`` file. Anything else, or a spec with errors, fails with the reason."""
    import dspex_lab as dx

    found, value = nb.get(name)
    if not found and name.endswith((".yaml", ".yml")) and Path(name).is_file():
        found, value = True, dx.load_spec(name)
    if not found:
        _missing(nb, name)
    if isinstance(value, str):
        value = dx.parse_spec(value)
    if not isinstance(value, dx.Spec):
        fail(f"`{name}` is a {type(value).__name__}, not a spec: bind a dx.Spec (a "
             f"`%%dspex {name}` cell, or dx.parse_spec(text)) or spec text to it.")
    if not value.ok:
        refuse(value, "nothing was started")
    return value
