"""Every notebook in ``notebooks/`` runs top to bottom, offline, without an error.

Each is executed in memory with nbclient (nothing is written back into the repo) in
a fresh kernel of this interpreter, from a temporary working directory (so the store
files a notebook creates next to itself land there). A cell that raises, an ``error``
output or a traceback on stderr fails the test; so does a kernel that is not this
interpreter (checked by a probe cell appended in memory). The only cells allowed to
fail are those tagged ``raises-exception`` (deliberate mistakes, which JupyterLab's
"Run All" also runs past): they must show diagnostics and end in a one-line
``UsageError``, nothing worse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest_browser import ANSI, NOTEBOOKS, execute_notebook, jupyter_env

if TYPE_CHECKING:
    from nbformat import NotebookNode

pytestmark = [pytest.mark.slow]

CELL_TIMEOUT_S = 120  # one cell; a whole notebook stays well under 2 minutes
NOTEBOOK_LIMIT_S = 120
EXPECTED = [
    "01-quickstart.ipynb",
    "02-variables-and-spec.ipynb",
    "03-multi-objective.ipynb",
    "04-sql-analysis.ipynb",
    "05-local-model.ipynb",
]
# Notebooks that need the real local model run in their own test
# (tests/test_notebook_local_model.py, marked local_model), which checks their results.
OWN_TEST = {"05-local-model.ipynb"}
_PROBE = "import json, sys; print(json.dumps({'prefix': sys.prefix, 'exe': sys.executable}))"
_MISTAKE_TAG = "raises-exception"


def _read(path: Path) -> NotebookNode:
    import nbformat

    return nbformat.read(path, as_version=4)


def test_the_notebooks_are_all_there() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == EXPECTED, names


def test_notebooks_are_committed_clean() -> None:
    """Valid, without outputs (they belong to a run, not to the repo), on kernel python3."""
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = _read(path)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name} cell {i} has stored outputs"
                assert cell.execution_count is None, f"{path.name} cell {i}"
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
        # the first code cell starts the simulator (or the local model): every notebook
        # runs offline
        first = next(c for c in nb.cells if c.cell_type == "code")
        starter = "local_model.ensure_running(" if path.name in OWN_TEST else "sim.start("
        assert starter in first.source, f"{path.name}: {first.source!r}"


def _text(out: Any) -> str:
    if out.output_type == "stream":
        return str(out.text)
    if out.output_type == "error":
        return f"{out.ename}: {out.evalue}"
    return str(out.get("data", {}).get("text/plain", ""))


def _problems(nb: NotebookNode) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        if _MISTAKE_TAG in cell.get("metadata", {}).get("tags", []):
            shown = "\n".join(_text(o) for o in outputs)
            if "error[" not in shown:
                found.append(f"cell {i} (a deliberate mistake) shows no diagnostic:\n{shown}")
            for out in outputs:
                if out.output_type == "error" and out.ename != "UsageError":
                    found.append(f"cell {i}: {out.ename}: {out.evalue}")
            continue
        for out in outputs:
            if out.output_type == "error":
                found.append(f"cell {i}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr" \
                    and ("Traceback" in out.text or "UsageError" in out.text):
                found.append(f"cell {i}: on stderr:\n{out.text}")
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [n for n in EXPECTED if n not in OWN_TEST])
def test_notebook_runs_top_to_bottom(name: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    jupyter_env(monkeypatch, tmp_path / "env")
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = _read(NOTEBOOKS / name)
    n_cells = len(nb.cells)
    _, elapsed = execute_notebook(nb, name, workdir, _PROBE, cell_timeout=CELL_TIMEOUT_S)

    problems = _problems(nb)
    assert not problems, "\n".join(ANSI.sub("", p) for p in problems)
    # every code cell ran (none skipped)
    for i, cell in enumerate(nb.cells[:n_cells]):
        if cell.cell_type == "code" and cell.source.strip():
            assert cell.execution_count is not None, f"{name} cell {i} did not run"
    # the store went to the working directory (next to the notebook), not elsewhere
    assert list(workdir.glob("*.duckdb")), "the notebook recorded no store next to itself"
    assert elapsed < NOTEBOOK_LIMIT_S, f"{name} took {elapsed:.1f} s"
    print(f"{name}: {elapsed:.1f} s")
