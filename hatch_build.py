"""Hatch build hook: what a wheel build does beyond hatchling's file copying.

1. No wheel without the prebuilt JupyterLab extension. The wheel maps
   ``dspex_lab/labextension`` (the committed production build) to
   ``share/jupyter/labextensions/dspex-lab`` as shared data, and hatchling silently
   skips a shared-data source that does not exist. This turns that into an error
   naming the fix, for regular and editable builds alike. It never runs node:
   building the extension is the developer's step (``scripts/build_extension.sh``).

2. The store's compiled converter (``dspex_lab/store/_fastrows.c``), built with the
   C compiler Python itself was built with (``sysconfig``). It is an accelerator:
   without a compiler (or with ``DSPEX_NO_COMPILE=1``) the build says so and the
   package runs its pure-Python converter, which writes the same rows, slower. A
   regular wheel then carries the extension module and a platform tag; an editable
   install builds it next to its source, where the import finds it. The build
   records the source's SHA-256 in the module, so a checkout whose ``.c`` changed
   since is noticed at import (``dspex_lab.store._rows``) instead of running stale
   code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FIX = "run scripts/build_extension.sh (needs node >= 20.19) and commit dspex_lab/labextension"
CONVERTER_SOURCE = Path("dspex_lab") / "store" / "_fastrows.c"


def check_labextension(root: Path) -> None:
    """Raise unless the labextension's package.json and the entry it loads exist."""
    build = root / "dspex_lab" / "labextension"
    meta = build / "package.json"
    if not meta.is_file():
        raise RuntimeError(f"the JupyterLab extension is not built ({meta} is missing): {FIX}")
    try:
        load = json.loads(meta.read_text())["jupyterlab"]["_build"]["load"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{meta} is not a built labextension ({exc!r}): {FIX}") from exc
    if not (build / load).is_file():
        raise RuntimeError(f"the labextension's entry {build / load} is missing: {FIX}")


def source_sha(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def compile_converter(source: Path, out_dir: Path) -> Path | None:
    """Build the extension module into ``out_dir``; None (and a message on stderr) when
    it cannot be built here."""
    if os.environ.get("DSPEX_NO_COMPILE"):
        print("dspex-lab: DSPEX_NO_COMPILE is set: the store uses its pure-Python "
              "converter", file=sys.stderr)
        return None
    ldshared = os.environ.get("LDSHARED") or sysconfig.get_config_var("LDSHARED")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not ldshared or not suffix:
        print("dspex-lab: this Python does not say how to build C extensions (no LDSHARED "
              "in sysconfig): the store uses its pure-Python converter", file=sys.stderr)
        return None
    out = out_dir / f"_fastrows{suffix}"
    command = [
        *shlex.split(ldshared), *shlex.split(sysconfig.get_config_var("CCSHARED") or ""),
        "-O2", "-ffp-contract=off", "-I", sysconfig.get_paths()["include"],
        f'-DDSPEX_SOURCE_SHA="{source_sha(source)}"', str(source), "-o", str(out),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"dspex-lab: could not run the C compiler ({exc}): the store uses its "
              "pure-Python converter", file=sys.stderr)
        return None
    if result.returncode != 0 or not out.is_file():
        print(f"dspex-lab: compiling {source} failed (the store uses its pure-Python "
              f"converter):\n$ {shlex.join(command)}\n{result.stderr[-4000:]}",
              file=sys.stderr)
        return None
    return out


class DspexBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Checks the labextension, then builds the compiled converter."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        check_labextension(root)
        source = root / CONVERTER_SOURCE
        if version == "editable":  # built in place: the editable import path is the source
            compile_converter(source, source.parent)
            return
        built = compile_converter(source, Path(tempfile.mkdtemp(prefix="dspex-build-")))
        if built is not None:
            build_data["force_include"][str(built)] = str(CONVERTER_SOURCE.parent / built.name)
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
