"""The program-of-thought sandbox against hostile programs, in real child processes.

Every hostile case checks three things: the call came back within the limits,
the result is a failure with a clear error, and the effect did not happen (the
secret never shows up, the file was not written, the listener saw no
connection, the victim process is alive). Limits are small to keep this fast.
"""

from __future__ import annotations

import asyncio
import ctypes
import dis
import gc
import itertools
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspex_lab.errors import ConfigurationError, SandboxError
from dspex_lab.programs import _sandbox_child, sandbox
from dspex_lab.programs.sandbox import SandboxLimits, SandboxResult, arun_code, run_code

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox targets Linux")

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=3, memory_mb=256, max_output_bytes=8_000)


def run(code: str, limits: SandboxLimits = LIMITS) -> SandboxResult:
    """run_code, asserting it came back within the wall-clock limit plus clean-up."""
    started = time.monotonic()
    result = run_code(code, limits)
    assert time.monotonic() - started < limits.wall_seconds + 1.5, result
    return result


def everything(result: SandboxResult) -> str:
    return f"{result.stdout}\n{result.stderr}\n{result.error}"


def assert_blocked(result: SandboxResult, fragment: str = "") -> None:
    assert not result.ok and result.kind == "blocked", result
    assert result.error is not None and result.error.startswith("blocked: "), result
    assert fragment in result.error, result


def _landlock_abi() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return int(libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1)))


LANDLOCK_ABI = max(_landlock_abi(), 0) if sys.platform == "linux" else 0
SECCOMP = (sys.platform == "linux" and "Seccomp:" in Path("/proc/self/status").read_text()
           and os.uname().machine in _sandbox_child.SECCOMP_ARCHES)
needs_landlock = pytest.mark.skipif(LANDLOCK_ABI < 1, reason="kernel without Landlock")
needs_seccomp = pytest.mark.skipif(not SECCOMP, reason="kernel without seccomp")
needs_signal_isolation = pytest.mark.skipif(
    not SECCOMP and LANDLOCK_ABI < 6, reason="needs seccomp or Landlock signal scoping")


@pytest.fixture()
def secret(tmp_path: Path) -> tuple[Path, str]:
    """A file outside the scratch directory whose content must never come back."""
    value = f"TOPSECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(value)
    return path, value


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that must not receive a connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # the run is over: any connection would already be queued
    try:
        yield server
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


@pytest.fixture()
def victim() -> Iterator[int]:
    """A process of the same user that the code must not be able to kill."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
        assert process.poll() is None, "the sandboxed code killed another process"
    finally:
        process.kill()
        process.wait()


# --- ordinary programs -----------------------------------------------------------


def test_prints_the_answer() -> None:
    result = run("print(6 * 7)")
    assert result == SandboxResult(ok=True, stdout="42\n", stderr="", error=None, kind=None,
                                   duration_s=result.duration_s)
    assert 0 < result.duration_s < LIMITS.wall_seconds


def test_standard_library_works() -> None:
    code = """
import math, fractions, json, statistics, datetime, decimal, itertools, collections, re
import random, heapq, functools, string, operator, zoneinfo
from collections import namedtuple
Point = namedtuple("Point", "x y", defaults=(0,))
print(math.comb(5, 2), fractions.Fraction(1, 3) + fractions.Fraction(1, 6))
print(json.dumps({"mean": statistics.mean([1, 2, 3, 4])}), decimal.Decimal("0.1") * 3)
print(datetime.date(2024, 3, 1) - datetime.timedelta(days=1), Point(1))
print(list(itertools.accumulate([1, 2, 3])), collections.Counter("aab").most_common(1))
print(re.findall(r"\\d+", "a1b22"), zoneinfo.ZoneInfo("UTC"))
"""
    result = run(code)
    assert result.ok, result
    assert result.stdout.splitlines() == [
        "10 1/2", '{"mean": 2.5} 0.3', "2024-02-29 Point(x=1, y=0)",
        "[1, 3, 6] [('a', 2)]", "['1', '22'] UTC"]


def test_numpy_and_pandas_work_when_installed() -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("pandas")
    result = run("import numpy as np, pandas as pd\nopen('t.csv', 'w').write('a,b\\n1,2\\n')\n"
                 "print(np.arange(4).sum(), pd.read_csv('t.csv')['b'].mean())",
                 SandboxLimits(cpu_seconds=5, wall_seconds=10, memory_mb=512))
    assert result.ok and result.stdout == "6 2.0\n", result


def test_files_inside_the_scratch_directory_work() -> None:
    code = """
