"""``dspex-lab serve`` as a real server process: HTTP 200 on loopback, the bind policy,
basic-auth login and OAuth wiring, a missing store.

Servers run as subprocesses (``python -m dspex_lab.app._cli serve``) on free ports:
Panel keeps login settings in process-wide configuration, so each policy gets its
own process. ``ServerProcess`` is also used by ``test_browser_app.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_app_dashboard import seed_store

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``serve`` subprocess and what it printed (stdout and stderr in one log file)."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str = "/", headers: Mapping[str, str] | None = None
            ) -> tuple[int, dict[str, str], str, list[str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", path, headers=dict(headers or {}))
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, \
            r.headers.get_all("Set-Cookie") or []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Panel stops its loop on SIGINT
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(store: Path, tmp_path: Path, *args: str, env: Mapping[str, str] | None = None,
                 ready: bool = True, timeout: float = 120) -> ServerProcess:
    """``serve --store STORE --port <free> ARGS``; with ``ready``, waits until it answers."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "dspex_lab.app._cli", "serve", "--store", str(store),
           "--port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    server = ServerProcess(port, proc, log)
    if not ready:
        return server
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"serve did not listen within {timeout} s:\n{server.output()}")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("serve") / "seeded.duckdb"
    return path, seed_store(path, trials=6)


