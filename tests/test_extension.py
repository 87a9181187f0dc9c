"""The JupyterLab extension as shipped: a current production build, in the wheel.

The extension's sources live in ``extension/``; their production build is committed
at ``dspex_lab/labextension/`` (``scripts/build_extension.sh``) so that no user and no
CI machine needs node. These tests keep that arrangement honest: the build matches
the sources (a recorded hash), it is a production build, its version and subcommands
match the Python side, the environment's JupyterLab sees it, and ``pip wheel .``
carries it to ``share/jupyter/labextensions/dspex-lab``. The highlighting itself is
tested in a live JupyterLab (``tests/test_browser_extension.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
BUILD = ROOT / "dspex_lab" / "labextension"
NAME = "dspex-lab"  # the npm package name: the labextension's directory
SHARE = f"share/jupyter/labextensions/{NAME}"
REBUILD = "run scripts/build_extension.sh and commit dspex_lab/labextension"


def _source_hash_module() -> ModuleType:
    """``extension/source_hash.py``: the one definition of the hash, shared with the
    build script (a developer tool, not part of the package)."""
    spec = importlib.util.spec_from_file_location("_dspex_source_hash",
                                                  EXTENSION / "source_hash.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_files() -> dict[str, bytes]:
    return {p.relative_to(BUILD).as_posix(): p.read_bytes()
            for p in sorted(BUILD.rglob("*")) if p.is_file()}


def test_build_matches_the_sources() -> None:
    info_path = BUILD / "build.json"
    assert info_path.is_file(), f"{info_path} is missing: {REBUILD}"
    info = json.loads(info_path.read_text())
    current = _source_hash_module().source_hash(EXTENSION)
    assert info["source_sha256"] == current, (
        f"extension/ changed since dspex_lab/labextension was built "
        f"(recorded {info['source_sha256'][:12]}, sources now {current[:12]}): {REBUILD}")


def test_the_hash_covers_every_source_and_notices_a_change(tmp_path: Path) -> None:
    hashing = _source_hash_module()
    files = [p.relative_to(EXTENSION).as_posix() for p in hashing.source_files(EXTENSION)]
    for name in ("package.json", "tsconfig.json", "yarn.lock", "src/index.ts", "src/spec.ts",
                 "style/base.css"):
        assert name in files
    assert not any(f.startswith(("node_modules/", "lib/")) for f in files)
    copy = tmp_path / "extension"
    for name in hashing.SOURCES:
        src = EXTENSION / name
        if src.is_dir():
            shutil.copytree(src, copy / name)
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy(src, copy / name)
    before = hashing.source_hash(copy)
    assert before == hashing.source_hash(EXTENSION)
    (copy / "style" / "base.css").write_text((copy / "style" / "base.css").read_text() + "\n")
    assert hashing.source_hash(copy) != before
    # line endings alone (a CRLF checkout) do not count as a change
    (copy / "style" / "base.css").write_bytes(
        (EXTENSION / "style" / "base.css").read_bytes().replace(b"\n", b"\r\n"))
    assert hashing.source_hash(copy) == before


def test_committed_build_is_a_production_build() -> None:
    info = json.loads((BUILD / "build.json").read_text())
    assert info["mode"] == "production", f"a {info['mode']} build is committed: {REBUILD}"
    files = _build_files()
    entries = [name for name in files if re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", name)]
    assert len(entries) == 1, sorted(files)
    meta = json.loads(files["package.json"])
    assert meta["jupyterlab"]["_build"]["load"] == entries[0]
    # development builds leave source maps, chunks named after modules, unminified code
    assert not [n for n in files if n.endswith(".map")], sorted(files)
    for name, data in files.items():
        if name.endswith(".js"):
            assert b'"./lib/index.js"' not in data, f"{name} is from a development build"
            assert data.count(b"\n") < 40, f"{name} is not minified (a development build?)"
    # small: the shared JupyterLab and CodeMirror packages are not bundled in
    size = sum(len(data) for data in files.values())
    assert size < 100_000, f"the build is {size} bytes: a shared package got bundled?"


def test_build_package_matches_the_project() -> None:
    source = json.loads((EXTENSION / "package.json").read_text())
    built = json.loads((BUILD / "package.json").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert source["name"] == built["name"] == NAME
    assert source["version"] == built["version"] == project["version"], (
        "extension/package.json's version follows pyproject.toml's; change both, then "
        + REBUILD)
    install = json.loads((EXTENSION / "install.json").read_text())
    assert install == {**install, "packageManager": "python", "packageName": project["name"]}
    # what the wheel maps: the build, plus install.json (JupyterLab's "installed by pip")
    shared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"]["wheel"]["shared-data"]
    assert shared == {"dspex_lab/labextension": SHARE, "extension/install.json":
                      f"{SHARE}/install.json"}


def test_extension_knows_every_subcommand_of_the_magic() -> None:
    """The highlighter picks the body's language from the subcommand: it must know the
    magic's subcommands, and which of them take no body."""
    from dspex_lab.jupyter import magics
    from dspex_lab.jupyter._magic_args import COMMANDS

    text = (EXTENSION / "src" / "magic.ts").read_text()
    block = re.search(r"const BODIES = new Map<string, Body>\(\[(.*?)\]\);", text, re.S)
    assert block, "BODIES not found in extension/src/magic.ts"
    bodies = dict(re.findall(r"\['([\w-]+)', '(\w+)'\]", block.group(1)))
    bodies.pop("help", None)
    assert set(bodies) == set(COMMANDS), (
        f"extension/src/magic.ts knows {sorted(bodies)}, the magic has {sorted(COMMANDS)}: "
        f"update BODIES, then {REBUILD}")
    assert {c for c, body in bodies.items() if body == "none"} == set(magics._NO_BODY)
    assert bodies["spec"] == "spec" and bodies["sql"] == "sql"
    assert bodies["optimize"] == "options"


