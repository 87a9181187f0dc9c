"""Helpers shared by the notebook, browser and kernel tests (imported, not a conftest).

Every Jupyter process these tests start gets its own configuration, data, runtime and
IPython directories, and a ``python3`` kernelspec whose ``argv[0]`` is this
interpreter (``sys.executable``), found first through ``JUPYTER_PATH``: a kernelspec
in the user's home or in another environment can never hijack the kernel, and the
kernel imports the ``dspex_lab`` under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"  # gitignored; CI can upload it
CHROMIUM = Path("/usr/bin/chromium")
# Chromium flags known to work on these machines (no sandbox as root, no background
# network: the closed network refuses Chromium's connections otherwise).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# Variables a parent test session may have set that must not leak into a kernel: the
# notebooks start their own simulator and choose their own store.
_LEAKY = ("DSPEX_SIM_URL", "DSPEX_STORE", "JUPYTER_PREFER_ENV_PATH")


def write_kernelspec(jupyter_path: Path, name: str = "python3") -> Path:
    """A kernelspec running this interpreter, under ``jupyter_path/kernels/name``."""
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({Path(sys.prefix).name}, tests)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir


def jupyter_env(monkeypatch: pytest.MonkeyPatch, base: Path) -> dict[str, str]:
    """Point every Jupyter and IPython directory of this test (and of the processes it
    starts) into ``base``, with this interpreter's kernelspec first on JUPYTER_PATH.
    Returns the variables set."""
    dirs = {
        "JUPYTER_PATH": base / "jupyter-path",
        "JUPYTER_CONFIG_DIR": base / "jupyter-config",
        "JUPYTER_DATA_DIR": base / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": base / "jupyter-runtime",
        "IPYTHONDIR": base / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    write_kernelspec(dirs["JUPYTER_PATH"])
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    env = {k: str(v) for k, v in dirs.items()}
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # ipykernel's debugger warning
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    """Skip when there is no Chromium, but only outside CI: in CI its absence fails."""
    if CHROMIUM.exists():
        return
    if in_ci():
        pytest.fail(f"{CHROMIUM} is missing in CI: run scripts/install_browser.sh first")
    pytest.skip(f"{CHROMIUM} is missing (install it with scripts/install_browser.sh); "
                f"outside CI the browser test is skipped")


ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""Terminal colour codes (tracebacks from a kernel carry them)."""


def execute_notebook(nb: Any, name: str, workdir: Path, probe: str, *, cell_timeout: float
                     ) -> tuple[dict[str, Any], float]:
    """Run ``nb`` in place, in a fresh ``python3`` kernel started from ``workdir``, with
    the ``probe`` cell appended (it must print one JSON object); fail the test with the
    cell's error if one raises. Returns the probe's JSON and the seconds it took.

    Also checks what every notebook test relies on: the kernel is this interpreter
    (its prefix), not one from another environment."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=cell_timeout, startup_timeout=60,
        allow_errors=False, resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name} failed:\n{ANSI.sub('', str(exc))}")
    elapsed = time.perf_counter() - start
    found: dict[str, Any] = json.loads(nb.cells[-1].outputs[0].text)
    assert Path(found["prefix"]).resolve() == Path(sys.prefix).resolve(), found
    return found, elapsed


def copy_notebook(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copy(NOTEBOOKS / name, target)
    return target


@dataclass
class Lab:
    """A JupyterLab server of a test: its URL, token, root directory, log and process."""

    url: str
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def start_lab(base: Path, root: Path, monkeypatch: pytest.MonkeyPatch,
              timeout: float = 90.0) -> Lab:
    """Start JupyterLab headless on loopback over ``root`` with every Jupyter directory
    under ``base`` (see :func:`jupyter_env`); returns once it answers. Stop it with
    :func:`stop_lab`."""
    env_vars = jupyter_env(monkeypatch, base / "env")
    port, token = free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.shutdown_no_activity_timeout=600",  # never outlive a lost test
        "--MappingKernelManager.shutdown_wait_time=3",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, **env_vars}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log, proc)
    try:
        _wait_ready(lab, timeout)
    except BaseException:
        stop_lab(lab)
        raise
    return lab


def _wait_ready(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {lab.proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{lab.log_tail()}")


def stop_lab(lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels first), then make sure."""
    if lab.proc.poll() is None:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            lab.api("/api/shutdown", method="POST")
        try:
            lab.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.proc.terminate()
            try:
                lab.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                lab.proc.kill()
                lab.proc.wait(timeout=10)
