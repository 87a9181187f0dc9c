"""``%dspex`` / ``%%dspex``: notebook shells over the Python API.

``%load_ext dspex_lab`` registers one line-and-cell magic with subcommands:

- ``%%dspex [name]`` (or ``%%dspex spec [name]``): the cell is a spec
  (``dx.parse_spec``); its diagnostics, or the spec bound to ``name`` and its
  pre-flight analysis.
- ``%dspex optimize [name] [--trials N] [--dollars X] [--seconds S] [--strategy S]
  [--concurrency N] [--seed N] [--force] [-o var]``: ``dx.optimize`` with the
  live run monitor; returns at once.
- ``%%dspex sql [-o var] [--store PATH]``: ``dx.sql`` with ``{name}`` / ``:name``
  bound as parameters.
- ``%dspex runs``, ``%dspex stop [run_id]``, ``%dspex store [path]``.
- ``%dspex export [run] [-o app.py] [--report report.html] [--overwrite]``:
  ``dx.export_app`` / ``dx.export_report``.

Every subcommand has ``--help``; ``%dspex --help`` lists them. Mistakes end
in one line (``UsageError``), never a traceback. Loading costs nothing heavy:
this module imports IPython (already loaded in a kernel) and the standard
library; dspex_lab's own layers, pandas and DuckDB load when a subcommand
needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import (
    Magics,
    line_cell_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
)

from dspex_lab.jupyter._magic_args import COMMANDS, overview, parse
from dspex_lab.jupyter._magic_common import Notebook, fail

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["DspexMagics", "register", "unregister"]

_NO_BODY = ("runs", "stop", "store", "export")


def _split(line: str) -> tuple[str, str]:
    """The first word (a subcommand, or a spec's name) and the rest of the line."""
    parts = line.strip().split(None, 1)
    return (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")


def _expand(text: str, nb: Notebook) -> str:
    """``{var}`` / ``$var`` in options, as IPython expands any magic line.

    The magic is marked ``no_var_expand`` so IPython never formats values into SQL;
    every subcommand but ``sql`` gets the usual expansion back here.
    """
    if "$" not in text and "{" not in text:
        return text
    from IPython.utils.text import DollarFormatter

    ns: dict[str, Any] = {}
    for namespace in reversed(nb.namespaces()):
        ns.update(namespace)
    try:
        return str(DollarFormatter().vformat(text, args=[], kwargs=ns))
    except Exception:  # IPython's rule: a line that does not expand is used as written
        return text


@magics_class
class DspexMagics(Magics):
    """The ``dspex`` magic; remembers the last spec defined, for ``%dspex optimize``."""

    def __init__(self, shell: InteractiveShell | None = None) -> None:
        super().__init__(shell=shell)
        self.last_spec: str | None = None

    @no_var_expand
    @needs_local_scope
    @line_cell_magic
    def dspex(self, line: str, cell: str | None = None,
              local_ns: dict[str, Any] | None = None) -> Any:
        """%dspex / %%dspex: spec cells, optimize, sql, runs, stop, store, export.

        %dspex --help lists the subcommands; %dspex <command> --help explains one.
        """
        assert self.shell is not None
        nb = Notebook(self.shell.user_ns, local_ns)
        command, rest = _split(line)
        if command in ("-h", "--help", "help") or (not command and cell is None):
            print(overview())
            return None
        if command == "sql":  # never expanded: values are bound as parameters
            from dspex_lab.jupyter._magic_store import sql

            return sql(nb, rest, cell)
        if command in COMMANDS:
            return self._command(nb, command, _expand(rest, nb), cell)
        if cell is None:
            fail(f"unknown command {command!r}: commands are {', '.join(COMMANDS)} "
                 f"(%dspex --help); a spec is defined in a cell: %%dspex {command}.")
        return self._define(nb, _expand(line, nb), cell)

    def _define(self, nb: Notebook, line: str, cell: str) -> None:
        from dspex_lab.jupyter._magic_spec import define

        args = parse("spec", line)
        if args is not None:
            self.last_spec = define(nb, args.name, cell)

    def _command(self, nb: Notebook, command: str, rest: str, cell: str | None) -> Any:
        if command == "spec":
            if cell is None:
                fail("a spec is defined in a cell: %%dspex spec [name], then the YAML.")
            return self._define(nb, rest, cell)
        if command in _NO_BODY and cell is not None and cell.strip():
            fail(f"%%dspex {command} takes no cell body; to define a spec named {command}, "
                 f"write %%dspex spec {command}.")
        if command == "optimize":
            from dspex_lab.jupyter._magic_optimize import cell_options, optimize

            args = parse(command, cell_options(rest, cell))
            if args is not None:
                optimize(nb, args, self.last_spec)
            return None
        from dspex_lab.jupyter import _magic_store

        args = parse(command, rest)
        if args is None:
            return None
        if command == "runs":
            return _magic_store.runs(args)
        if command == "stop":
            _magic_store.stop(nb, args)
            return None
        if command == "export":
            from dspex_lab.jupyter._magic_export import export

            export(nb, args)
            return None
        _magic_store.store(args)
        return None


def register(ipython: InteractiveShell) -> None:
    """Register (or re-register) the magics on a shell; imports nothing heavy."""
    ipython.register_magics(DspexMagics)


def unregister(ipython: InteractiveShell) -> None:
    """Remove the magics (``%unload_ext dspex_lab``)."""
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("dspex", None)
    manager.registry.pop(DspexMagics.__name__, None)
