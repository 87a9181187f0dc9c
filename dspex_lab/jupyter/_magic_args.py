"""The arguments of each ``%dspex`` subcommand, declared with IPython's ``magic_arguments``.

One parser per subcommand gives each its own ``--help`` (``%dspex optimize --help``)
and turns every bad option into a ``UsageError`` (IPython shows those as one line,
never a traceback). The functions below are never called: they only carry the
declarations and the docstrings that become each subcommand's help.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shlex
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar, cast

from IPython.core import magic_arguments as _ma
from IPython.core.error import UsageError

__all__ = ["COMMANDS", "is_name", "overview", "parse", "peel_options", "usage", "valid_name"]

_F = TypeVar("_F", bound=Callable[..., Any])

# IPython's magic_arguments module has no annotations: these casts are its typed face.
_magic_arguments = cast(Callable[..., Callable[[_F], _F]], _ma.magic_arguments)
_argument = cast(Callable[..., Callable[[_F], _F]], _ma.argument)


def _positive_int(text: str) -> int:
    """An option that counts something (trials, concurrency): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    """An option that limits something (dollars, seconds): a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


_HELP = _argument("-h", "--help", action="store_true", help="show this help and do nothing")


@_magic_arguments(name="%dspex [spec]")
@_argument("name", nargs="?", default=None,
           help="the variable to bind the spec to (default: the spec's name:, else 'spec')")
@_HELP
def _spec() -> None:
    """Define a spec from the cell body (YAML, see docs/spec.md): show its diagnostics
    with line, column and fix, or bind it and show the pre-flight analysis."""


@_magic_arguments(name="dspex optimize")
@_argument("name", nargs="?", default=None,
           help="a dx.Spec (or spec text) in the notebook, or a .yaml file "
                "(default: the last spec defined in a spec cell)")
@_argument("--trials", type=_positive_int, default=None,
           help="trial budget (overrides the spec's)")
@_argument("--dollars", type=_positive_float, default=None,
           help="dollar budget (overrides the spec's)")
@_argument("--seconds", type=_positive_float, default=None,
           help="time budget (overrides the spec's)")
@_argument("--strategy", default=None,
           help="auto, grid, random, tpe, nsga2, gp or surrogate (overrides the spec's)")
@_argument("--concurrency", type=_positive_int, default=None, help="trials at once (default 4)")
@_argument("--seed", type=int, default=None, help="seed of the search")
@_argument("--force", action="store_true",
           help="start even when the pre-flight estimate exceeds the dollar budget")
@_argument("-o", "--out", default="_dspex_run", metavar="VAR",
           help="bind the run to this variable (default _dspex_run)")
@_HELP
def _optimize() -> None:
    """Start dx.optimize on a spec and show the live run monitor; returns at once (the run
    goes on in the background). In the cell form the cell body may hold more options."""


@_magic_arguments(name="dspex sql")
@_argument("query", nargs="*", help="line form: the query, after the options (cell form: "
                                    "the cell body)")
@_argument("-o", "--out", default=None, metavar="VAR", help="bind the DataFrame to VAR")
@_argument("--store", default=None, metavar="PATH",
           help="read this store file (default: the one being recorded into)")
@_HELP
def _sql() -> None:
    """Query the store (read-only) with dx.sql; the DataFrame is shown. {name}, {obj.attr}
    and :name in the query are bound parameters taken from the notebook (never pasted
    into the SQL). Line form: %dspex sql [-o VAR] [--store PATH] select ..."""


@_magic_arguments(name="dspex runs")
@_argument("--store", default=None, metavar="PATH",
           help="read this store file (default: the one being recorded into)")
@_HELP
def _runs() -> None:
    """The runs in the store, newest first, with the live state of the runs of this kernel."""


@_magic_arguments(name="dspex stop")
@_argument("run_id", nargs="?", default=None,
           help="the run to stop (default: the latest running run of this kernel)")
@_argument("--all", action="store_true", help="stop every running run of this kernel")
@_HELP
def _stop() -> None:
    """Stop a run of this kernel: no new trial starts; trials in flight finish their slice."""


@_magic_arguments(name="dspex store")
@_argument("path", nargs="?", default=None, help="record into this DuckDB file from now on")
@_argument("--off", action="store_true", help="turn recording off")
@_HELP
def _store() -> None:
    """Show the store being recorded into, or switch it (dx.configure(store=...))."""


@_magic_arguments(name="dspex export")
@_argument("run", nargs="?", default=None,
           help="a variable bound to a Run, a run id, or a store file (default: the latest "
                "run of this kernel, else of the store; with --store, of that file)")
@_argument("-o", "--out", default="app.py", metavar="APP",
           help="the app file; its data goes next to it as APP_data.duckdb (default app.py)")
@_argument("--report", default=None, metavar="HTML", help="also write a static HTML report")
@_argument("--no-app", action="store_true", help="write only the report (with --report)")
@_argument("--store", default=None, metavar="PATH",
           help="read the run from this store file (default: the one being recorded into)")
@_argument("--overwrite", action="store_true", help="replace files that exist")
@_HELP
def _export() -> None:
    """Export a run as a standalone Panel app (panel serve APP) with its own data file, and
    optionally as a static HTML report; secrets are blanked (dx.export_app,
    dx.export_report)."""


COMMANDS: dict[str, Callable[..., Any]] = {
    "spec": _spec, "optimize": _optimize, "sql": _sql, "runs": _runs, "stop": _stop,
    "store": _store, "export": _export,
}
"""Subcommand -> the function carrying its declarations."""


def _plain(text: str) -> str:
    """IPython's help formatter opens usage with an RST ``::`` block; print it plainly."""
    return text.removeprefix("::\n\n").lstrip()


