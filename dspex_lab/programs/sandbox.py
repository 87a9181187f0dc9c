"""Run untrusted program-of-thought code in a confined child process.

ProgramOfThought asks the LM for Python and executes it; this module is where
that happens. :func:`arun_code` runs the code in a fresh ``python -I`` child
inside a temporary scratch directory and returns a :class:`SandboxResult`; it
never raises for anything the code does. The layers, what each one stops and
the known limits are written up in ``docs/sandbox.md``; in short:

* parent side (here): scrubbed environment, new session, scratch directory
  deleted afterwards, wall-clock and output limits, whole process group killed;
* kernel side (``_sandbox_child.py``, setup stage): network/IPC namespaces and
  no capabilities when root, no-new-privs, Landlock, seccomp;
* interpreter side (``_sandbox_child.py``, run stage): CPU/memory/file-size/
  descriptor limits and an audit hook that refuses files outside the scratch
  directory, sockets, processes, signals to others, ctypes and more.

Contract: :func:`arun_code` is a coroutine for the library's background event
loop and never waits on it: pipes are read by asyncio protocols with a byte
cap, the exit is awaited, and the only synchronous step is asyncio's own
fork/exec (a few milliseconds). The result arrives within ``wall_seconds``
plus about a second of clean-up. Only misuse (wrong argument types, a sandbox
that cannot start) raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dspex_lab.errors import ConfigurationError, SandboxError

__all__ = ["MIN_MEMORY_MB", "SandboxLimits", "SandboxResult", "arun_code", "run_code"]

MIN_MEMORY_MB: Final = 64
"""Smallest accepted ``memory_mb``: the interpreter alone maps 30-60 MB."""

_CHILD_SCRIPT: Final = Path(__file__).resolve().with_name("_sandbox_child.py")
_REPORT_CAP: Final = 64 * 1024
_DRAIN_SECONDS: Final = 1.0
_REAP_SECONDS: Final = 5.0
_EXIT_UNREPORTED_VIOLATION: Final = 86  # _sandbox_child.EXIT_UNREPORTED_VIOLATION
_KINDS: Final = frozenset({None, "exception", "syntax", "blocked", "cpu_limit", "wall_limit",
                           "memory_limit", "output_limit"})


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may consume. CPU time is enforced in whole seconds (rounded up)."""

    cpu_seconds: float = 5.0
    wall_seconds: float = 10.0
    memory_mb: int = 512
    max_output_bytes: int = 64_000
    max_processes: int = 0
    max_file_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if not self.cpu_seconds > 0 or not self.wall_seconds > 0:
            raise ConfigurationError("cpu_seconds and wall_seconds must be positive")
        if self.memory_mb < MIN_MEMORY_MB:
            raise ConfigurationError(
                f"memory_mb must be at least {MIN_MEMORY_MB}: the interpreter alone needs "
                "30-60 MB of address space")
        if self.max_output_bytes < 1 or self.max_processes < 0 or self.max_file_bytes < 0:
            raise ConfigurationError(
                "max_output_bytes must be positive; max_processes and max_file_bytes "
                "must not be negative")


@dataclass(frozen=True)
class SandboxResult:
    """How one run ended.

    ``stdout`` is the program's answer. ``kind`` is None on success, else one of
    ``"exception"``, ``"syntax"``, ``"blocked"``, ``"cpu_limit"``,
    ``"wall_limit"``, ``"memory_limit"``, ``"output_limit"``; ``error`` is a one
    line message such as ``"NameError: name 'x' is not defined (line 3)"``.
    A blocked operation fails the run even if the code caught the error.
    """

    ok: bool
    stdout: str
    stderr: str
    error: str | None
    kind: str | None
    duration_s: float


