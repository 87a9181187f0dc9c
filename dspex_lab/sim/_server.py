"""Running the simulator: in a daemon thread of this process, or in a child process.

The thread mode is what unit tests want (no process start-up, direct access
to stats). The process mode exists for benchmarks, where a server sharing
the client's GIL would make the client look slower than it is; it runs
``python -m dspex_lab.sim`` and talks to it through the ``/_sim`` routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import subprocess
import sys
import threading
import urllib.request
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from dspex_lab.sim._app import SimState, build_app
from dspex_lab.sim._faults import Faults

__all__ = ["ENV_VAR", "READY_PREFIX", "SimServer", "serve_forever", "start"]

ENV_VAR = "DSPEX_SIM_URL"
READY_PREFIX = "dspex-lab sim serving at "
_START_TIMEOUT_S = 30.0


def _runner(state: SimState) -> web.AppRunner:
    # No access log: formatting one line per request costs ~15% of the handler.
    # handler_cancellation: a client that gives up on a hang frees its handler.
    return web.AppRunner(build_app(state), access_log=None, shutdown_timeout=0.2,
                         handler_cancellation=True)


class SimServer:
    """A running simulator; use as a context manager or call :meth:`stop`.

    ``base_url`` is the OpenAI-style base (``http://127.0.0.1:PORT/v1``).
    """

    def __init__(self, host: str, port: int, *, owns_env: bool) -> None:
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}/v1"
        self._owns_env = owns_env
        self._state: SimState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stopped = False

    # -- controls -----------------------------------------------------------------
    def set_faults(self, faults: Faults | None = None, **rates: float) -> Faults:
        """Replace the fault settings: pass a :class:`Faults` or its fields as keywords."""
        if faults is not None and rates:
            raise TypeError("pass either a Faults object or keyword rates, not both")
        new = faults if faults is not None else Faults(**rates)
        if self._state is not None:
            self._state.faults = new
        else:
            self._control("POST", "/_sim/faults", new.to_dict())
        return new

    def stats(self) -> dict[str, Any]:
        """Requests served: ``total``, per outcome (ok, 429, 500, hang, truncated, error)
        and ``by_model``."""
        if self._state is not None:
            return self._state.stats.snapshot()
        result: dict[str, Any] = self._control("GET", "/_sim/stats")
        return result

    def reset_stats(self) -> None:
        if self._state is not None:
            self._state.stats.reset()
        else:
            self._control("POST", "/_sim/reset", {})

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(f"http://{self.host}:{self.port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return orjson.loads(response.read())

    # -- lifecycle ----------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving (idempotent) and undo the ``DSPEX_SIM_URL`` this server set."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
        if self._owns_env and os.environ.get(ENV_VAR) == self.base_url:
            del os.environ[ENV_VAR]

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        mode = "process" if self._process is not None else "thread"
        return f"SimServer({self.base_url!r}, {mode}, stopped={self._stopped})"


def _start_thread(server: SimServer, state: SimState) -> None:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = _runner(state)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, server.host, server.port)
            loop.run_until_complete(site.start())
            server.port = runner.addresses[0][1]
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    thread = threading.Thread(target=run, name=f"dspex-sim-{server.port}", daemon=True)
    thread.start()
    if not ready.wait(_START_TIMEOUT_S):
        raise RuntimeError("the simulator did not start in time")
    if failure:
        raise failure[0]
    server.base_url = f"http://{server.host}:{server.port}/v1"
    server._state, server._loop, server._thread = state, loop, thread


def _start_process(server: SimServer, state: SimState) -> None:
    cmd = [sys.executable, "-m", "dspex_lab.sim", "--host", server.host,
           "--port", str(server.port), "--speed", repr(state.speed), "--seed", str(state.seed),
           "--faults", orjson.dumps(state.faults.to_dict()).decode()]
    if state.fixed_latency_ms is not None:
        cmd += ["--fixed-latency-ms", repr(state.fixed_latency_ms)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None  # stdout=PIPE guarantees it
    readable, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT_S)
    line = process.stdout.readline() if readable else ""
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        raise RuntimeError(f"the simulator process did not start (it printed {line!r}; "
                           f"its error output, if any, is above)")
    url = line[len(READY_PREFIX):].strip()
    server.base_url = url
    server.port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    server._process = process


def start(
    port: int = 0, *, host: str = "127.0.0.1", speed: float = 1.0, seed: int = 0,
    faults: Faults | None = None, process: bool = False, fixed_latency_ms: float | None = None,
) -> SimServer:
    """Start a simulator and return once it accepts connections.

    ``port=0`` picks a free port. ``speed`` scales the real sleep (0 = answer
    at once; the ``X-Dspex-Latency-Ms`` header always carries the unscaled
    latency). ``fixed_latency_ms`` makes every reply a minimal well-formed one
    taking exactly that long. Sets ``DSPEX_SIM_URL`` when it is unset, and
    clears it again on :meth:`SimServer.stop`.
    """
    if speed < 0:
        raise ValueError("speed must be >= 0")
    state = SimState(seed=seed, speed=speed, faults=faults or Faults(),
                     fixed_latency_ms=fixed_latency_ms)
    owns_env = ENV_VAR not in os.environ
    server = SimServer(host, port, owns_env=owns_env)
    if process:
        _start_process(server, state)
    else:
        _start_thread(server, state)
    if owns_env:
        os.environ[ENV_VAR] = server.base_url
    return server


def serve_forever(
    host: str = "127.0.0.1", port: int = 8000, speed: float = 1.0, seed: int = 0, *,
    faults: Faults | None = None, fixed_latency_ms: float | None = None,
) -> None:
    """Serve in the foreground until interrupted; prints one line with the URL when ready."""
    state = SimState(seed=seed, speed=speed, faults=faults or Faults(),
                     fixed_latency_ms=fixed_latency_ms)

    async def main() -> None:
        runner = _runner(state)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            bound = runner.addresses[0][1]
            print(f"{READY_PREFIX}http://{host}:{bound}/v1", flush=True)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