import os, pathlib, shutil, tempfile
pathlib.Path("notes.txt").write_text("hello")
os.mkdir("sub")
shutil.copy("notes.txt", "sub/copy.txt")
os.rename("sub/copy.txt", "sub/moved.txt")
with tempfile.TemporaryDirectory() as tmp:
    open(os.path.join(tmp, "t"), "w").write("x")
print(open("sub/moved.txt").read(), sorted(os.listdir(".")), os.getcwd() == os.environ["HOME"])
os.remove("notes.txt")
"""
    result = run(code)
    assert result.ok, result
    assert result.stdout == "hello ['notes.txt', 'sub'] True\n"


def test_syntax_error_reports_the_line() -> None:
    result = run("x = 1\ndef broken(:\n    pass\n")
    assert not result.ok and result.kind == "syntax"
    assert result.error == "SyntaxError: invalid syntax (line 2)"
    assert "SyntaxError" in result.stderr


def test_exception_reports_type_message_and_line() -> None:
    result = run("def f():\n    return x\n\nprint('before')\nf()\n")
    assert not result.ok and result.kind == "exception"
    assert result.error == "NameError: name 'x' is not defined (line 2)"
    assert result.stdout == "before\n"
    assert 'File "<sandbox>", line 2, in f' in result.stderr
    assert "_sandbox_child" not in result.stderr


def test_exit_status_and_input() -> None:
    assert run("import sys; print('a'); sys.exit(0)").ok
    failed = run("import sys; sys.exit(3)")
    assert not failed.ok and failed.kind == "exception" and failed.error == "SystemExit: 3"
    eof = run("input()")
    assert eof.kind == "exception" and eof.error is not None and eof.error.startswith("EOFError")


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    planted = f"sk-planted-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", planted)
    result = run("import os; print(dict(os.environ)); print(os.environb)")
    assert result.ok, result
    assert planted not in everything(result)
    assert "OPENAI_API_KEY" not in result.stdout


def test_scratch_directory_is_removed_afterwards() -> None:
    result = run("import os; open('left-behind', 'w').write('x'); os.mkdir('d'); "
                 "os.chmod('d', 0); print(os.getcwd())")
    assert result.ok, result
    scratch = Path(result.stdout.strip())
    assert scratch.parent == Path(tempfile.gettempdir())
    assert not scratch.exists()


# --- files outside the scratch directory ------------------------------------------

READ_ATTEMPTS = {
    "open": "print(open({path!r}).read())",
    "os.open": "import os; print(os.read(os.open({path!r}, os.O_RDONLY), 200))",
    "pathlib": "import pathlib; print(pathlib.Path({path!r}).read_text())",
    "FileIO": "import io; print(io.FileIO({path!r}).read())",
    "caught": "try:\n    print(open({path!r}).read())\nexcept OSError:\n    print('caught')",
    "linecache": "import linecache; print(linecache.getline({path!r}, 1))",
    "copy": "import shutil; shutil.copy({path!r}, 'c.txt'); print(open('c.txt').read())",
    "dotdot": "print(open('../' * 40 + {path!r}.lstrip('/')).read())",
    "proc-root": "print(open('/proc/self/root' + {path!r}).read())",
    "symlink": "import os; os.symlink({path!r}, 'link'); print(open('link').read())",
    "hardlink": "import os; os.link({path!r}, 'hard'); print(open('hard').read())",
    "listdir": "import os; print(os.listdir(os.path.dirname({path!r})))",
    "glob": "import glob, os; print(glob.glob(os.path.dirname({path!r}) + '/*'))",
    "rebound": ("import builtins, os, posixpath\n"
                "posixpath.realpath = os.path.realpath = lambda p, **k: os.getcwd()\n"
                "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: str\n"
                "print(open({path!r}).read())"),
}


@pytest.mark.parametrize("attempt", READ_ATTEMPTS, ids=str)
def test_reading_outside_the_scratch_directory_is_blocked(
        attempt: str, secret: tuple[Path, str]) -> None:
    path, value = secret
    result = run(READ_ATTEMPTS[attempt].format(path=str(path)))
    assert not result.ok and result.kind == "blocked", result
    assert value not in everything(result)
    assert "secret.txt'" not in result.stdout  # no directory listing either


def test_reading_system_files_is_blocked() -> None:
    result = run("print(open('/etc/passwd').read())")
    assert_blocked(result, "reading files outside the scratch directory is not allowed")
    assert "root:" not in everything(result)


@pytest.mark.parametrize("path", ["/proc/self/environ", "/proc/{parent}/environ",
                                  "/proc/{parent}/cmdline", "/proc/{parent}/mem"])
def test_process_environments_are_unreadable(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = f"sk-planted-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", planted)
    result = run(f"print(open({path.format(parent=os.getpid())!r}, 'rb').read())")
    assert_blocked(result)
    assert planted not in everything(result)


WRITE_ATTEMPTS = {
    "open": "open({target!r}, 'w').write('pwned')",
    "append-caught": "try:\n    open({target!r}, 'a').write('pwned')\nexcept OSError:\n    pass",
    "os.open": "import os; os.close(os.open({target!r}, os.O_WRONLY | os.O_CREAT))",
    "pathlib": "import pathlib; pathlib.Path({target!r}).write_text('pwned')",
    "copy": "import shutil; open('x', 'w').write('pwned'); shutil.copy('x', {target!r})",
    "rename": "import os; open('x', 'w').write('pwned'); os.rename('x', {target!r})",
    "mkdir": "import os; os.mkdir({target!r})",
    "tempfile": "import tempfile; tempfile.mkstemp(dir=os.path.dirname({target!r}))",
    "dir_fd": ("import os; d = os.open(os.path.dirname({target!r}), os.O_RDONLY)\n"
               "os.close(os.open('pwned.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d))"),
}


@pytest.mark.parametrize("attempt", WRITE_ATTEMPTS, ids=str)
def test_writing_outside_the_scratch_directory_is_blocked(attempt: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    result = run("import os\n" + WRITE_ATTEMPTS[attempt].format(target=str(target)))
    assert not result.ok and result.kind == "blocked", result
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


CHANGE_ATTEMPTS = {
    "remove": "os.remove({victim!r})",
    "rename": "os.rename({victim!r}, 'stolen')",
    "truncate": "os.truncate({victim!r}, 0)",
    "chmod": "os.chmod({victim!r}, 0o777)",
    "utime": "os.utime({victim!r}, (0, 0))",
    "rmtree": "import shutil; shutil.rmtree(os.path.dirname({victim!r}))",
    "fchmod": "os.chmod(os.open({victim!r}, os.O_RDONLY), 0o777)",
}


@pytest.mark.parametrize("attempt", CHANGE_ATTEMPTS, ids=str)
def test_changing_files_outside_the_scratch_directory_is_blocked(
        attempt: str, tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    victim.chmod(0o600)
    before = victim.stat()
    result = run("import os\n" + CHANGE_ATTEMPTS[attempt].format(victim=str(victim)))
    assert not result.ok and result.kind == "blocked", result
    after = victim.stat()
    assert victim.read_text() == "keep"
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)


def test_files_are_size_limited() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=3, memory_mb=256, max_file_bytes=10_000)
    result = run("open('big', 'wb').write(b'x' * 20_000)", limits)
    assert not result.ok and result.kind == "exception"
    assert result.error is not None and "File too large" in result.error


def test_number_of_files_written_is_limited() -> None:
    result = run("for i in range(1000):\n    open(f'f{i}', 'w').close()")
    assert_blocked(result, "too many files")


# --- network, processes, signals, native code ------------------------------------

NETWORK_ATTEMPTS = {
    "socket": "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)",
    "_socket": "import _socket; _socket.socket().connect(('127.0.0.1', {port}))",
    "urllib": "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/')",
    "asyncio": "import asyncio; asyncio.run(asyncio.open_connection('127.0.0.1', {port}))",
    "caught": ("try:\n    import socket\nexcept ImportError:\n    pass\n"
               "import http.client; http.client.HTTPConnection('127.0.0.1', {port}).connect()"),
}


@pytest.mark.parametrize("attempt", NETWORK_ATTEMPTS, ids=str)
def test_network_access_is_blocked(attempt: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run(NETWORK_ATTEMPTS[attempt].format(port=port))
    assert not result.ok and result.kind == "blocked", result


def test_importing_socket_is_blocked() -> None:
    assert_blocked(run("import socket"), "importing 'socket' is not allowed")


PROCESS_ATTEMPTS = {
    "fork": "import os; os.fork() or open({marker!r}, 'w')",
    "subprocess": "import subprocess; subprocess.run(['touch', {marker!r}])",
    "system": "import os; os.system('touch ' + {marker!r})",
    "exec": "import os; os.execv('/usr/bin/touch', ['touch', {marker!r}])",
    "posix_spawn": "import os; os.posix_spawn('/usr/bin/touch', ['touch', {marker!r}], {{}})",
    "pty": "import pty; pty.spawn(['touch', {marker!r}])",
    "multiprocessing": "import multiprocessing; multiprocessing.Process(target=print).start()",
    "ctypes": "import ctypes; ctypes.CDLL(None).system(b'touch ' + {marker!r}.encode())",
    "_ctypes": "import _ctypes",
}


@pytest.mark.parametrize("attempt", PROCESS_ATTEMPTS, ids=str)
def test_starting_processes_and_native_code_are_blocked(attempt: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run(PROCESS_ATTEMPTS[attempt].format(marker=str(marker)))
    assert not result.ok and result.kind == "blocked", result
    assert not marker.exists()


@pytest.mark.parametrize("code", [
    "import os\nwhile True:\n    os.fork()",
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
])
def test_fork_bomb_is_contained(code: str) -> None:
    result = run(code)
    assert not result.ok and result.kind in ("blocked", "cpu_limit"), result
    assert not _sandbox_processes()


def test_library_probes_do_not_fail_a_run() -> None:
    # platform runs `uname -p` inside a try; pandas reads the cgroup CPU quota.
    result = run("import platform\nprint(platform.platform().split('-')[0])")
    assert result.ok and result.stdout == "Linux\n", result


def test_native_module_written_to_scratch_is_not_loaded() -> None:
    code = """
