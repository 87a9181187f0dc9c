"""The half of the sandbox that runs inside the child process.

:mod:`dspex_lab.programs.sandbox` runs this file as a script (the parent never
imports it), in two stages that share one process:

``setup`` (``python -I -S -B``)
    applies the kernel layers that need :mod:`ctypes`: new network and IPC
    namespaces and an empty capability set when running as root, the
    no-new-privileges bit, a Landlock ruleset and a seccomp filter. Then it
    ``exec``s a fresh interpreter, so the interpreter that runs untrusted code
    never loaded ``ctypes`` (whose C types would stay reachable forever).
``run`` (``python -I -B -X utf8``)
    reads the code from stdin, sets resource limits, installs the audit hook
    and executes the code with ``__name__ == "__main__"``.

Results travel on file descriptor 3 as tab-separated lines: ``S`` a setup
failure (the parent raises :class:`~dspex_lab.errors.SandboxError`), ``G``
setup done and the code starts, ``V`` the first forbidden operation (written by
the audit hook when it happens, so the code cannot hide it by exiting early),
``R`` the final JSON outcome. The code can write to descriptor 3 too, so the
parent trusts nothing after ``G`` beyond what concerns that run's own result.

Everything after the hook is installed runs next to hostile code. The hook
keeps every value it uses in its own closure and calls nothing the code could
rebind, and the process always leaves through ``os._exit``: a normal
interpreter shutdown clears audit hooks before it drops the last objects, whose
``__del__`` methods would then run unpoliced.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import linecache
import os
import posix
import resource
import signal
import stat
import sys
import sysconfig
import traceback
import types
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, NoReturn

REPORT_FD = 3
EXIT_SETUP = 3
EXIT_UNREPORTED_VIOLATION = 86  # the code broke descriptor 3, so the hook exits instead
EXIT_INTERNAL = 70
SOURCE_NAME = "<sandbox>"
MAX_WRITE_OPENS = 256  # bounds scratch usage to about this many x max_file_bytes
MAX_OPEN_FILES = 64
MAX_ERROR_CHARS = 500
NICENESS = 10

# Third-party packages whose native extension modules may load. Native code is
# invisible to the audit hook, so the list stays short and deliberate.
NATIVE_PACKAGES = ("numpy", "pandas")
ZONEINFO_DIRS = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo",
                 "/etc/zoneinfo")
READABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
# CPU-count probes that libraries make inside try/except (pandas reads the cgroup
# quota); refusing them would fail innocent runs, and they hold no secrets.
CPU_INFO_FILES = ("/proc/cpuinfo", "/sys/devices/system/cpu/online",
                  "/sys/devices/system/cpu/possible", "/sys/fs/cgroup/cpu.max",
                  "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
SYSTEM_LIB_DIRS = ("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64",
                   "/etc/ld.so.cache")

# Modules whose import is refused (checked against the first and last dotted
# component and the file name): FFI, sockets, process spawning, interpreter
# internals, and C code that opens files or devices without an audit event.
DENIED_MODULES = frozenset({
    "ctypes", "_ctypes", "_ctypes_test", "cffi", "_cffi_backend",
    "socket", "_socket", "ssl", "_ssl",
    "_posixsubprocess", "_posixshmem", "_multiprocessing",
    "_xxsubinterpreters", "_xxinterpchannels", "_interpreters", "_interpchannels",
    "_interpqueues", "_testcapi", "_testinternalcapi", "_testbuffer", "_testmultiphase",
    "_testimportmultiple", "_testclinic", "_testsinglephase", "_xxtestfuzz",
    "xxlimited", "xxlimited_35", "xxsubtype", "_remote_debugging",
    "sqlite3", "_sqlite3", "_dbm", "_gdbm", "readline", "_tkinter", "_curses",
    "_curses_panel", "nis", "ossaudiodev", "syslog", "pwd", "grp", "spwd",
})
NETWORK_EVENTS = ("socket.", "http.client.", "urllib.", "ftplib.", "smtplib.", "imaplib.",
                  "poplib.", "nntplib.", "telnetlib.", "webbrowser.")
NATIVE_EVENTS = ("ctypes.", "sqlite3.", "syslog.", "winreg.", "msvcrt.", "_winapi.")
PROCESS_EVENTS = ("os.exec", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
                  "subprocess.Popen", "pty.spawn")
INTERPRETER_EVENTS = ("sys.addaudithook", "sys.settrace", "sys.setprofile",
                      "sys.monitoring.register_callback", "gc.get_objects",
                      "gc.get_referrers", "gc.get_referents", "cpython.PyInterpreterState_New",
                      "setopencodehook")

# --- Linux constants for the setup stage --------------------------------------
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LL_REMOVE_DIR, LL_REMOVE_FILE, LL_MAKE_DIR, LL_MAKE_REG = 1 << 4, 1 << 5, 1 << 7, 1 << 8
LL_REFER, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_READ = LL_READ_FILE | LL_READ_DIR
LL_SCRATCH = (LL_READ | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR
              | LL_MAKE_REG | LL_REFER | LL_TRUNCATE)
NR_LANDLOCK_CREATE_RULESET, NR_LANDLOCK_ADD_RULE, NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446

SECCOMP_MODE_FILTER = 2
SECCOMP_ALLOW = 0x7FFF0000
SECCOMP_KILL_PROCESS = 0x80000000
SECCOMP_EPERM = 0x00050000 | 1
SECCOMP_ENOSYS = 0x00050000 | 38
BPF_LD_ABS, BPF_JEQ, BPF_JGE, BPF_JSET, BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
# Syscalls the code never needs; a few of them are the only way to reach another
# process (pidfd_*, process_vm_*, ptrace) or the network without the audit hook.
SECCOMP_DENIED = ("socket", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open",
                  "pidfd_send_signal", "pidfd_getfd", "tkill", "memfd_create", "io_uring_setup",
                  "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
                  "bpf", "perf_event_open", "userfaultfd", "unshare", "setns", "mount",
                  "umount2", "pivot_root", "chroot", "mknod", "mknodat", "open_by_handle_at",
                  "name_to_handle_at", "init_module", "finit_module", "delete_module",
                  "kexec_load", "kexec_file_load", "syslog", "fsopen", "fsmount", "move_mount",
                  "open_tree", "quotactl", "swapon", "reboot")
# (x86_64, generic) numbers; the generic table is aarch64's and lacks the old calls.
_SYSCALLS: dict[str, tuple[int, int | None]] = {
    "socket": (41, 198), "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138), "rt_tgsigqueueinfo": (297, 240), "ptrace": (101, 117),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424), "pidfd_getfd": (438, 438), "memfd_create": (319, 279),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "unshare": (272, 97),
    "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41),
    "chroot": (161, 51), "mknod": (133, None), "mknodat": (259, 33),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "syslog": (103, 116), "fsopen": (430, 430),
    "fsmount": (432, 432), "move_mount": (429, 429), "open_tree": (428, 428),
    "quotactl": (179, 60), "swapon": (167, 224), "reboot": (169, 142), "clone": (56, 220),
    "clone3": (435, 435), "fork": (57, None), "vfork": (58, None),
}
SECCOMP_ARCHES: dict[str, tuple[int, Mapping[str, int]]] = {
    "x86_64": (0xC000003E, {name: nrs[0] for name, nrs in _SYSCALLS.items()}),
    "aarch64": (0xC00000B7, {name: nrs[1] for name, nrs in _SYSCALLS.items()
                             if nrs[1] is not None}),
}


class _SetupError(Exception):
    """A mandatory layer could not be applied; the code must not run."""


def main(argv: list[str], _exit: Callable[[int], NoReturn] = os._exit) -> NoReturn:
    """Run one stage and always leave through ``os._exit`` (see the module docstring).

    ``_exit`` is bound when the call starts, so code that rebinds ``os._exit``
    or this module's globals cannot turn the exit into a normal shutdown.
    """
    status = EXIT_INTERNAL
    try:
        config = json.loads(argv[2])
        status = _setup(config) if argv[1] == "setup" else _run(config)
    finally:
        _exit(status)


def _emit(tag: str, text: str) -> None:
    """Send one report line to the parent; a closed descriptor only loses the report."""
    line = f"{tag}\t{text.replace(chr(10), ' ')}\n".encode("utf-8", "backslashreplace")
    with contextlib.suppress(OSError):
        os.write(REPORT_FD, line)


# --- setup stage ---------------------------------------------------------------


def _setup(config: dict[str, Any]) -> int:
    """Apply the kernel layers, then exec the run stage; report why if that fails."""
    try:
        if config["report_fd"] != REPORT_FD:
            os.dup2(config["report_fd"], REPORT_FD)
            os.close(config["report_fd"])
        config["report_fd"] = REPORT_FD
        os.nice(NICENESS)  # busy code must not starve the kernel process's event loop
        config["layers"] = _kernel_layers(config) if sys.platform == "linux" else []
        script = os.path.abspath(__file__)
        os.execv(sys.executable, [sys.executable, "-I", "-B", "-X", "utf8", script, "run",
                                  json.dumps(config)])
    except Exception as exc:  # anything unexpected: refuse to run the code at all
        _emit("S", f"{type(exc).__name__}: {exc}")
    return EXIT_SETUP


def _kernel_layers(config: dict[str, Any]) -> list[str]:
    """Best-effort kernel confinement; only shedding root capabilities is mandatory."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        if _holds_capabilities():
            raise _SetupError(
                "ctypes is unavailable, so root capabilities cannot be dropped") from None
        return []
    layers: list[str] = []
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the kernel process
    if os.geteuid() == 0 and libc.unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0:
        layers.append("netns")
    if _holds_capabilities():
        _drop_capabilities(libc)
        layers.append("no-capabilities")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return layers  # Landlock and seccomp both require it
    layers.append("no-new-privs")
    abi = _landlock(libc)
    if abi:
        layers.append(f"landlock-v{abi}")
    if _seccomp(libc, block_processes=config["max_processes"] == 0):
        layers.append("seccomp")
    return layers


