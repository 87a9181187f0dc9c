"""Helpers shared by the notebook, browser and kernel tests (imported, not a conftest).

Every Jupyter process these tests start gets its own configuration, data, runtime and
IPython directories, and a ``python3`` kernelspec whose ``argv[0]`` is this
interpreter (``sys.executable``), found first through ``JUPYTER_PATH``: a kernelspec
in the user's home or in another environment can never hijack the kernel, and the
kernel imports the ``dspex_lab`` under test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

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


def copy_notebook(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copy(NOTEBOOKS / name, target)
    return target