import importlib.util, shutil, _bisect
shutil.copy(_bisect.__file__, 'evil.so')
spec = importlib.util.spec_from_file_location('_bisect', 'evil.so')
importlib.util.module_from_spec(spec)
print('loaded')
"""
    result = run(code)
    assert_blocked(result, "native extension module '_bisect' is not allowed")
    assert "loaded" not in result.stdout


@pytest.mark.parametrize("code", [
    "import os, signal; os.kill({pid}, signal.SIGKILL)",
    "import os, signal; os.killpg(os.getpgid({pid}), signal.SIGKILL)",
])
def test_signalling_other_processes_is_blocked(code: str, victim: int) -> None:
    assert_blocked(run(code.format(pid=victim)), "signalling other processes is not allowed")


@needs_signal_isolation
def test_pidfd_signals_are_refused_by_the_kernel(victim: int) -> None:
    # No audit event exists for pidfd_open(): only the kernel layers stop this one.
    result = run(f"import os, signal; signal.pidfd_send_signal(os.pidfd_open({victim}), 9)")
    assert not result.ok and result.kind == "exception", result
    assert result.error is not None and "PermissionError" in result.error


# --- attempts on the sandbox itself ------------------------------------------------

TAMPER_ATTEMPTS = {
    "gc": "import gc; print(len(gc.get_objects()))",
    "settrace": "import sys; sys.settrace(lambda *a: None)",
    "setprofile": "import sys; sys.setprofile(lambda *a: None)",
    "addaudithook": "import sys; sys.addaudithook(lambda *a: None)",
    "setrlimit": "import resource; resource.setrlimit(resource.RLIMIT_CPU, (100, 100))",
    "chdir": "import os; os.chdir('/')",
}


@pytest.mark.parametrize("attempt", TAMPER_ATTEMPTS, ids=str)
def test_tampering_with_the_interpreter_is_blocked(attempt: str) -> None:
    assert_blocked(run(TAMPER_ATTEMPTS[attempt]))


def test_a_caught_violation_still_fails_the_run(secret: tuple[Path, str]) -> None:
    path, value = secret
    result = run(f"try:\n    open({str(path)!r})\nexcept PermissionError:\n    pass\n"
                 "print('carried on')")
    assert_blocked(result, "reading files outside the scratch directory")
    assert result.stdout == "carried on\n"
    assert value not in everything(result)


def test_finalizers_cannot_run_after_the_audit_hook_is_gone(secret: tuple[Path, str]) -> None:
    # Interpreter shutdown clears audit hooks before dropping its last objects.
    path, value = secret
    code = f"""
