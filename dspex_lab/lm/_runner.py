"""The one background event loop that carries all LM traffic.

Why a thread of our own: a Jupyter kernel already runs an event loop in the
main thread, so ``asyncio.run`` is impossible there, and blocking that loop
would freeze the notebook. Every coroutine of ours runs on this loop; the sync
API submits to it and waits on a concurrent future, which works the same in a
script, a kernel, or a worker thread.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundLoop", "get_loop", "run_sync", "submit"]

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop running forever in a daemon thread, with close hooks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._close_hooks: list[Callable[[], Awaitable[None]]] = []
        self._tasks: dict[concurrent.futures.Future[Any], asyncio.Task[Any]] = {}
        self.thread = threading.Thread(target=self._run, name="dspex-lm-loop", daemon=True)
        self.thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    def on_close(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Register an async cleanup (e.g. closing an HTTP session) run at shutdown."""
        self._close_hooks.append(hook)

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop, carrying the caller's context variables.

        ``asyncio.run_coroutine_threadsafe`` would run the task in the loop
        thread's own context, losing the caller's trace span; so the task is
        created with a copy of the submitting thread's context instead.
        """
        ctx = contextvars.copy_context()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            if not future.set_running_or_notify_cancel():
                coro.close()
                return
            task = self.loop.create_task(coro, context=ctx)

            def done(t: asyncio.Task[T]) -> None:
                if t.cancelled():
                    future.cancel()
                elif (exc := t.exception()) is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(t.result())

            task.add_done_callback(done)
            self._tasks[future] = task

            def forget(_: object) -> None:
                self._tasks.pop(future, None)

            task.add_done_callback(forget)

        self.loop.call_soon_threadsafe(start)
        return future

    def cancel(self, future: concurrent.futures.Future[Any]) -> None:
        """Cancel the task behind ``future`` (thread-safe)."""
        task = self._tasks.get(future)
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it (Ctrl-C cancels it)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "A synchronous dspex_lab call was made from inside the dspex_lab event loop "
                "(e.g. from an async program). Use the async form instead: "
                "`await module.acall(...)` or `await lm.acall(...)`.")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            self.cancel(future)
            raise

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def _shutdown() -> None:
            for hook in reversed(self._close_hooks):
                with contextlib.suppress(Exception):  # cleanup must go on
                    await hook()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_instance: BackgroundLoop | None = None
_lock = threading.Lock()


def get_loop() -> BackgroundLoop:
    """The process-wide background loop, started on first use."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = BackgroundLoop()
                atexit.register(_instance.close)
    return _instance


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    return get_loop().submit(coro)


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    return get_loop().run(coro, timeout)