@pytest.fixture()
def store(seeded: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    shutil.copy(seeded[0], path)
    return path


@pytest.fixture()
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test starts; all stopped at the end, whatever happened."""
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def _run_cli(args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dspex_lab.app._cli", "serve", *args],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# -- serving on loopback -------------------------------------------------------------------

def test_serve_answers_200_on_loopback_and_prints_its_url(
        store: Path, tmp_path: Path, servers: list[ServerProcess]) -> None:
    server = start_server(store, tmp_path, "--title", "Lab <one>")
    servers.append(server)
    status, headers, body, _ = server.get("/")
    assert status == 200, body[:500]
    assert headers["content-type"].startswith("text/html")
    assert "<title>Lab &lt;one&gt;</title>" in body
    out = server.output()
    assert f"dspex_lab dashboard at http://127.0.0.1:{server.port}/" in out
    assert str(store) in out and "read-only" in out
    # bound to loopback only: the machine's other addresses do not answer
    try:
        others = {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None,
                                                                 socket.AF_INET)}
    except OSError:
        others = set()
    for address in others - {"127.0.0.1"}:
        if address.startswith("127."):
            continue
        with pytest.raises(OSError), socket.create_connection((address, server.port),
                                                              timeout=2):
            pass
    # a second session works too, and the run is on the page's model
    status, _, body, _ = server.get("/?run=nope")
    assert status == 200


def test_serve_refuses_other_addresses_without_a_login(store: Path) -> None:
    for host in ("0.0.0.0", "::", ""):
        done = _run_cli(["--store", str(store), "--host", host, "--port", str(free_port())])
        assert done.returncode == 2, (host, done.stdout, done.stderr)
        assert done.stdout == ""
        message = done.stderr
        assert "refusing to serve" in message
        for hint in ("--basic-auth-file", "DSPEX_APP_BASIC_AUTH", "--oauth-provider",
                     "PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET", "AuthPolicy.basic",
                     "ssh -L"):
            assert hint in message, (hint, message)


def test_bind_policy_in_python(store: Path) -> None:
    from dspex_lab.app import AuthPolicy, UnsafeBindError, serve
    from dspex_lab.app._auth import check_bind, is_loopback
    from dspex_lab.errors import ConfigurationError

    for host in ("127.0.0.1", "127.0.0.9", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "", "10.1.2.3", "192.168.0.10", "2001:db8::1"):
        assert not is_loopback(host), host
        with pytest.raises(UnsafeBindError, match="--basic-auth-file"):
            check_bind(host, None)
        check_bind(host, AuthPolicy.basic({"ana": "a long password"}))
    assert issubclass(UnsafeBindError, ConfigurationError)
    with pytest.raises(UnsafeBindError):
        serve(store, host="0.0.0.0", port=free_port())


def test_serve_says_how_to_create_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.duckdb"
    done = _run_cli(["--store", str(missing), "--port", str(free_port())])
    assert done.returncode == 2
    assert f"no store at {missing}" in done.stderr and "dspex-lab demo" in done.stderr
    assert "dx.configure(store=" in done.stderr
    assert not missing.exists()


# -- basic auth ---------------------------------------------------------------------------

def _cookie_header(set_cookies: Sequence[str]) -> str:
    return "; ".join(c.split(";", 1)[0] for c in set_cookies)


def _login(server: ServerProcess, user: str, password: str) -> tuple[int, str, list[str]]:
    body = urllib.parse.urlencode({"username": user, "password": password})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/login", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("Location") or "", r.headers.get_all("Set-Cookie") or []


def test_basic_auth_login_from_the_environment(store: Path, tmp_path: Path,
                                               servers: list[ServerProcess]) -> None:
    password = "pw-" + secrets.token_hex(12)
    server = start_server(store, tmp_path,
                          env={"DSPEX_APP_BASIC_AUTH": f"ana:{password}"})
    servers.append(server)
    # no cookie: sent to the login page, never the app
    status, headers, body, _ = server.get("/")
    assert status == 302 and "login" in headers["location"].split("?")[0], (status, headers)
    status, _, page, _ = server.get("/login?error=%3Cscript%3Ex%3C/script%3E")
    assert status == 200 and 'name="password"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # the error is escaped
    assert "http://" not in page and "https://" not in page  # nothing from the internet
    # wrong password: back to the form with an error, no login cookie
    status, location, cookies = _login(server, "ana", "wrong")
    assert status == 302 and "error=" in location
    assert not any(c.startswith("user=") for c in cookies)
    status, location, cookies = _login(server, "bob", password)
    assert status == 302 and not any(c.startswith("user=") for c in cookies)
    # right password: a signed cookie, and the app answers 200 with it
    status, location, cookies = _login(server, "ana", password)
    assert status == 302 and any(c.startswith("user=") for c in cookies), cookies
    status, _, body, _ = server.get("/", headers={"Cookie": _cookie_header(cookies)})
    assert status == 200 and "<title>dspex_lab</title>" in body
    status, _, page, _ = server.get("/logout", headers={"Cookie": _cookie_header(cookies)})
    assert status == 200 and "logged out" in page and "https://" not in page
    # a forged cookie is not a login
    status, _, _, _ = server.get("/", headers={"Cookie": "user=ana"})
    assert status == 302
    out = server.output()
    assert "basic auth (1 user: ana), role viewer" in out
    assert password not in out


def test_basic_auth_policies_and_their_errors(tmp_path: Path) -> None:
    from dspex_lab.app import AuthPolicy
    from dspex_lab.errors import ConfigurationError

    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "first secret", "bob": "second:secret"}))
    policy = AuthPolicy.basic_from_file(users, cookie_secret="c" * 32)
    assert dict(policy.users) == {"ana": "first secret", "bob": "second:secret"}
    kwargs = policy.panel_kwargs()
    assert kwargs == {"cookie_secret": "c" * 32, "basic_auth": dict(policy.users)}
    for shown in (repr(policy), policy.describe(), str(policy)):
        assert "secret" not in shown and "ana" in shown and "bob" in shown
    assert AuthPolicy.basic("eve:pa:ss").users == {"eve": "pa:ss"}
    assert len(AuthPolicy.basic("eve:x").cookie_secret) >= 32  # random when not given
    assert AuthPolicy.basic("eve:x").cookie_secret != AuthPolicy.basic("eve:x").cookie_secret
    for bad, match in (("no-colon", "user:password"), (":pw", "invalid user"),
                       ("eve:", "empty password"), ({}, "at least one")):
        with pytest.raises(ConfigurationError, match=match):
            AuthPolicy.basic(bad)
    with pytest.raises(ConfigurationError, match="16 characters"):
        AuthPolicy.basic("eve:x", cookie_secret="short")
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, match in (("bad.json", "not JSON"), ("list.json", "JSON object"),
                        ("absent.json", "absent.json")):
        with pytest.raises(ConfigurationError, match=match):
            AuthPolicy.basic_from_file(tmp_path / name)


def test_cli_login_options(store: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "x" * 12}))
    both = _run_cli(["--store", str(store), "--basic-auth-file", str(users),
                     "--oauth-provider", "github", "--port", str(free_port())])
    assert both.returncode == 2 and "choose one login" in both.stderr
    broken = _run_cli(["--store", str(store), "--basic-auth-file", str(tmp_path / "no.json"),
                       "--host", "0.0.0.0", "--port", str(free_port())])
    assert broken.returncode == 2 and "no.json" in broken.stderr


# -- OAuth --------------------------------------------------------------------------------

def test_oauth_login_redirects_to_the_provider(store: Path, tmp_path: Path,
                                               servers: list[ServerProcess]) -> None:
    secret = "oauth-" + secrets.token_hex(16)
    port_env = {"PANEL_OAUTH_KEY": "client-123", "PANEL_OAUTH_SECRET": secret,
                "DSPEX_APP_COOKIE_SECRET": "k" * 40}
    server = start_server(store, tmp_path, "--oauth-provider", "github",
                          "--oauth-redirect-uri", "http://127.0.0.1:1/login", env=port_env)
    servers.append(server)
    status, headers, _, _ = server.get("/")
    assert status == 302 and "login" in headers["location"].split("?")[0], headers
    status, headers, _, _ = server.get("/login")
    assert status == 302, headers
    target = urllib.parse.urlparse(headers["location"])
    assert (target.scheme, target.netloc, target.path) == (
        "https", "github.com", "/login/oauth/authorize")
    query = urllib.parse.parse_qs(target.query)
    assert query["client_id"] == ["client-123"]
    assert query["redirect_uri"] == ["http://127.0.0.1:1/login"]
    out = server.output()
    assert "OAuth via github, role viewer" in out and secret not in out


def test_oauth_policy_needs_the_client_id_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from dspex_lab.app import AuthPolicy
    from dspex_lab.errors import ConfigurationError

    monkeypatch.delenv("PANEL_OAUTH_KEY", raising=False)
    monkeypatch.delenv("PANEL_OAUTH_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="PANEL_OAUTH_KEY and PANEL_OAUTH_SECRET"):
        AuthPolicy.oauth("github")
    with pytest.raises(ConfigurationError, match=r"unknown OAuth provider 'nope'.*github"):
        AuthPolicy.oauth("nope", key="k", secret="s")
    policy = AuthPolicy.oauth("GitHub", key="k", secret="the-secret",
                              extra_params={"scope": "read:user"})
    kwargs = policy.panel_kwargs()
    assert kwargs["oauth_provider"] == "github" and kwargs["oauth_secret"] == "the-secret"
    assert kwargs["oauth_extra_params"] == {"scope": "read:user"}
    assert "the-secret" not in repr(policy)


# -- an app file under `panel serve` (what an exported app is) -----------------------------

def test_build_dashboard_works_under_panel_serve(store: Path, seeded: tuple[Path, Any],
                                                 tmp_path: Path,
                                                 servers: list[ServerProcess]) -> None:
    run_id = seeded[1]["run_id"]
    app = tmp_path / "app.py"
    app.write_text(
        "import dspex_lab.app\n"
        f"dspex_lab.app.build_dashboard(store={str(store)!r}, run_id={run_id!r}, "
        "read_only=True).servable()\n")
    port = free_port()
    log = tmp_path / "panel.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port),
             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = ServerProcess(port, proc, log)
    servers.append(server)
    deadline = time.monotonic() + 120
    status = 0
    body = ""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, _, body, _ = server.get("/app")
            break
        except OSError:
            time.sleep(0.3)
    assert status == 200, server.output()
    assert "<title>dspex_lab</title>" in body
    assert "Traceback" not in server.output() and "ERROR" not in server.output()