import atexit, codecs
class Leak:
    def __init__(self):
        self.me = self
    def __call__(self, name):
        return None
    def __del__(self, open=open, print=print):
        print(open({str(path)!r}).read(), flush=True)
codecs.register(Leak())
atexit.register(lambda open=open: print(open({str(path)!r}).read(), flush=True))
print("done")
"""
    result = run(code)
    assert result.stdout == "done\n", result
    assert value not in everything(result)


def test_closing_the_report_channel_cannot_hide_a_violation() -> None:
    code = ("import os\nos.close(3)\nopen('x', 'w')  # takes descriptor 3\n"
            "try:\n    open('/etc/passwd')\nexcept OSError:\n    pass\nprint('hidden')")
    result = run(code)
    assert_blocked(result, "report channel")
    assert "root:" not in everything(result)


def test_forged_report_lines_only_affect_the_runs_own_result() -> None:
    forged = run("import os\nos.write(3, b'S\\tforged setup failure\\n')\n"
                 "os.write(3, b'R\\t{\"ok\": false, \"kind\": {\"x\": 1}, \"error\": 5}\\n')\n"
                 "os._exit(1)")
    assert forged.kind == "exception" and forged.error == "5"  # no SandboxError, types intact


def test_max_processes_allows_that_many_forks() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=3, max_processes=1)
    code = ("import os\npid = os.fork()\nif pid == 0:\n    print('child', flush=True)\n"
            "    os._exit(0)\nos.waitpid(pid, 0)\nprint('parent')\nos.fork()")
    result = run(code, limits)
    assert result.stdout == "child\nparent\n"
    assert_blocked(result, "process limit (1) reached")


def test_the_audit_hook_reads_no_globals() -> None:
    """Code that rebinds module globals or builtins must not change the hook's decisions."""
    def nested(code: types.CodeType) -> Iterator[types.CodeType]:
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield const
                yield from nested(const)

    codes = list(nested(_sandbox_child.make_audit_hook.__code__))
    assert len(codes) > 10
    for code in codes:
        names = {i.argval for i in dis.get_instructions(code)
                 if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
        assert not names, f"{code.co_name} reads globals {names}"


def test_seccomp_program_jumps_stay_inside_the_program() -> None:
    for arch, numbers in _sandbox_child.SECCOMP_ARCHES.values():
        for block in (True, False):
            program = _sandbox_child.seccomp_program(arch, numbers, 1234, block)
            assert program[-1] == (_sandbox_child.BPF_RET, 0, 0, _sandbox_child.SECCOMP_ALLOW)
            assert len(program) < 256
            for index, (code, jt, jf, _k) in enumerate(program):
                if code != _sandbox_child.BPF_RET and code != _sandbox_child.BPF_LD_ABS:
                    assert index + 1 + max(jt, jf) < len(program)


# --- resource limits -----------------------------------------------------------------


@pytest.mark.parametrize("code", [
    "while True:\n    pass",
    "import signal\nsignal.signal(signal.SIGXCPU, lambda *a: None)\nwhile True:\n    pass",
    "sum(range(10 ** 12))",  # one long C call: no Python-level signal handling
])
def test_cpu_limit(code: str) -> None:
    result = run(code)
    assert not result.ok and result.kind == "cpu_limit", result
    assert result.error == "killed: CPU time limit (1 s) exceeded"
    assert result.duration_s < LIMITS.cpu_seconds + 1.5


def test_wall_clock_limit() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=0.8, memory_mb=256)
    result = run("import time\nprint('started', flush=True)\ntime.sleep(60)", limits)
    assert not result.ok and result.kind == "wall_limit", result
    assert result.error == "killed: wall-clock limit (0.8 s) exceeded"
    assert result.stdout == "started\n"
    assert 0.8 <= result.duration_s < 1.8


