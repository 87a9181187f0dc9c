"""Hatch build hook: no wheel without the prebuilt JupyterLab extension.

The wheel maps ``dspex_lab/labextension`` (the committed production build) to
``share/jupyter/labextensions/dspex-lab`` as shared data, and hatchling silently
skips a shared-data source that does not exist. This hook turns that into an error
naming the fix, for regular and editable builds alike. It never runs node: building
the extension is the developer's step (``scripts/build_extension.sh``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FIX = "run scripts/build_extension.sh (needs node >= 20.19) and commit dspex_lab/labextension"


class PrebuiltLabextension(BuildHookInterface):  # type: ignore[type-arg]
    """Checks that the labextension's package.json and the entry it loads exist."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        build = Path(self.root) / "dspex_lab" / "labextension"
        meta = build / "package.json"
        if not meta.is_file():
            raise RuntimeError(f"the JupyterLab extension is not built ({meta} is missing): {FIX}")
        try:
            load = json.loads(meta.read_text())["jupyterlab"]["_build"]["load"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"{meta} is not a built labextension ({exc!r}): {FIX}") from exc
        if not (build / load).is_file():
            raise RuntimeError(f"the labextension's entry {build / load} is missing: {FIX}")
