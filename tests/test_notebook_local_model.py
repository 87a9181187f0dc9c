"""Notebook 05 runs top to bottom on the real local model, and its accuracy lift is real.

Executed in memory with nbclient in a fresh kernel of this interpreter (the pattern of
``test_notebooks.py``), from a temporary working directory and with a private
local-model state folder, so the kernel starts (and owns) its own server. A probe cell
appended in memory reads the notebook's own numbers; nothing is hard-coded.

Measured (2-core machine shared with other jobs, load 2-6): the zero-shot baseline
scored 0% on the 20 test questions in every run; the tuned configuration (JSON
adapter, three demos) 65-70%; the whole notebook took ~2.5-3 minutes. The bound below
(a lift of at least 30 points) sits about three standard errors under what was
measured with 20 questions, so it fails only if the optimization really stopped
helping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest_browser import ANSI, NOTEBOOKS, execute_notebook, jupyter_env
from test_local_model import require_local_model, wait_gone

from dspex_lab.local_model import STATE_DIR_ENV

if TYPE_CHECKING:
    from nbformat import NotebookNode

pytestmark = [pytest.mark.slow, pytest.mark.local_model]

NAME = "05-local-model.ipynb"
CELL_TIMEOUT_S = 300  # the search cell: ~2 minutes on a busy machine
NOTEBOOK_LIMIT_S = 300  # measured ~150-180 s; CI machines are shared
MIN_LIFT = 0.30
MAX_BASELINE = 0.15
_PROBE = """
import json, sys
print(json.dumps({"prefix": sys.prefix, "baseline": baseline.score, "tuned": tuned.score,
                  "lift": lift, "val_best": best_trial.values["accuracy"],
                  "params": best_trial.params, "trials": len(run.trial_list()),
                  "server_pid": server.pid, "server_owner": server.owner_pid}, default=str))
"""


def _read() -> NotebookNode:
    import nbformat

    return nbformat.read(NOTEBOOKS / NAME, as_version=4)


def _errors(nb: NotebookNode) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {i}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr" and "Traceback" in out.text:
                found.append(f"cell {i}: on stderr:\n{out.text}")
    return found


def test_notebook_is_committed_clean_and_tagged() -> None:
    import nbformat

    nb = _read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "local_model.ensure_running" in code[0].source  # starts the real model first
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "TRIALS" in tagged[0].source
    assert "run_figures(run)" in code[-1].source


@pytest.mark.timeout(900)
def test_notebook_runs_and_the_optimization_lifts_accuracy(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    require_local_model()
    jupyter_env(monkeypatch, tmp_path / "env")
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "local-model"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = _read()
    n_cells = len(nb.cells)
    probe, elapsed = execute_notebook(nb, NAME, workdir, _PROBE, cell_timeout=CELL_TIMEOUT_S)

    problems = _errors(nb)
    assert not problems, "\n".join(ANSI.sub("", p) for p in problems)
    for i, cell in enumerate(nb.cells[:n_cells]):
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"cell {i} did not run"
    print(f"{NAME}: {elapsed:.1f} s; {json.dumps(probe)}")

    # the lift is real: measured on held-out questions, against the zero-shot baseline
    assert probe["baseline"] <= MAX_BASELINE, probe
    assert probe["lift"] >= MIN_LIFT, probe
    assert probe["tuned"] == pytest.approx(probe["baseline"] + probe["lift"])
    assert probe["trials"] >= 6, probe
    # the saved notebook shows the conclusion and the static figure
    text = "\n".join(str(o.get("text", "")) for c in nb.cells for o in c.get("outputs", []))
    assert "held-out test questions it answers" in text
    assert any("image/png" in o.get("data", {}) for o in nb.cells[n_cells - 1].outputs)
    # the kernel started the server, so it owned it; shutting the kernel down stopped it
    assert probe["server_owner"] is not None
    assert wait_gone(probe["server_pid"], 15), "the kernel's server outlived the kernel"
    assert list(workdir.glob("*.duckdb")), "the notebook recorded no store next to itself"
    assert elapsed < NOTEBOOK_LIMIT_S, f"{NAME} took {elapsed:.1f} s"