@pytest.mark.parametrize("code", [
    "x = bytearray(10 ** 10)",
    "chunks = []\nwhile True:\n    chunks.append(b' ' * 10 ** 6)",
])
def test_memory_limit(code: str) -> None:
    result = run(code)
    assert not result.ok and result.kind == "memory_limit", result
    assert result.error == "killed: memory limit (256 MB) exceeded"


@pytest.mark.parametrize("stream", ["sys.stdout", "sys.stderr"])
def test_output_limit(stream: str) -> None:
    result = run(f"import sys\nwhile True:\n    print('flood' * 100, file={stream})")
    assert not result.ok and result.kind == "output_limit", result
    assert result.error == "killed: output limit (8000 bytes) exceeded"
    total = len(result.stdout.encode()) + len(result.stderr.encode())
    assert 0 < total <= LIMITS.max_output_bytes


# --- the event loop ------------------------------------------------------------------


def test_concurrent_runs_share_one_loop_without_blocking_it() -> None:
    async def main() -> tuple[list[SandboxResult], float, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)

        ticking = asyncio.create_task(ticker())
        limits = SandboxLimits(cpu_seconds=5, wall_seconds=20)
        started = time.monotonic()
        results = await asyncio.gather(*(
            arun_code(f"import time, math\ntime.sleep(0.5)\nprint(math.factorial({n}))", limits)
            for n in range(20)))
        elapsed = time.monotonic() - started
        ticking.cancel()
        return list(results), elapsed, max(b - a for a, b in itertools.pairwise(ticks))

    gc.collect()  # a full collection of pytest's own heap mid-test would pause the loop too
    results, elapsed, longest_gap = asyncio.run(main())
    assert all(r.ok for r in results), results
    assert [r.stdout for r in results] == [f"{math.factorial(n)}\n" for n in range(20)]
    assert elapsed < 5  # twenty half-second programs overlapped instead of queueing (10 s)
    assert longest_gap < 1.0  # the loop kept turning (spawning costs it a few ms per run)


