"""The link from ``dx.LM("local/...")`` to a local model server (imported only for those).

The LM layer does not manage processes: :mod:`dspex_lab.local_model` does, and
is imported here, lazily, only when a ``local/`` model is created. Creating the
LM checks the name and the installation (fast, no import of llama-cpp-python),
so a missing package fails at once with its install command, like a missing
API key. The server is started on the first request, not at creation, so
building configurations or specs that name the model costs nothing.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["LocalServerLink"]

_FAILURE_MEMORY_S = 30.0
"""How long a failed start is remembered: requests queued behind it fail at once instead of
each waiting for its own start timeout."""


class LocalServerLink:
    """The chat-completions URL of a local model's server, starting the server when needed."""

    def __init__(self, name: str) -> None:
        from dspex_lab import local_model

        self.spec = local_model.find_model(name)
        local_model.check_installed(self.spec)
        self._url: str | None = None
        self._lock: asyncio.Lock | None = None
        self._failure: tuple[float, str] | None = None

    @property
    def default_max_tokens(self) -> int:
        return self.spec.default_max_tokens

    async def url(self) -> str:
        """The endpoint URL; on first use (or after :meth:`invalidate`) ensures a server runs."""
        url = self._url
        if url is not None:
            return url
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._url is None:
                self._url = await self._start()
            return self._url

    async def _start(self) -> str:
        from dspex_lab import local_model

        if self._failure is not None and time.monotonic() - self._failure[0] < _FAILURE_MEMORY_S:
            raise local_model.LocalModelError(self._failure[1])
        try:
            state = await asyncio.to_thread(local_model.ensure_running, self.spec.name)
        except local_model.LocalModelError as exc:
            self._failure = (time.monotonic(), str(exc))
            raise
        self._failure = None
        return state.base_url + "/chat/completions"

    def invalidate(self) -> None:
        """Forget the URL (the server stopped answering): the next request checks again."""
        self._url = None
