"""Blanking secrets in everything an export writes (snapshot rows, app source, report).

The store already drops secret-named keys and blanks secret environment values
as it writes, but an export leaves the machine (it is mailed, committed,
published), so it is checked again, independently and more broadly:

1. **Known values**: the current values of environment variables whose names
   look secret (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``,
   ``*CREDENTIAL*``, ``*AUTH*``, ...; 8+ characters), plus any the caller adds
   (e.g. the keys and header values of the LMs of the run's program), are
   replaced wherever they occur.
2. **Shapes**: strings that look like provider keys (``sk-...``, ``gsk_...``,
   ``hf_...``, ``ghp_...``, ``AKIA...``, ``AIza...``, JWTs) and bearer tokens.
3. **Names**: in JSON, the value of a key that names a secret (``api_key``,
   ``Authorization``, ``X-Api-Key``, ``access_token``, ``headers``, ...); in
   text, the value after such a name (``Authorization: ...``, ``api_key=...``,
   ``"x-custom-auth": "..."``), which is how a header leaks into an error
   message.

Known values are also what :meth:`Scrubber.leaks` looks for in the raw bytes
of every finished file: the last check before an export is renamed into place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "Scrubber", "is_secret_name", "secret_env_values"]

REDACTED = "***"

_SECRET_ENV = re.compile(
    r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE_?KEY|ACCESS_?KEY)",
    re.IGNORECASE)
_MIN_SECRET = 8  # shorter values ("1", "true") would blank innocent text everywhere

# Name fragments that make a key secret wherever they appear in it ...
_NAME_FRAGMENTS = ("apikey", "api_key", "authorization", "password", "passwd", "secret",
                   "credential", "cookie", "bearer", "private_key", "access_key",
                   "session_key")
# ... and words that do when they are a whole part of it (``auth_token``, not ``author``,
# ``max_tokens`` or ``tokenizer``).
_NAME_PARTS = frozenset({"auth", "token", "headers", "header", "pwd", "jwt"})

_KEY_SHAPES = re.compile(r"""
      \b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}        # OpenAI, Anthropic, DeepSeek: sk-..., sk-proj-...
    | \bgsk_[A-Za-z0-9]{20,}                    # Groq
    | \bhf_[A-Za-z0-9]{20,}                     # Hugging Face
    | \bgh[pousr]_[A-Za-z0-9]{20,}              # GitHub
    | \bgithub_pat_[A-Za-z0-9_]{20,}
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}           # Slack
    | \bAKIA[0-9A-Z]{16}\b                      # AWS access key id
    | \bAIza[0-9A-Za-z_\-]{30,}                 # Google
    | \br8_[A-Za-z0-9]{20,}                     # Replicate
    | \bpplx-[A-Za-z0-9]{20,}                   # Perplexity
    | \beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}   # JWT
    """, re.VERBOSE)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]{8,}=*)")
_NAMED_VALUE = re.compile(r"""(?ix)
    (?P<name>["']?[A-Za-z0-9_\-]*
        (?:authorization|api[-_]?key|access[-_]?key|secret|token|password|passwd|pwd|
           credential|cookie|auth)[A-Za-z0-9_\-]*["']?)
    (?P<sep>\s*[:=]\s*["']?)
    (?P<scheme>(?:bearer|basic|digest|token)\s+)?
    (?P<value>[^\s"',;}\])]{6,})
    """)
_SCHEMES = frozenset({"bearer", "basic", "digest", "token"})
_HINTS = ("sk-", "rk-", "pk-", "gsk_", "hf_", "gh", "xox", "akia", "aiza", "r8_", "pplx-",
          "eyj", "bearer", "auth", "key", "token", "secret", "passw", "pwd", "credential",
          "cookie")


def is_secret_name(name: str) -> bool:
    """Whether a key or header name names a secret (``api_key``, ``X-Api-Key``,
    ``Authorization``, ``access_token``, ``x-custom-auth``, ``headers``); not
    ``max_tokens``, ``author`` or ``signature``."""
    norm = re.sub(r"[^a-z0-9]+", "_", name.strip().strip("\"'").lower()).strip("_")
    if any(f in norm for f in _NAME_FRAGMENTS):
        return True
    return any(part in _NAME_PARTS for part in norm.split("_"))


def secret_env_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of the environment variables whose names look secret (8+ characters)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if len(v) >= _MIN_SECRET and _SECRET_ENV.search(k)}


class Scrubber:
    """Blanks secrets in text and JSON values (see the module docstring for what counts).

    ``extra``: more values to blank wherever they occur (8+ characters). The
    environment is read once, when the scrubber is made: an export uses one
    scrubber from start to finish.
    """

    def __init__(self, extra: Iterable[str] = (), *,
                 environ: Mapping[str, str] | None = None) -> None:
        values = secret_env_values(environ) | {v for v in extra if len(v) >= _MIN_SECRET}
        # longest first, so a secret containing another is blanked whole
        self.values: tuple[str, ...] = tuple(sorted(values, key=len, reverse=True))
        self.redactions = 0

    # -- text -------------------------------------------------------------------------
    def text(self, text: str) -> str:
        """``text`` with known values, key-shaped strings, bearer tokens and the values
        of secret-named fields blanked."""
        out = text
        for value in self.values:
            if value in out:
                self.redactions += out.count(value)
                out = out.replace(value, REDACTED)
        lowered = out.lower()
        if not any(h in lowered for h in _HINTS):
            return out
        out = _KEY_SHAPES.sub(self._count(lambda m: REDACTED), out)
        out = _BEARER.sub(self._count(lambda m: m.group(1) + REDACTED), out)
        return _NAMED_VALUE.sub(self._named_value, out)

    def _count(self, repl: Any) -> Any:
        def counted(m: re.Match[str]) -> str:
            self.redactions += 1
            return str(repl(m))
        return counted

    def _named_value(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if (not is_secret_name(m.group("name")) or value.startswith(REDACTED)
                or value.replace(".", "").isdigit()
                or value.lower() in ("none", "null", *_SCHEMES)):
            return m.group(0)
        self.redactions += 1
        return m.group("name") + m.group("sep") + (m.group("scheme") or "") + REDACTED

    # -- structures -------------------------------------------------------------------
    def value(self, obj: Any) -> Any:
        """A JSON-like value with secrets blanked at any depth: the value of a
        secret-named key becomes ``"***"`` (kept, so readers see something was there)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            out: dict[Any, Any] = {}
            for k, v in obj.items():
                if isinstance(k, str) and is_secret_name(k) and v not in (None, "", {}, []):
                    self.redactions += 1
                    out[self.text(k)] = REDACTED
                else:
                    out[self.text(k) if isinstance(k, str) else k] = self.value(v)
            return out
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj

    def json_text(self, text: str) -> str:
        """JSON text with secrets blanked; text that is not JSON is scrubbed as text."""
        try:
            obj = json.loads(text)
        except ValueError:
            return self.text(text)
        before = self.redactions
        clean = self.value(obj)
        if self.redactions == before:
            return text  # untouched: keep the original spelling
        return json.dumps(clean, ensure_ascii=False)

    # -- the last check ---------------------------------------------------------------
    def leaks(self, data: bytes) -> list[str]:
        """Which known secret values occur in ``data`` (shown masked: ``sk-p…23``)."""
        found = []
        for value in self.values:
            if value.encode("utf-8", "replace") in data:
                found.append(f"{value[:4]}…{value[-2:]}")
        return found