def test_cancelling_a_run_kills_the_child_and_cleans_up() -> None:
    before = set(Path(tempfile.gettempdir()).glob("dspex-sandbox-*"))

    async def main() -> None:
        task = asyncio.create_task(arun_code("import time; time.sleep(60)", LIMITS))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert set(Path(tempfile.gettempdir()).glob("dspex-sandbox-*")) <= before
    assert not _sandbox_processes()


def test_no_zombies_or_stray_processes_remain() -> None:
    for code in ("print(1)", "import os; os.fork()", "import time; time.sleep(60)"):
        run(code, SandboxLimits(cpu_seconds=1, wall_seconds=0.5))
    assert not _sandbox_processes()


def _sandbox_processes() -> list[str]:
    """Children of this process (zombies included) and any process running the sandbox."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) or b"_sandbox_child" in cmdline:
            found.append(f"{entry.name} {fields.get('State', '?').strip()}")
    return found


# --- misuse --------------------------------------------------------------------------


def test_run_code_refuses_to_block_a_running_loop() -> None:
    async def main() -> None:
        with pytest.raises(SandboxError, match="await arun_code"):
            run_code("print(1)")

    asyncio.run(main())


@pytest.mark.parametrize("bad", [{"memory_mb": 16}, {"cpu_seconds": 0}, {"wall_seconds": -1},
                                 {"max_output_bytes": 0}, {"max_processes": -1}])
def test_limits_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        SandboxLimits(**bad)  # type: ignore[arg-type]


def test_code_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        run_code(b"print(1)")  # type: ignore[arg-type]


# --- the kernel layers alone (audit hook switched off) -----------------------------


def run_without_audit_hook(code: str) -> SandboxResult:
    return asyncio.run(sandbox._arun_code(code, LIMITS, audit_hook=False))


def assert_refused_by_kernel(result: SandboxResult) -> None:
    assert not result.ok and result.kind == "exception", result
    assert result.error is not None and "PermissionError" in result.error, result


@needs_landlock
def test_kernel_alone_keeps_files_private(secret: tuple[Path, str], tmp_path: Path) -> None:
    path, value = secret
    read = run_without_audit_hook(f"print(open({str(path)!r}).read())")
    assert_refused_by_kernel(read)
    assert value not in everything(read)
    write = run_without_audit_hook(f"open({str(tmp_path / 'pwned')!r}, 'w')")
    assert_refused_by_kernel(write)
    assert not (tmp_path / "pwned").exists()


@needs_seccomp
def test_kernel_alone_refuses_sockets_and_processes(listener: socket.socket,
                                                    tmp_path: Path) -> None:
    port = listener.getsockname()[1]
    marker = tmp_path / "ran"
    for code in (f"import socket; socket.create_connection(('127.0.0.1', {port}))",
                 "import os; os.fork()",
                 f"import ctypes; assert ctypes.CDLL(None).fork() >= 0, 'refused'\n"
                 f"open({str(marker)!r}, 'w')"):
        result = run_without_audit_hook(code)
        assert not result.ok, result
    assert not marker.exists()


@needs_signal_isolation
def test_kernel_alone_protects_other_processes(victim: int) -> None:
    for code in (f"import os; os.kill({victim}, 9)",
                 f"import ctypes; assert ctypes.CDLL(None).kill({victim}, 9) == 0, 'refused'"):
        assert not run_without_audit_hook(code).ok