def test_this_environment_serves_the_committed_build() -> None:
    """``pip install -e .`` copies the build into the environment's share directory
    (or ``build_extension.sh --link`` links it): what JupyterLab loads is what is
    committed, so the browser test tests this build."""
    installed = Path(sys.prefix) / SHARE
    assert (installed / "package.json").is_file(), (
        f"{installed} is missing: pip install -e . (it ships the prebuilt extension)")
    assert json.loads((installed / "install.json").read_text())["packageName"] == "dspex-lab"
    ours = _build_files()
    theirs = {}
    for folder, _, files in os.walk(installed, followlinks=True):  # --link makes links
        for name in files:
            path = Path(folder) / name
            theirs[path.relative_to(installed).as_posix()] = path.read_bytes()
    theirs.pop("install.json")
    assert theirs == ours, (f"{installed} differs from dspex_lab/labextension: re-run "
                            f"pip install -e . (or scripts/build_extension.sh --link)")


@pytest.mark.slow
def test_jupyterlab_lists_the_extension_enabled() -> None:
    result = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                            capture_output=True, text=True, timeout=120)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    line = next((ln for ln in listing.splitlines() if ln.strip().startswith(f"{NAME} ")), None)
    assert line is not None, listing
    assert "enabled" in line and "OK" in line and "(python, dspex-lab)" in line, line


def _wheel(source: Path, out: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_wheel_carries_the_labextension(tmp_path: Path) -> None:
    result = _wheel(ROOT, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("dspex_lab-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        prefix = next(n for n in names if n.endswith(".data/data/" + SHARE + "/package.json"))
        prefix = prefix.removesuffix("package.json")
        shipped = {n.removeprefix(prefix): zf.read(n) for n in names if n.startswith(prefix)}
    assert shipped.pop("install.json") == (EXTENSION / "install.json").read_bytes()
    assert shipped == _build_files()  # every file of the committed build, byte for byte
    assert any(re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", n) for n in shipped)
    # shipped once: not also inside the Python package
    assert not [n for n in names if n.startswith("dspex_lab/labextension")]
    assert "dspex_lab/__init__.py" in names
    # the store's compiled converter (hatch_build.py), hence a platform wheel
    assert [n for n in names if re.fullmatch(r"dspex_lab/store/_fastrows\..+\.so", n)], names
    assert not wheel.name.endswith("-none-any.whl"), wheel.name
    print(f"wheel {wheel.name}: {wheel.stat().st_size} bytes; labextension "
          f"{sum(map(len, shipped.values()))} bytes in {len(shipped) + 1} files")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_wheel_without_the_build_fails_naming_the_fix(tmp_path: Path) -> None:
    """hatchling skips a missing shared-data directory silently; our build hook does not."""
    src = tmp_path / "src"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        if name.startswith("dspex_lab/labextension/") or not (ROOT / name).is_file():
            continue
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    result = _wheel(src, tmp_path / "out")
    assert result.returncode != 0
    assert "scripts/build_extension.sh" in result.stdout + result.stderr, result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_wheel_without_the_compiler_is_pure_python(tmp_path: Path) -> None:
    """DSPEX_NO_COMPILE (what a machine without a C compiler gets): the build says so
    and the wheel works everywhere, with the store's Python converter."""
    result = _wheel(ROOT, tmp_path, env={"DSPEX_NO_COMPILE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("dspex_lab-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        assert not [n for n in zf.namelist() if "_fastrows" in n and n.endswith(".so")]
