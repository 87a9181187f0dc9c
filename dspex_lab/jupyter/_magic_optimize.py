"""``%dspex optimize``: start ``dx.optimize`` on a spec and show the live monitor.

The magic adds nothing the Python API lacks: it finds the spec, lets options
override the spec's budget and strategy, calls ``dx.optimize`` (which returns at
once; the search runs on the library's background loop), binds the run and
displays it. Errors the user can fix (a budget the estimate exceeds, a bad
strategy, a missing simulator) become one-line messages.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from dspex_lab.jupyter._magic_args import valid_name
from dspex_lab.jupyter._magic_common import Notebook, display, fail
from dspex_lab.jupyter._magic_spec import find, refuse

if TYPE_CHECKING:
    from dspex_lab.optimize import Run
    from dspex_lab.variables import Budget, Spec

__all__ = ["cell_options", "optimize", "show_run"]


def cell_options(line: str, cell: str | None) -> str:
    """The option string of ``%%dspex optimize``: the line, then the body's lines
    (blank lines and ``#`` comments skipped)."""
    if not cell:
        return line
    body = [ln.strip() for ln in cell.splitlines()]
    body = [ln for ln in body if ln and not ln.startswith("#")]
    if any(not ln.startswith("-") for ln in body):
        fail("the body of %%dspex optimize holds options (such as --trials 5), one or more "
             "per line; define the spec in a %%dspex cell of its own first.")
    return " ".join([line, *body])


def _budget(spec: Spec, args: argparse.Namespace) -> Budget:
    """The spec's budget with the options given on the line in place of its own."""
    overrides: dict[str, Any] = {key: getattr(args, key) for key in ("trials", "dollars",
                                                                      "seconds")
                                 if getattr(args, key) is not None}
    if args.seconds is not None:
        overrides["minutes"] = None  # the time limit given replaces the spec's, not adds
    return dataclasses.replace(spec.budget, **overrides)


def _start(spec: Spec, budget: Budget, args: argparse.Namespace) -> Run:
    import dspex_lab as dx
    from dspex_lab.errors import DspexError
    from dspex_lab.variables import BudgetExceededError, SpecError

    options = {key: getattr(args, key) for key in ("strategy", "concurrency", "seed")
               if getattr(args, key) is not None}
    try:
        return dx.optimize(spec, budget=budget, force=args.force, **options)
    except BudgetExceededError as exc:
        fail(f"BudgetExceededError: {exc} (In the magic: add --force, raise --dollars or "
             f"lower --trials.)")
    except SpecError:
        refuse(spec, "nothing was started")
    except DspexError as exc:
        fail(f"{type(exc).__name__}: {exc}")


def show_run(run: Run) -> None:
    """Display the live monitor widget for a run; its HTML summary where there is none."""
    try:
        from dspex_lab.jupyter.monitor import RunMonitor
    except ModuleNotFoundError as exc:
        if exc.name != "dspex_lab.jupyter.monitor":
            raise
        # Explicit fallback: where the monitor module is absent (a partial install), the
        # run's own _repr_html_ summary is shown instead of the live widget.
        display(run)
        return
    try:
        monitor = RunMonitor(run)
    except Exception as exc:  # the run is started and bound: never lose it to a display bug
        print(f"The live monitor could not be shown ({type(exc).__name__}: {exc}); "
              f"the run goes on: {run.run_id}.", file=sys.stderr)
        display(run)
        return
    display(monitor)


def optimize(nb: Notebook, args: argparse.Namespace, default_name: str | None) -> Run:
    """Start the run, bind it to ``args.out`` and show it; returns the run."""
    name = args.name or default_name
    if name is None:
        fail("which spec? Write %dspex optimize NAME (no spec cell has run in this kernel).")
    out = valid_name(args.out, "the -o variable")
    spec = find(nb, name)
    run = _start(spec, _budget(spec, args), args)
    nb.bind(out, run)
    show_run(run)
    return run
