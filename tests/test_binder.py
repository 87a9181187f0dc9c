"""Binder: ``binder/`` installs the project into a fresh environment and the quickstart runs there.

repo2docker itself needs Docker, which these machines lack, so this test does what it
does, step by step, in a fresh virtual environment: ``pip install -r
binder/requirements.txt`` from the repository root, then ``binder/postBuild``, then the
quickstart notebook executed under ``binder/start`` (which serves the simulator and
makes it the default model). The kernel must be the fresh environment's interpreter,
and the default model must be the simulator started by ``binder/start``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from conftest_browser import ROOT, copy_notebook, free_port

pytestmark = [pytest.mark.slow]

BINDER = ROOT / "binder"
INSTALL_TIMEOUT_S = 900

_RUNNER = textwrap.dedent('''
    """Execute a notebook with nbclient in this interpreter's own kernel; print a summary."""
    import json, os, sys
    import nbformat
    from nbclient import NotebookClient

    path = sys.argv[1]
    nb = nbformat.read(path, as_version=4)
    probe = ("import json, os, sys\\n"
             "import dspex_lab.settings as s\\n"
             "print('PROBE' + json.dumps({'prefix': sys.prefix, "
             "'sim_url': os.environ.get('DSPEX_SIM_URL'), "
             "'default_model': s.default_lm().model}))")
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    print(json.dumps({"errors": len(errors), "cells": len(nb.cells), "probe": text}))
''')


def _run(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc.stdout


def test_binder_files_are_executable_and_name_python_311() -> None:
    for name in ("postBuild", "start"):
        assert os.access(BINDER / name, os.X_OK), f"binder/{name} must be executable"
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


@pytest.mark.timeout(1800)
def test_binder_installs_fresh_and_runs_the_quickstart(tmp_path: Path) -> None:
    env_dir = tmp_path / "binder-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    py = str(bin_dir / "python")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DSPEX_", "VIRTUAL_ENV", "JUPYTER", "PYTHON", "IPYTHON"))}
    env = {**base, "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}",
           "VIRTUAL_ENV": str(env_dir), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "JUPYTER_PLATFORM_DIRS": "1"}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        (tmp_path / name).mkdir()
        env[name] = str(tmp_path / name)

    _run([py, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], env,
         INSTALL_TIMEOUT_S)
    _run(["bash", "binder/postBuild"], env, INSTALL_TIMEOUT_S)
    # From another directory: in the checkout, `python -c` would import ./dspex_lab.
    where = _run([py, "-c", "import dspex_lab, sys; print(dspex_lab.__file__)"], env, 60,
                 cwd=tmp_path)
    assert where.strip().startswith(str(env_dir)), f"dspex_lab not installed in the env: {where}"
    # The JupyterLab extension comes with the wheel: no node on Binder.
    labext = env_dir / "share" / "jupyter" / "labextensions" / "dspex-lab" / "package.json"
    assert labext.is_file(), "binder's install lacks the prebuilt JupyterLab extension"

    work = tmp_path / "work"
    work.mkdir()
    notebook = copy_notebook("01-quickstart.ipynb", work)
    runner = tmp_path / "run_notebook.py"
    runner.write_text(_RUNNER)
    port = free_port()
    env["DSPEX_SIM_PORT"] = str(port)
    proc = subprocess.Popen(["bash", str(BINDER / "start"), py, str(runner), str(notebook)],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=400)
    finally:
        # binder/start leaves the simulator running in the background (as on Binder,
        # where it lives as long as the session): stop the whole process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.returncode == 0, f"quickstart failed under binder/start:\n{out[-3000:]}\n" \
                                 f"{err[-3000:]}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["errors"] == 0, summary
    probe = json.loads(summary["probe"].split("PROBE", 1)[1])
    assert Path(probe["prefix"]).resolve() == env_dir.resolve(), probe
    assert probe["sim_url"] == f"http://127.0.0.1:{port}/v1", probe
    assert probe["default_model"] == "sim/small", probe
    assert (work / "quickstart.duckdb").exists(), "the quickstart records into its store"
    assert sys.prefix != probe["prefix"]
