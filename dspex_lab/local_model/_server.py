"""Start, stop and inspect the local model server (one per model and user).

The server is llama-cpp-python's OpenAI-compatible server, run through our
launcher (``_serve``) on 127.0.0.1 only, in its own session (so a terminal's
Ctrl-C or a notebook's interrupt never reaches it), with its output in a log
file in the state folder. Choices that matter for speed on small CPUs are made
here, not left to defaults: the thread count is explicit (llama.cpp's default
can oversubscribe a shared machine) and per-token logits are off (we never
read them; keeping them costs memory and time on every token).

The server gets a scrubbed environment: only what a Python process needs to
run (PATH, HOME, locale, the virtualenv) plus OpenMP/ggml tuning knobs. API
keys and tokens in the caller's environment therefore cannot reach the
server, its log, or anything it writes. Its settings are also read from the
environment (pydantic settings), so a stray ``PORT`` or ``MODEL`` variable
could otherwise silently change what it serves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dspex_lab.local_model._catalog import LocalModelSpec, find_model
from dspex_lab.local_model._deps import check_installed
from dspex_lab.local_model._errors import LocalModelError
from dspex_lab.local_model._state import (
    LAUNCHER_MODULE,
    ServerState,
    clear_state,
    is_our_server,
    locked,
    log_path,
    read_state,
    write_state,
)

__all__ = ["HOST", "ServerStatus", "current_status", "default_threads", "health", "launch",
           "start", "status", "stop", "terminate"]

HOST = "127.0.0.1"
"""Loopback only: the server has no authentication and must not be reachable from outside."""

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
_POLL_S = 0.1
_ENV_KEEP = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
             "VIRTUAL_ENV", "SYSTEMROOT")
_ENV_KEEP_PREFIXES = ("OMP_", "GGML_", "KMP_")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_children: dict[int, subprocess.Popen[bytes]] = {}
"""Servers this process spawned, kept so they are reaped (no zombies) and can be awaited."""


def default_threads() -> int:
    """Half the CPUs this process may use, between 1 and 4.

    Measured on a shared 2-core machine (load ~3): 1 thread answered a
    three-demo JSON request in 0.22-0.28 s at the median and 0.34-0.46 s at p95;
    2 threads were no faster at the median (0.20-0.36 s) and much worse in the
    tail (p95 up to 2.9 s), because llama.cpp's threads wait for each other at
    every layer and one descheduled thread stalls them all. A 135M model gains
    nothing beyond 4.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus // 2))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def health(port: int, timeout: float = 2.0) -> bool:
    """Whether the server on ``port`` answers ``GET /v1/models`` with 200 (no proxy used)."""
    try:
        with _NO_PROXY.open(f"http://{HOST}:{port}/v1/models", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k in _ENV_KEEP or k.startswith(_ENV_KEEP_PREFIXES)}
    # the launcher must import this very dspex_lab, installed or not
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(spec: LocalModelSpec, path: Path, port: int, threads: int, ctx: int,
             watch_pid: int | None) -> list[str]:
    cmd = [sys.executable, "-m", LAUNCHER_MODULE]
    if watch_pid:
        cmd += ["--watch-pid", str(watch_pid)]
    return [
        *cmd, "--",
        "--model", str(path), "--model_alias", spec.name,
        "--host", HOST, "--port", str(port),
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_ctx", str(ctx),
        "--logits_all", "False",
        "--verbose", "False",
    ]


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"


def terminate(pid: int, grace: float = STOP_GRACE_S,
              wait: Callable[[float], bool] | None = None) -> None:
    """SIGTERM the server's process group, SIGKILL it if still there after ``grace`` s.

    ``wait(timeout)`` returns True once the process is gone; the default polls
    ``/proc`` (a parent passes ``Popen.wait`` instead, which also reaps it).
    """
    child = _children.get(pid)
    if wait is None and child is not None:
        wait = _popen_wait(child)

    def gone_within(timeout: float) -> bool:
        if wait is not None:
            return wait(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not is_our_server(pid):
                return True
            time.sleep(_POLL_S)
        return not is_our_server(pid)

    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)  # the server runs in its own session: pgid == pid
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        if gone_within(timeout):
            _children.pop(pid, None)
            return


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """Whether a model's server runs, what was recorded about it, and what just happened."""

    model: str
    running: bool
    healthy: bool
    state: ServerState | None
    note: str = ""

    @property
    def base_url(self) -> str | None:
        return self.state.base_url if self.running and self.state else None

    def describe(self) -> str:
        """A few lines for the command line."""
        name = f"local/{self.model}"
        if not self.running or self.state is None:
            return f"{name}: stopped" + (f" ({self.note})" if self.note else "")
        s = self.state
        up = _duration(s.uptime_s)
        answering = "" if self.healthy else ", NOT answering health checks"
        owner = ("dspex-lab local-model start (runs until stopped)" if s.owner_pid is None
                 else f"process {s.owner_pid} (stops when it exits)")
        lines = [
            f"{name}: running (pid {s.pid}, port {s.port}, up {up}{answering})",
            f"  endpoint:   {s.base_url}",
            f"  model file: {s.model_path}",
            f"  threads:    {s.threads}, context {s.ctx} tokens",
            f"  started by: {owner}",
            f"  log:        {s.log_path}",
        ]
        if self.note:
            lines.insert(1, f"  ({self.note})")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def current_status(model: str) -> ServerStatus:
    """The status of ``model`` (a short name); the caller holds the lock if it will act on it."""
    state = read_state(model)
    if state is None:
        return ServerStatus(model, False, False, None)
    if not is_our_server(state.pid):
        clear_state(model, state.pid)
        return ServerStatus(model, False, False, None,
                            f"removed a stale state file: pid {state.pid} is gone")
    return ServerStatus(model, True, health(state.port), state)