def usage(command: str) -> str:
    """The full help of one subcommand (argparse's usage, description and options)."""
    return "usage: " + _plain(str(COMMANDS[command].__doc__))


def parse(command: str, argstring: str) -> argparse.Namespace | None:
    """Parse a subcommand's options; None after printing the help for ``-h``/``--help``."""
    parser = cast(argparse.ArgumentParser, COMMANDS[command].parser)  # type: ignore[attr-defined]
    try:
        argv = shlex.split(argstring)  # POSIX quoting: `--store 'my runs.duckdb'`
    except ValueError as exc:
        raise UsageError(f"{exc} in: {argstring}") from None
    args = parser.parse_args(argv)  # a magic_arguments parser: errors are UsageErrors
    if args.help:
        print(usage(command))
        return None
    return args


def overview() -> str:
    """``%dspex --help``: every subcommand's usage line and what it does."""
    lines = ["%dspex / %%dspex: notebook shells over the dspex_lab Python API.", ""]
    for func in COMMANDS.values():
        parser = cast(argparse.ArgumentParser, func.parser)  # type: ignore[attr-defined]
        lines.append(textwrap.fill(" ".join(_plain(parser.format_usage()).split()),
                                   width=88, subsequent_indent="        "))
        lines.append(textwrap.fill(" ".join((parser.description or "").split()), width=88,
                                   initial_indent="    ", subsequent_indent="    "))
    lines += ["", "Details: %dspex <command> --help (e.g. %dspex optimize --help)."]
    return "\n".join(lines)


_OPTION_VALUE = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")
_WITH_VALUE = frozenset({"-o", "--out", "--store"})


def peel_options(line: str) -> tuple[str, str]:
    """Split ``-o df --store x.duckdb select ...`` into the leading options and the rest,
    which is kept verbatim (splitting SQL like a shell line would eat its quotes)."""
    pos, options = 0, []
    while True:
        m = _OPTION_VALUE.match(line, pos)
        if m is None or not m.group(1).startswith("-"):
            break
        options.append(m.group(1))
        pos = m.end()
        if m.group(1) in _WITH_VALUE:
            value = _OPTION_VALUE.match(line, pos)
            if value is not None:
                options.append(value.group(1))
                pos = value.end()
    return " ".join(options), line[pos:].strip()


def is_name(name: str) -> bool:
    """Whether ``name`` can be a Python variable."""
    return name.isidentifier() and not keyword.iskeyword(name)


def valid_name(name: str, what: str) -> str:
    """``name`` if it can be a Python variable, else a UsageError saying so."""
    if not is_name(name):
        raise UsageError(f"{what} {name!r} is not a valid Python variable name.")
    return name
