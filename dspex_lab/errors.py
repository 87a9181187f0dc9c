"""The exceptions and warnings dspex_lab raises, as one documented tree.

Every error a user can meet derives from :class:`DspexError`, so
``except dx.DspexError`` catches all of ours and nothing else. The tree::

    DspexError
    ├── ConfigurationError        bad arguments, missing API key, unknown provider
    │   ├── MissingAPIKeyError    names the environment variable to set
    │   ├── LocalModelNotInstalled a local-model package is missing (with the install
    │   │                         command; dspex_lab.local_model)
    │   └── UnsafeBindError       `dspex-lab serve` on a public address without a login
    ├── SignatureError            a signature string that does not parse
    ├── DatasetError              a dataset row missing a field the program needs
    ├── LMError                   anything that went wrong talking to a model
    │   ├── LMTimeoutError        the per-call timeout elapsed        (retryable)
    │   ├── LMConnectionError     connection refused/reset, truncated (retryable)
    │   ├── LMRateLimitError      HTTP 429                            (retryable)
    │   ├── LMServerError         HTTP 5xx                            (retryable)
    │   ├── LMBadResponseError    a 200 whose body is not a completion (retryable)
    │   ├── LMRequestError        other 4xx: bad request, auth, unknown model
    │   └── LocalModelError       the local model server could not be started
    ├── ParseError                the reply did not follow the adapter's format
    ├── SandboxError              program-of-thought code failed or was killed
    ├── EvaluationAborted         more failures than ``max_errors`` allowed
    └── ExportError               an export could not be written (dspex_lab.app)

Retryability is a property of the class (``error.retryable``), and
:func:`is_retryable` is the predicate the retry loop uses, so the policy is
written down in one place. ``error.kind`` is the short, stable name recorded
in execution records and the store ("timeout", "rate_limit", ...).
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DatasetError",
    "DspexError",
    "DspexWarning",
    "EvaluationAborted",
    "LMBadResponseError",
    "LMConnectionError",
    "LMError",
    "LMRateLimitError",
    "LMRequestError",
    "LMServerError",
    "LMTimeoutError",
    "MissingAPIKeyError",
    "ParseError",
    "SandboxError",
    "SignatureError",
    "is_retryable",
]


class DspexWarning(UserWarning):
    """Base class of dspex_lab's warnings (turned into errors in our tests)."""


class DspexError(Exception):
    """Base class of every error dspex_lab raises on purpose."""

    kind: str = "error"
    retryable: bool = False


class ConfigurationError(DspexError, ValueError):
    """An argument or setting is wrong; the message says which and how to fix it."""

    kind = "configuration"


class MissingAPIKeyError(ConfigurationError):
    """A provider needs a key and none was given; raised before any call."""

    kind = "missing_api_key"

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"No API key for provider {provider!r}. Set the environment variable "
            f"{env_var} or pass api_key=... to dx.LM(...)."
        )
        self.provider = provider
        self.env_var = env_var


class SignatureError(DspexError, ValueError):
    """A signature string does not parse; the message shows where and what was expected."""

    kind = "signature"


class DatasetError(DspexError, ValueError):
    """A dataset row lacks a field the program needs (found before any call)."""

    kind = "dataset"


class LMError(DspexError):
    """Talking to a model failed. ``status`` is the HTTP status when there was one."""

    kind = "lm_error"

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class LMTimeoutError(LMError):
    kind = "timeout"
    retryable = True


class LMConnectionError(LMError):
    kind = "connection"
    retryable = True


class LMRateLimitError(LMError):
    kind = "rate_limit"
    retryable = True


class LMServerError(LMError):
    kind = "server_error"
    retryable = True


class LMBadResponseError(LMError):
    kind = "bad_response"
    retryable = True


class LMRequestError(LMError):
    """A 4xx other than 429: retrying the same request cannot help."""

    kind = "request_error"


class ParseError(DspexError):
    """A reply did not follow the adapter's format; ``raw`` keeps the text."""

    kind = "parse_error"

    def __init__(self, message: str, *, raw: str = "", adapter: str = "") -> None:
        super().__init__(message)
        self.raw = raw
        self.adapter = adapter


class SandboxError(DspexError):
    """Program-of-thought code could not run to completion inside the sandbox."""

    kind = "sandbox"


class EvaluationAborted(DspexError):
    """An evaluation stopped because failures exceeded ``max_errors``."""

    kind = "aborted"


def is_retryable(error: BaseException) -> bool:
    """Whether repeating the same request may succeed (timeouts, 429, 5xx, broken bodies)."""
    return isinstance(error, DspexError) and error.retryable