async def arun_code(code: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run ``code`` in the sandbox without blocking the running event loop."""
    return await _arun_code(code, limits, audit_hook=True)


def run_code(code: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Synchronous :func:`arun_code` for threads that have no running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_code(code, limits))
    raise SandboxError(
        "run_code() was called from a thread whose event loop is running and would block "
        "it; use `await arun_code(...)` instead")


async def _arun_code(code: str, limits: SandboxLimits, *, audit_hook: bool) -> SandboxResult:
    """:func:`arun_code`; ``audit_hook=False`` exists only to test the kernel layers alone."""
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if not isinstance(limits, SandboxLimits):
        raise TypeError(f"limits must be a SandboxLimits, not {type(limits).__name__}")
    if os.name != "posix":
        raise SandboxError("the program-of-thought sandbox needs Linux (or another POSIX system)")
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="dspex-sandbox-")
    try:
        return await _supervise(code, limits, scratch, started, audit_hook)
    finally:
        await asyncio.to_thread(_remove_tree, scratch)


class _ChildProtocol(asyncio.SubprocessProtocol):
    """Collects stdout and stderr under one shared byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.output = {1: bytearray(), 2: bytearray()}
        self.overflowed = False
        self.finished = asyncio.Event()  # the process exited or overflowed
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open_pipes = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if self.overflowed or fd not in self.output:
            return
        room = self.budget - len(self.output[1]) - len(self.output[2])
        self.output[fd] += data[:room]
        if len(data) > room:
            self.overflowed = True
            self.finished.set()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()
        self.finished.set()


class _ReportProtocol(asyncio.Protocol):
    """Reads the child's report lines (descriptor 3), capped in size."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data[:_REPORT_CAP - len(self.data)]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def lines(self) -> list[tuple[str, str]]:
        """(tag, text) in order; see the ``_sandbox_child`` docstring for the tags."""
        decoded = self.data.decode("utf-8", "replace").splitlines()
        return [(tag, text) for tag, _, text in (line.partition("\t") for line in decoded)]


async def _supervise(code: str, limits: SandboxLimits, scratch: str, started: float,
                     audit_hook: bool) -> SandboxResult:
    """Start the child, enforce wall-clock and output limits, and always reap it."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = _report_pipe()
    report_file = os.fdopen(read_fd, "rb", buffering=0)
    config = {"report_fd": write_fd, "cpu_seconds": max(1, math.ceil(limits.cpu_seconds)),
              "memory_bytes": limits.memory_mb * 1024 * 1024,
              "file_bytes": limits.max_file_bytes, "max_processes": limits.max_processes,
              "audit": audit_hook}
    try:
        transport, child = await loop.subprocess_exec(
            lambda: _ChildProtocol(limits.max_output_bytes),
            sys.executable, "-I", "-S", "-B", str(_CHILD_SCRIPT), "setup", json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, pass_fds=(write_fd,), cwd=scratch,
            env=_child_environment(scratch), start_new_session=True)
    except BaseException as exc:
        report_file.close()
        if isinstance(exc, OSError):
            raise SandboxError(f"could not start the sandbox interpreter: {exc}") from exc
        raise
    finally:
        os.close(write_fd)
    pid = transport.get_pid()
    report = _ReportProtocol()
    report_transport: asyncio.BaseTransport | None = None
    timed_out = False
    try:
        report_transport, _ = await loop.connect_read_pipe(lambda: report, report_file)
        stdin = transport.get_pipe_transport(0)
        if isinstance(stdin, asyncio.WriteTransport):
            stdin.write(code.encode("utf-8", "surrogatepass"))
            stdin.close()  # flushes first; the child reads until end-of-file
        remaining = limits.wall_seconds - (time.monotonic() - started)
        try:
            await asyncio.wait_for(child.finished.wait(), timeout=max(remaining, 0.0))
        except TimeoutError:
            timed_out = True
    finally:
        # Always, even on success or cancellation: nothing the code started survives.
        _kill_group(pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.exited.wait(), _REAP_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(child.pipes_closed.wait(), report.closed.wait()), _DRAIN_SECONDS)
        transport.close()
        if report_transport is None:
            report_file.close()
        else:
            report_transport.close()
    return _result(limits, child, report.lines(), transport.get_returncode(), timed_out,
                   time.monotonic() - started)


def _report_pipe() -> tuple[int, int]:
    """A pipe for the child's reports; the write end is kept off descriptors 0-2."""
    import fcntl  # POSIX only, like the rest of the sandbox

    read_fd, write_fd = os.pipe()
    if write_fd < 3:
        moved = fcntl.fcntl(write_fd, fcntl.F_DUPFD_CLOEXEC, 3)
        os.close(write_fd)
        write_fd = moved
    return read_fd, write_fd


def _child_environment(scratch: str) -> dict[str, str]:
    """A fresh environment: nothing of the parent's (API keys, tokens) is passed on."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": scratch,
            "TMPDIR": scratch, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (it leads a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _result(limits: SandboxLimits, child: _ChildProtocol, report: list[tuple[str, str]],
            returncode: int | None, timed_out: bool, duration: float) -> SandboxResult:
    """Decide how the run ended, most telling cause first."""
    tags = [tag for tag, _ in report]
    started = "G" in tags  # lines after G may be forged by the code: trust them for this run only
    before_start = report[:tags.index("G")] if started else report
    setup_errors = [text for tag, text in before_start if tag == "S"]
    if setup_errors or not (started or timed_out):
        reason = setup_errors[0] if setup_errors else _tail(child.output[2]) or \
            f"exit status {returncode}"
        raise SandboxError(f"the sandbox could not be set up: {reason}")
    found = dict(reversed(report))  # first line per tag
    outcome: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        outcome = json.loads(found.get("R", "{}"))
    cpu_seconds = max(1, math.ceil(limits.cpu_seconds))
    kind: str | None
    error: str | None
    if child.overflowed:
        kind = "output_limit"
        error = f"killed: output limit ({limits.max_output_bytes} bytes) exceeded"
    elif timed_out:
        kind, error = "wall_limit", f"killed: wall-clock limit ({limits.wall_seconds:g} s) exceeded"
    elif "V" in found:
        kind, error = "blocked", found["V"]
    elif returncode == _EXIT_UNREPORTED_VIOLATION:
        kind = "blocked"
        error = "blocked: a forbidden operation was attempted after the code closed the report " \
                "channel"
    elif isinstance(outcome, dict) and "ok" in outcome:
        # Written by the child after the code ran, so possibly forged: keep the types honest.
        reported = outcome.get("kind")
        kind = reported if reported is None or (isinstance(reported, str)
                                                and reported in _KINDS) else "exception"
        error = str(outcome.get("error")) if kind is not None else None
    elif returncode == 0:
        kind, error = None, None
    elif returncode in (-signal.SIGKILL, -signal.SIGXCPU):
        # Only the kernel kills it this way: the CPU limit is soft = hard, enforced by SIGKILL.
        kind, error = "cpu_limit", f"killed: CPU time limit ({cpu_seconds} s) exceeded"
    elif returncode is not None and returncode < 0 and _mentions_memory(child.output[2]):
        kind, error = "memory_limit", f"killed: memory limit ({limits.memory_mb} MB) exceeded"
    elif returncode is not None and returncode < 0:
        kind, error = "exception", f"crashed: killed by signal {_signal_name(-returncode)}"
    else:
        kind, error = "exception", f"exited with status {returncode}"
    return SandboxResult(ok=kind is None, stdout=child.output[1].decode("utf-8", "replace"),
                         stderr=child.output[2].decode("utf-8", "replace"), error=error,
                         kind=kind, duration_s=duration)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _mentions_memory(stderr: bytearray) -> bool:
    """Whether a crash looks like C code failing an allocation under RLIMIT_AS."""
    tail = bytes(stderr[-2000:]).lower()
    return b"memoryerror" in tail or b"out of memory" in tail or b"cannot allocate" in tail


def _tail(stderr: bytearray) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""


def _remove_tree(path: str) -> None:
    """Delete the scratch directory, even parts the code made unreadable."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            child = os.path.join(root, name)
            if not os.path.islink(child):  # never chmod through a link
                with contextlib.suppress(OSError):
                    os.chmod(child, 0o700)
    shutil.rmtree(path, ignore_errors=True)