def status(model: str = "smollm2") -> ServerStatus:
    """The server of ``model``: running or not (a stale state file is removed)."""
    return current_status(find_model(model).name)


def launch(spec: LocalModelSpec, *, threads: int | None = None, port: int | None = None,
           ctx: int | None = None, timeout: float = START_TIMEOUT_S,
           owner_pid: int | None = None) -> tuple[ServerState, subprocess.Popen[bytes]]:
    """Start a server for ``spec`` and wait until it answers; the caller holds the lock.

    ``owner_pid`` (the calling process) makes the server exit with it. Raises
    :class:`LocalModelError` with the end of the log when it dies or does not
    answer within ``timeout`` seconds (and then leaves nothing running).
    """
    path = check_installed(spec)
    threads = default_threads() if threads is None else threads
    ctx = spec.default_ctx if ctx is None else ctx
    if threads < 1:
        raise LocalModelError(f"threads must be >= 1, not {threads}")
    if ctx < 256:
        raise LocalModelError(f"ctx (context tokens) must be >= 256, not {ctx}")
    if port is None:
        port = _free_port()
    elif not 0 < port < 65536:
        raise LocalModelError(f"port must be in 1..65535, not {port}")
    elif _port_in_use(port):
        raise LocalModelError(f"port {port} on {HOST} is in use; choose another with --port "
                              "(or leave it out for a free one)")
    log = log_path(spec.name)
    started = time.time()
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            _command(spec, path, port, threads, ctx, owner_pid), stdin=subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, env=_server_env(),
            start_new_session=True, close_fds=True)
    _children[proc.pid] = proc
    state = ServerState(spec.name, proc.pid, HOST, port, str(path), threads, ctx, started,
                        str(log), owner_pid)
    write_state(state)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            _children.pop(proc.pid, None)
            clear_state(spec.name, proc.pid)
            raise LocalModelError(
                f"the local/{spec.name} server exited with code {code} while starting. "
                f"End of its log ({log}):\n{_log_tail(log)}")
        if health(port, timeout=1.0):
            return state, proc
        if time.monotonic() > deadline:
            terminate(proc.pid, 5.0, wait=_popen_wait(proc))
            clear_state(spec.name, proc.pid)
            raise LocalModelError(
                f"the local/{spec.name} server did not answer on {HOST}:{port} within "
                f"{timeout:.0f} s (a busy machine may need --timeout). End of its log "
                f"({log}):\n{_log_tail(log)}")
        time.sleep(_POLL_S)


def _popen_wait(proc: subprocess.Popen[bytes]) -> Callable[[float], bool]:
    def wait(timeout: float) -> bool:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    return wait


def start(model: str = "smollm2", *, threads: int | None = None, port: int | None = None,
          ctx: int | None = None, timeout: float = START_TIMEOUT_S) -> ServerStatus:
    """Start a detached server (it outlives this process) unless one already runs.

    Returns once the server answers health checks. A running server is left as
    it is (its note says so), even if it was started with other settings.
    """
    spec = find_model(model)
    with locked(spec.name):
        current = current_status(spec.name)
        if current.running:
            return ServerStatus(spec.name, True, current.healthy, current.state,
                                "already running; stop it first to change its settings")
        t0 = time.perf_counter()
        state, _proc = launch(spec, threads=threads, port=port, ctx=ctx, timeout=timeout)
        took = time.perf_counter() - t0
    return ServerStatus(spec.name, True, True, state, f"started in {took:.1f} s")


def stop(model: str = "smollm2", *, grace: float = STOP_GRACE_S) -> ServerStatus:
    """Stop the server (SIGTERM, then SIGKILL after ``grace`` s) and remove its state.

    Stops it whoever started it; a process that owned it starts a new one on
    its next request.
    """
    spec = find_model(model)
    with locked(spec.name):
        current = current_status(spec.name)
        if not current.running or current.state is None:
            return ServerStatus(spec.name, False, False, None, current.note or "was not running")
        state = current.state
        t0 = time.perf_counter()
        terminate(state.pid, grace)
        clear_state(spec.name, state.pid)
    return ServerStatus(spec.name, False, False, state,
                        f"stopped pid {state.pid} in {time.perf_counter() - t0:.1f} s")
