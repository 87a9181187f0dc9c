"""The public API: ``dx.__all__`` is exactly the public surface, and loads lazily."""

from __future__ import annotations

import subprocess
import sys

import dspex_lab as dx


def test_all_lists_every_public_name_and_each_resolves() -> None:
    for name in dx.__all__:
        assert getattr(dx, name) is not None, name
    assert sorted(dx.__all__) == dx.__all__
    assert {"LM", "Signature", "Predict", "ChainOfThought", "ProgramOfThought", "Module",
            "program", "evaluate", "configure", "datasets", "events"} <= set(dx.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        dx.Nope  # noqa: B018


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("dspex_lab").joinpath("py.typed").is_file()


def test_import_is_fast_and_light() -> None:
    code = ("import sys, time; t = time.perf_counter(); import dspex_lab; "
            "print(time.perf_counter() - t); "
            "print(sorted(m for m in ('aiohttp', 'pandas', 'litellm', 'orjson') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert float(out[0]) < 0.5
    assert out[1] == "[]"


def test_layering_lower_layers_never_import_upper_ones() -> None:
    import ast
    from pathlib import Path

    root = Path(dx.__file__).parent
    forbidden = {
        "lm": ("dspex_lab.programs", "dspex_lab.sim", "dspex_lab.settings", "dspex_lab.cli",
               "dspex_lab.optimize", "dspex_lab.jupyter", "dspex_lab.app"),
        "local_model": ("dspex_lab.programs", "dspex_lab.sim", "dspex_lab.settings",
                        "dspex_lab.cli", "dspex_lab.optimize", "dspex_lab.jupyter",
                        "dspex_lab.app", "dspex_lab.variables"),
        "events": ("dspex_lab.lm", "dspex_lab.programs", "dspex_lab.sim"),
        "programs": ("dspex_lab.sim", "dspex_lab.cli"),
        "datasets": ("dspex_lab.programs", "dspex_lab.sim", "dspex_lab.lm"),
        "store": ("dspex_lab.jupyter", "dspex_lab.app", "dspex_lab.optimize",
                  "dspex_lab.programs"),
        "variables": ("dspex_lab.optimize", "dspex_lab.jupyter", "dspex_lab.app"),
        "optimize": ("dspex_lab.jupyter", "dspex_lab.app", "dspex_lab.cli", "dspex_lab.sim"),
        # jupyter/ and app/ are siblings at the top: %dspex export calls app/, and app/
        # draws with the notebook's chart code (which imports no IPython); neither imports
        # the CLI, and the app never the widgets or magics.
        "jupyter": ("dspex_lab.cli", "dspex_lab.sim"),
        "app": ("dspex_lab.cli", "dspex_lab.sim", "dspex_lab.jupyter.magics",
                "dspex_lab.jupyter.monitor", "dspex_lab.jupyter.builder"),
    }
    # Only the notebook layer touches IPython and widgets; only the app layer, Panel.
    only = {"IPython": "jupyter", "ipywidgets": "jupyter", "anywidget": "jupyter",
            "panel": "app", "bokeh": "app"}
    for path in root.rglob("*.py"):
        package = path.relative_to(root).parts[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                owner = only.get(name.split(".")[0])
                assert owner is None or package == owner, f"{path}: imports {name}"
    for package, banned in forbidden.items():
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.startswith(banned), f"{path}: {node.module}"
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        assert not alias.name.startswith(banned), f"{path}: {alias.name}"