def _capability_sets() -> dict[str, int]:
    """The Cap* lines of /proc/self/status as integers (empty if unreadable)."""
    try:
        with open("/proc/self/status") as status:
            lines = [line.split(":", 1) for line in status if line.startswith("Cap")]
    except OSError:
        return {}
    return {name: int(value, 16) for name, value in lines}


def _holds_capabilities() -> bool:
    caps = _capability_sets()
    return os.geteuid() == 0 or any(caps.get(k) for k in ("CapPrm", "CapInh", "CapAmb"))


def _drop_capabilities(libc: Any) -> None:
    """Empty the bounding, ambient and inheritable sets, so the exec'd stage has none."""
    import ctypes

    try:
        with open("/proc/sys/kernel/cap_last_cap") as last:
            last_cap = int(last.read())
    except (OSError, ValueError):
        last_cap = 63
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} words
    if libc.capget(header, data) == 0:
        data[2] = data[5] = 0
        libc.capset(header, data)
    caps = _capability_sets()
    leftover = caps.get("CapInh", 1) or caps.get("CapAmb", 1)
    if os.geteuid() == 0:
        leftover = leftover or caps.get("CapBnd", 1)
    if leftover:
        raise _SetupError("could not drop Linux capabilities; refusing to run untrusted code")


def _landlock(libc: Any) -> int:
    """Restrict this process tree's file access (and TCP and signals when supported).

    Returns the Landlock ABI version applied, or 0 when unavailable. All or
    nothing: a failure before ``restrict_self`` leaves the process unrestricted.
    """
    import ctypes

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64),
                    ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = int(syscall(ctypes.c_long(NR_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                      ctypes.c_uint32(1)))
    if abi < 1:
        return 0
    handled = (1 << (13 if abi == 1 else 14 if abi == 2 else 15 if abi < 5 else 16)) - 1
    attr = RulesetAttr(handled, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = int(syscall(ctypes.c_long(NR_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                          ctypes.c_size_t(size), ctypes.c_uint32(0)))
    if ruleset < 0:
        return 0
    try:
        for path, access in _landlock_rules():
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # paths that do not exist need no rule
            try:
                is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
                allowed = access & handled & (-1 if is_dir else LL_FILE_RIGHTS)
                rule = PathBeneath(allowed, fd)
                if allowed and syscall(ctypes.c_long(NR_LANDLOCK_ADD_RULE), ctypes.c_long(ruleset),
                                       ctypes.c_long(1), ctypes.byref(rule), ctypes.c_long(0)):
                    return 0
            finally:
                os.close(fd)
        if syscall(ctypes.c_long(NR_LANDLOCK_RESTRICT_SELF), ctypes.c_long(ruleset),
                   ctypes.c_long(0)):
            return 0
    finally:
        os.close(ruleset)
    return abi


def _landlock_rules() -> list[tuple[str, int]]:
    """What the run stage may touch: Python, system libraries, a few devices, scratch."""
    paths = sysconfig.get_paths()
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    python.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    # Under -S a virtual environment is not applied yet; the run stage will use it.
    bin_dir = os.path.dirname(os.path.abspath(sys.executable))
    python.update(d for d in (bin_dir, os.path.dirname(bin_dir))
                  if os.path.exists(os.path.join(d, "pyvenv.cfg")))
    rules = [(path, LL_READ) for path in sorted(python)]
    rules += [(path, LL_READ)
              for path in SYSTEM_LIB_DIRS + ZONEINFO_DIRS + READABLE_DEVICES + CPU_INFO_FILES]
    rules.append((os.path.abspath(__file__), LL_READ_FILE))
    rules.append(("/dev/null", LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE))
    rules += [(path, LL_EXECUTE | LL_READ_FILE) for path in _executables()]
    rules.append((os.getcwd(), LL_SCRATCH))
    return rules


def _executables() -> list[str]:
    """The interpreter binary and its ELF loader: the only files the run stage may exec."""
    found = [os.path.realpath(sys.executable)]
    try:
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps if "/ld-" in line}
    except OSError:
        mapped = set()
    found += sorted(p for p in mapped if os.path.basename(p).startswith("ld-"))
    return found


def seccomp_program(audit_arch: int, numbers: Mapping[str, int], pid: int,
                    block_processes: bool) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp filter as (code, jt, jf, k) instructions.

    Foreign architectures (e.g. the i386 ABI of an x86_64 process) are killed;
    the syscalls in :data:`SECCOMP_DENIED` fail with EPERM; signals may only
    target this process; with ``block_processes``, ``fork``/``clone`` fail
    unless they create a thread (``clone3`` says ENOSYS so libc falls back).
    """
    program = [(BPF_LD_ABS, 0, 0, 4), (BPF_JEQ, 1, 0, audit_arch),
               (BPF_RET, 0, 0, SECCOMP_KILL_PROCESS), (BPF_LD_ABS, 0, 0, 0)]
    if "fork" in numbers:  # x86_64: refuse the x32 ABI
        program += [(BPF_JGE, 0, 1, 0x40000000), (BPF_RET, 0, 0, SECCOMP_EPERM)]

    def deny(name: str, action: int = SECCOMP_EPERM) -> None:
        if name in numbers:
            program.extend([(BPF_JEQ, 0, 1, numbers[name]), (BPF_RET, 0, 0, action)])

    def first_argument_in(name: str, allowed: tuple[int, ...]) -> None:
        n = len(allowed)
        program.extend([(BPF_JEQ, 0, n + 3, numbers[name]), (BPF_LD_ABS, 0, 0, 16)])
        program.extend((BPF_JEQ, n - i, 0, value) for i, value in enumerate(allowed))
        program.extend([(BPF_RET, 0, 0, SECCOMP_EPERM), (BPF_RET, 0, 0, SECCOMP_ALLOW)])

    for name in SECCOMP_DENIED:
        deny(name)
    first_argument_in("kill", (pid, 0, -pid & 0xFFFFFFFF))
    for name in ("tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        first_argument_in(name, (pid,))
    if block_processes:
        deny("fork")
        deny("vfork")
        deny("clone3", SECCOMP_ENOSYS)
        program.extend([(BPF_JEQ, 0, 4, numbers["clone"]), (BPF_LD_ABS, 0, 0, 16),
                        (BPF_JSET, 1, 0, CLONE_THREAD), (BPF_RET, 0, 0, SECCOMP_EPERM),
                        (BPF_RET, 0, 0, SECCOMP_ALLOW)])
    program.append((BPF_RET, 0, 0, SECCOMP_ALLOW))
    return program


def _seccomp(libc: Any, *, block_processes: bool) -> bool:
    """Install :func:`seccomp_program`; False on architectures we have no table for."""
    import ctypes

    arch = SECCOMP_ARCHES.get(os.uname().machine)
    if arch is None:
        return False

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    steps = seccomp_program(arch[0], arch[1], os.getpid(), block_processes)
    table = (Instruction * len(steps))(*(Instruction(*step) for step in steps))
    program = Program(len(steps), ctypes.cast(table, ctypes.POINTER(Instruction)))
    return int(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0)) == 0


# --- run stage -------------------------------------------------------------------


def _run(config: dict[str, Any]) -> int:
    """Confine this interpreter, run the code, report the outcome; returns the exit status."""
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes raise EFBIG instead
        source = sys.stdin.buffer.read()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # input() now sees end-of-file instead of our pipe
        os.close(devnull)
        scratch = os.path.realpath(os.getcwd())
        read_roots, native_roots = python_roots()
        sys.path[:] = [entry for entry in sys.path
                       if entry and _within(os.path.realpath(entry), read_roots)]
        sys.path_importer_cache.clear()
        _set_limits(config)
        if config["audit"]:
            linecache.getlines(os.path.abspath(__file__))  # tracebacks must not re-read us
            sys.addaudithook(make_audit_hook(scratch, read_roots, native_roots,
                                             config["max_processes"]))
            for name in DENIED_MODULES:
                sys.modules.pop(name, None)
            sys.modules["ctypes"] = _refusing_stub("ctypes", "ctypes.dlsym")
            sys.modules["_posixsubprocess"] = _refusing_stub("_posixsubprocess", "os.exec")
    except Exception as exc:
        _emit("S", f"{type(exc).__name__}: {exc}")
        return EXIT_SETUP
    sys.argv = [SOURCE_NAME]
    _emit("G", "")  # from here on, report lines may come from the code itself
    pid = os.getpid()
    outcome = _execute(source, config["memory_bytes"] // (1024 * 1024))
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):  # the code may have replaced or closed them
            if stream is not None:
                stream.flush()
    if os.getpid() != pid:
        return 0  # a child forked by the code (max_processes > 0) ends without a report
    _emit("R", json.dumps(outcome))
    return 0 if outcome["ok"] else 1


def _refusing_stub(name: str, event: str) -> types.ModuleType:
    """A stand-in module whose functions are refused, through the audit hook, when called.

    Some libraries import these modules at import time without needing them:
    pandas imports ``subprocess`` (hence ``_posixsubprocess``) and ``ctypes``
    (for a Windows-only message). With the stubs they import; any real use
    still fails and is reported. ``_ctypes`` itself stays blocked.
    """
    stub = types.ModuleType(name, "Stand-in: not available in the sandbox.")
    audit = sys.audit

    def attribute(attr: str) -> Callable[..., NoReturn]:
        if attr.startswith("__"):
            raise AttributeError(attr)

        def refused(*args: object, **kwargs: object) -> NoReturn:
            audit(event, f"{name}.{attr}")  # the audit hook refuses and reports this
            raise PermissionError(f"blocked: {name}.{attr} is not available in the sandbox")

        return refused

    stub.__getattr__ = attribute  # type: ignore[method-assign]
    return stub


def _within(path: str, roots: tuple[str, ...] | set[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def python_roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(directories the code may read, directories native modules may load from).

    Readable: the interpreter's stdlib and site-packages, plus time-zone data.
    Native: ``lib-dynload`` and the :data:`NATIVE_PACKAGES` only.
    """
    paths = sysconfig.get_paths()
    prefixes = {os.path.realpath(p)
                for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    candidates = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    candidates.update(entry for entry in sys.path
                      if entry and _within(os.path.realpath(entry), prefixes))
    read = sorted({os.path.realpath(c) for c in candidates if os.path.isdir(c)})
    native = [d for d in read if os.path.basename(d) == "lib-dynload"]
    native += [os.path.realpath(os.path.join(d, package)) for d in read
               for package in NATIVE_PACKAGES if os.path.isdir(os.path.join(d, package))]
    read += [os.path.realpath(d) for d in ZONEINFO_DIRS if os.path.isdir(d)]
    return tuple(read), tuple(native)


def _set_limits(config: dict[str, Any]) -> None:
    """Soft and hard limits alike: CPU ends in SIGKILL, the rest in Python errors."""
    limits = [(resource.RLIMIT_CPU, config["cpu_seconds"]),
              (resource.RLIMIT_AS, config["memory_bytes"]),
              (resource.RLIMIT_FSIZE, config["file_bytes"]),
              (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
              (resource.RLIMIT_CORE, 0)]
    if "seccomp" not in config["layers"]:
        # Counts every process and thread of the user (and is ignored for root),
        # so it is only the fallback when seccomp cannot refuse fork().
        limits.append((resource.RLIMIT_NPROC, config["max_processes"]))
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def make_audit_hook(scratch: str, read_roots: tuple[str, ...], native_roots: tuple[str, ...],
                    max_forks: int) -> Callable[[str, tuple[Any, ...]], None]:
    """Build the audit hook that enforces the file, network and process policy.

    The nested functions read only their own closure (never module globals or
    builtins, which the code may rebind), touch only exact ``str``/``bytes``/
    ``int`` values (whose methods cannot be overridden), and call only C
    functions bound here. ``tests/test_sandbox.py`` checks that no nested code
    loads a global name.

    Refusals raise ``PermissionError`` (``ModuleNotFoundError`` for imports,
    so ``try: import x / except ImportError`` fallbacks keep working). Hostile
    refusals (files outside the scratch directory, network, signals to other
    processes, native code, interpreter introspection) are also reported to the
    parent at once, so the run fails even if the code catches the error. The
    rest (process starts, limit changes, unsupported path forms) fail the run
    only when uncaught, because libraries attempt them inside ``try`` blocks.
    """
    type_, str_, bytes_, int_, repr_, len_ = type, str, bytes, int, repr, len
    permission_error, module_not_found = PermissionError, ModuleNotFoundError
    os_error, value_error = OSError, ValueError
    lstat, readlink, getcwd, write = posix.lstat, posix.readlink, posix.getcwd, posix.write
    fstat, exit_now, getpid, getpgrp = posix.fstat, posix._exit, posix.getpid, posix.getpgrp
    report_fd, max_writes, main_pid = REPORT_FD, MAX_WRITE_OPENS, posix.getpid()
    report_pipe = (fstat(report_fd).st_dev, fstat(report_fd).st_ino)
    unreported = EXIT_UNREPORTED_VIOLATION
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    denied, network, native_events = DENIED_MODULES, NETWORK_EVENTS, NATIVE_EVENTS
    scratch_tree = (scratch + "/",)
    read_trees = tuple(root.rstrip("/") + "/" for root in read_roots) + scratch_tree
    read_exact = frozenset((*read_roots, scratch, *READABLE_DEVICES, *CPU_INFO_FILES,
                            os.path.realpath(sys.executable)))
    write_exact = frozenset((scratch, "/dev/null"))
    native_trees = tuple(root + "/" for root in native_roots)
    counters = [0, 0, 0]  # violations reported, files opened for writing, forks

    def refuse(message: str, hostile: bool = True) -> NoReturn:
        if hostile and not counters[0]:
            counters[0] = 1
            line = "V\t" + message.replace("\n", " ") + "\n"
            try:
                found = fstat(report_fd)
                if (found.st_dev, found.st_ino) != report_pipe:
                    raise os_error  # closed or replaced by the code
                write(report_fd, line.encode("utf-8", "backslashreplace"))
            except os_error:
                exit_now(unreported)  # the attempt must not go unreported
        raise permission_error(message)

    def as_text(path: Any) -> str:
        if type_(path) is str_:
            text: str = path
            return text
        if type_(path) is bytes_:
            decoded: str = path.decode("utf-8", "surrogateescape")
            return decoded
        return refuse("blocked: only str or bytes paths are supported here; "
                      "convert path objects with str()", False)

    def resolve(path: str, base: str | None) -> str:
        """The absolute path the kernel would reach, symlinks followed; '' if unknowable."""
        try:
            if not path.startswith("/"):
                path = (getcwd() if base is None else base) + "/" + path
            pending = path.split("/")
            pending.reverse()
            parts: list[str] = []
            hops = 0
            while pending:
                name = pending.pop()
                if name == "" or name == ".":
                    continue
                if name == "..":
                    if parts:
                        parts.pop()
                    continue
                parts.append(name)
                try:
                    mode = lstat("/" + "/".join(parts)).st_mode
                except os_error:
                    continue  # missing: nothing to follow
                if mode & 0o170000 == 0o120000:
                    hops += 1
                    if hops > 40:
                        return ""
                    target = readlink("/" + "/".join(parts))
                    parts.pop()
                    if target.startswith("/"):
                        parts.clear()
                    more = target.split("/")
                    more.reverse()
                    pending.extend(more)
            return "/" + "/".join(parts)
        except (os_error, value_error):
            return ""

    def base_of(dir_fd: Any) -> str | None:
        """The directory a ``dir_fd`` argument refers to (None: the working directory)."""
        if dir_fd is None or (type_(dir_fd) is int_ and (dir_fd == -1 or dir_fd == -100)):
            return None
        if type_(dir_fd) is int_:
            try:
                target: str = readlink("/proc/self/fd/" + str_(dir_fd))
            except os_error:
                target = ""
            if target.startswith("/") and not target.endswith(" (deleted)"):
                return target
        return refuse("blocked: this dir_fd cannot be checked inside the sandbox", False)

    def check_read(path: Any, base: str | None, what: str) -> None:
        text = as_text(path)
        real = resolve(text, base)
        if not (real in read_exact or real.startswith(read_trees)):
            refuse(f"blocked: {what} outside the scratch directory is not allowed "
                   f"({repr_(text)[:200]})")

    def check_write(path: Any, base: str | None) -> None:
        text = as_text(path)
        real = resolve(text, base)
        if not (real in write_exact or real.startswith(scratch_tree)):
            refuse("blocked: writing files outside the scratch directory is not allowed "
                   f"({repr_(text)[:200]})")

    def count_write() -> None:
        counters[1] += 1
        if counters[1] > max_writes:
            refuse(f"blocked: too many files created or opened for writing (limit {max_writes})",
                   False)

    def on_open(args: tuple[Any, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if type_(path) is int_:
            return  # wraps a descriptor the process already holds
        if type_(flags) is not int_:
            refuse("blocked: unexpected open() arguments", False)
        if (flags & 3) != 0 or (flags & write_flags) != 0:
            if mode is None and not as_text(path).startswith("/"):
                # os.open() may carry a dir_fd the event does not show
                refuse("blocked: os.open() for writing needs an absolute path", False)
            check_write(path, None)
            count_write()
        else:
            check_read(path, None, "reading files")

    def on_mkdir(args: tuple[Any, ...]) -> None:
        check_write(args[0], base_of(args[2]))
        count_write()

    def on_rename(args: tuple[Any, ...]) -> None:
        check_write(args[0], base_of(args[2]))
        check_write(args[1], base_of(args[3]))

    def on_list(args: tuple[Any, ...]) -> None:
        if args[0] is not None and type_(args[0]) is not int_:
            check_read(args[0], None, "listing directories")

    def on_change(path: Any, dir_fd: Any, by_fd_ok: bool) -> None:
        if type_(path) is int_:
            if not by_fd_ok:  # the descriptor may be a read-only stdlib file
                refuse("blocked: changing file metadata through a descriptor is not allowed",
                       False)
            return
        check_write(path, base_of(dir_fd))

    def on_kill(args: tuple[Any, ...]) -> None:
        if type_(args[0]) is not int_ or not (args[0] == getpid() or args[0] == 0):
            refuse("blocked: signalling other processes is not allowed")

    def on_killpg(args: tuple[Any, ...]) -> None:
        if type_(args[0]) is not int_ or args[0] != getpgrp():
            refuse("blocked: signalling other processes is not allowed")

    def on_fork(args: tuple[Any, ...]) -> None:
        if getpid() != main_pid or counters[2] >= max_forks:
            refuse("blocked: starting processes is not allowed" if not max_forks else
                   f"blocked: process limit ({max_forks}) reached", False)
        counters[2] += 1

    def on_rlimit(args: tuple[Any, ...]) -> None:
        if len_(args) < 3 or args[2] is not None:  # prlimit() with no new limits only reads
            refuse("blocked: changing resource limits is not allowed", False)

    def on_import(args: tuple[Any, ...]) -> None:
        name = args[0]
        if type_(name) is not str_:
            return
        filename = args[1] if len_(args) > 1 else None
        stem = "" if filename is None else as_text(filename).rpartition("/")[2].partition(".")[0]
        if (name.partition(".")[0] in denied or name.rpartition(".")[2] in denied
                or stem in denied):
            raise module_not_found(f"blocked: importing {name!r} is not allowed in the sandbox",
                                   name=name)
        if filename is not None and not resolve(as_text(filename), None).startswith(native_trees):
            raise module_not_found(f"blocked: native extension module {name!r} is not allowed "
                                   "in the sandbox", name=name)

    def refusal(message: str, hostile: bool) -> Callable[[tuple[Any, ...]], None]:
        def handler(args: tuple[Any, ...]) -> None:
            refuse(message, hostile)
        return handler

    def read_unless_fd(args: tuple[Any, ...]) -> None:
        if type_(args[0]) is not int_:
            check_read(args[0], None, "reading files")

    handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
        "open": on_open,
        "os.listdir": on_list,
        "os.scandir": on_list,
        "os.getxattr": read_unless_fd,
        "os.listxattr": read_unless_fd,
        "os.mkdir": on_mkdir,
        "os.rmdir": lambda a: check_write(a[0], base_of(a[1])),
        "os.remove": lambda a: check_write(a[0], base_of(a[1])),
        "os.rename": on_rename,
        "os.truncate": lambda a: on_change(a[0], None, True),
        "os.chmod": lambda a: on_change(a[0], a[2], False),
        "os.chown": lambda a: on_change(a[0], a[3], False),
        "os.utime": lambda a: on_change(a[0], a[3], False),
        "os.setxattr": lambda a: on_change(a[0], None, False),
        "os.removexattr": lambda a: on_change(a[0], None, False),
        "os.link": refusal("blocked: creating links is not allowed", False),
        "os.symlink": refusal("blocked: creating links is not allowed", False),
        "os.chdir": refusal("blocked: changing the working directory is not allowed", False),
        "os.kill": on_kill,
        "os.killpg": on_killpg,
        "signal.pthread_kill": lambda a: None,  # only reaches this process's own threads
        "os.fork": on_fork,
        "resource.setrlimit": on_rlimit,
        "resource.prlimit": on_rlimit,
        "import": on_import,
    }
    # Process starts are not reported on their own: libraries probe inside try
    # blocks (platform runs `uname -p`). Interpreter tampering is.
    processes = refusal("blocked: starting processes is not allowed", False)
    interpreter = refusal("blocked: tracing or introspecting the interpreter is not allowed", True)
    handlers.update((event, processes) for event in PROCESS_EVENTS)
    handlers.update((event, interpreter) for event in INTERPRETER_EVENTS)

    def audit_hook(event: str, args: tuple[Any, ...]) -> None:
        handler = handlers.get(event)
        if handler is not None:
            handler(args)
        elif event.startswith(network):
            refuse("blocked: network access is not allowed")
        elif event.startswith(native_events):
            refuse("blocked: native code (ctypes, sqlite3) is not allowed")

    return audit_hook


def _execute(source: bytes, memory_mb: int) -> dict[str, Any]:
    """Compile and run the code; return the outcome the parent reports."""
    try:
        text = source.decode("utf-8", "surrogatepass")
        code = compile(text, SOURCE_NAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes or bad UTF-8
        _write_stderr("".join(traceback.format_exception_only(type(exc), exc)))
        line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return _outcome("syntax", f"{type(exc).__name__}: {message}{line}")
    linecache.cache[SOURCE_NAME] = (len(text), None, text.splitlines(keepends=True), SOURCE_NAME)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except SystemExit as exc:
        if exc.code is None or exc.code == 0:
            return _outcome(None, None)
        if not isinstance(exc.code, int):
            _write_stderr(f"{exc.code}\n")
        return _outcome("exception", f"SystemExit: {exc.code}")
    except BaseException as exc:
        return _failure(exc, memory_mb)
    return _outcome(None, None)


def _failure(exc: BaseException, memory_mb: int) -> dict[str, Any]:
    """Describe an exception that escaped the code, with the code's line number."""
    try:
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # drop our exec() frame
        line = _last_code_line(tb)
        if isinstance(exc, MemoryError):
            traceback.clear_frames(tb)  # release the memory before formatting anything
            _write_stderr(_format_traceback(exc, tb))
            return _outcome("memory_limit", f"killed: memory limit ({memory_mb} MB) exceeded")
        _write_stderr(_format_traceback(exc, tb))
        text = str(exc)
        if isinstance(exc, (PermissionError, ImportError)) and text.startswith("blocked: "):
            return _outcome("blocked", text)
        summary = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return _outcome("exception", summary + (f" (line {line})" if line else ""))
    except BaseException:  # e.g. a __str__ that raises: keep the outcome minimal
        return _outcome("exception", type(exc).__name__)


def _format_traceback(exc: BaseException, tb: TracebackType | None) -> str:
    """The traceback as Python prints it, minus this file's frames (the audit hook's)."""
    formatted = traceback.TracebackException(type(exc), exc, tb)
    here = os.path.abspath(__file__)
    formatted.stack = traceback.StackSummary.from_list(
        [frame for frame in formatted.stack if frame.filename != here])
    return "".join(formatted.format())


def _last_code_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SOURCE_NAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _outcome(kind: str | None, error: str | None) -> dict[str, Any]:
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS - 3] + "..."
    return {"ok": kind is None, "kind": kind, "error": error}


def _write_stderr(text: str) -> None:
    with contextlib.suppress(BaseException):  # the code may have replaced or closed stderr
        sys.stderr.write(text)


if __name__ == "__main__":
    main(sys.argv)
