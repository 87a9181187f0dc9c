"""Which providers speak the OpenAI chat protocol, where they live, which key they need.

Every provider listed here goes through our own lean transport; any other
``provider/model`` goes through litellm (imported only then). ``base_url``
may be ``None`` for providers that have no public default (Azure, vLLM): the
user passes ``base_url=``. ``env_base_url`` lets a deployment point a provider
elsewhere without code changes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OPENAI_COMPATIBLE", "ProviderInfo", "provider_info"]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    base_url: str | None
    key_env: tuple[str, ...] = ()
    key_required: bool = True
    env_base_url: str | None = None
    auth_header: str = "Authorization"  # Azure uses "api-key"
    price_map_prefix: str | None = None  # how litellm's price map names the provider


OPENAI_COMPATIBLE: dict[str, ProviderInfo] = {
    p.name: p
    for p in (
        ProviderInfo("openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
                     env_base_url="OPENAI_BASE_URL", price_map_prefix=""),
        ProviderInfo("azure", None, ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"),
                     env_base_url="AZURE_OPENAI_ENDPOINT", auth_header="api-key",
                     price_map_prefix="azure/"),
        ProviderInfo("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",),
                     price_map_prefix="groq/"),
        ProviderInfo("together", "https://api.together.xyz/v1",
                     ("TOGETHER_API_KEY", "TOGETHERAI_API_KEY"), price_map_prefix="together_ai/"),
        ProviderInfo("deepseek", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",),
                     price_map_prefix="deepseek/"),
        ProviderInfo("openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",),
                     price_map_prefix="openrouter/"),
        ProviderInfo("fireworks", "https://api.fireworks.ai/inference/v1",
                     ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
                     price_map_prefix="fireworks_ai/"),
        ProviderInfo("vllm", None, ("VLLM_API_KEY",), key_required=False,
                     env_base_url="VLLM_BASE_URL"),
        ProviderInfo("ollama", "http://127.0.0.1:11434/v1", key_required=False,
                     env_base_url="OLLAMA_BASE_URL"),
        ProviderInfo("llamacpp", "http://127.0.0.1:8080/v1", key_required=False,
                     env_base_url="LLAMACPP_BASE_URL"),
        ProviderInfo("lmstudio", "http://127.0.0.1:1234/v1", key_required=False,
                     env_base_url="LMSTUDIO_BASE_URL"),
        ProviderInfo("sim", None, key_required=False, env_base_url="DSPEX_SIM_URL"),
        # the bundled local model (dspex_lab.local_model): its server is started on demand
        ProviderInfo("local", None, key_required=False),
    )
}


def provider_info(name: str) -> ProviderInfo | None:
    """The OpenAI-compatible provider called ``name``, or None (then litellm serves it)."""
    return OPENAI_COMPATIBLE.get(name)
