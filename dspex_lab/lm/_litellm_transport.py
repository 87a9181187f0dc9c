"""litellm for providers that do not speak the OpenAI protocol (Anthropic, Bedrock, Vertex…).

litellm is slow to import (~5 s) and tries to download its price map at
import; we set ``LITELLM_LOCAL_MODEL_COST_MAP=True`` first (unless the user set
it), import it in a worker thread so the event loop never stalls, and turn
off its own retries so one retry policy (ours) applies to every provider.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from dspex_lab.errors import (
    LMBadResponseError,
    LMConnectionError,
    LMError,
    LMRateLimitError,
    LMRequestError,
    LMServerError,
    LMTimeoutError,
)

__all__ = ["LITELLM_KEY_ENV", "complete_with_litellm", "import_litellm", "warm_litellm"]

# Providers whose key we can check before any call (litellm would only fail on the call).
LITELLM_KEY_ENV: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "huggingface": ("HF_TOKEN", "HUGGINGFACE_API_KEY"),
}

_lock = threading.Lock()
_module: Any = None


def import_litellm() -> Any:
    """Import litellm once, offline-safe."""
    global _module
    with _lock:
        if _module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            try:
                import litellm
            except ImportError as exc:  # pragma: no cover - it is a dependency
                raise LMRequestError("litellm is not installed: pip install 'litellm>=1.108'"
                                     ) from exc
            litellm.suppress_debug_info = True
            litellm.drop_params = True
            _module = litellm
    return _module


def warm_litellm() -> None:
    """Start importing litellm in a daemon thread so the first call does not wait 5 s."""
    if _module is None:
        threading.Thread(target=import_litellm, name="dspex-litellm-import", daemon=True).start()


def _map_error(exc: Exception, where: str) -> LMError:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = f"{name} from {where}: {str(exc)[:300]}"
    if "Timeout" in name or status == 408:
        return LMTimeoutError(message, status=status)
    if status == 429 or "RateLimit" in name:
        return LMRateLimitError(message, status=status)
    if "Connection" in name:
        return LMConnectionError(message, status=status)
    if isinstance(status, int) and status >= 500:
        return LMServerError(message, status=status)
    return LMRequestError(message, status=status if isinstance(status, int) else None)


async def complete_with_litellm(model: str, messages: list[dict[str, str]],
                                params: dict[str, Any], *, api_key: str | None,
                                base_url: str | None, timeout: float,
                                where: str) -> tuple[str, int, int, str | None]:
    """One attempt through litellm: (text, prompt_tokens, completion_tokens, finish_reason)."""
    litellm = _module
    if litellm is None:
        litellm = await asyncio.get_running_loop().run_in_executor(None, import_litellm)
    kwargs: dict[str, Any] = dict(params)
    if api_key is not None:
        kwargs["api_key"] = api_key
    if base_url is not None:
        kwargs["api_base"] = base_url
    try:
        resp = await litellm.acompletion(model=model, messages=messages, timeout=timeout,
                                         num_retries=0, max_retries=0, **kwargs)
    except LMError:
        raise
    except Exception as exc:
        raise _map_error(exc, where) from None
    try:
        choice = resp.choices[0]
        text = choice.message.content or ""
        usage = getattr(resp, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        return text, prompt, completion, getattr(choice, "finish_reason", None)
    except (AttributeError, IndexError, TypeError) as exc:
        raise LMBadResponseError(f"unexpected reply shape from {where}: {exc}") from None
