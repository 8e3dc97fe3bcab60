"""``ClientSettings``: the client's settings as one pydantic model, for integrations that are pydantic models too.

LangChain Runnables and LlamaIndex readers are pydantic models whose settings are fields. They inherit these
fields from :class:`ClientSettings` and build their clients with :meth:`ClientSettings.sync_client` and
:meth:`ClientSettings.async_client`, so every integration accepts the same settings with the same names and
defaults as :class:`~qwen_ocr.QwenOCR`. The key is a ``SecretStr``: it is hidden in ``repr`` and left out of
``model_dump()`` and JSON.

Example::

    from qwen_ocr.settings import ClientSettings

    settings = ClientSettings(api_key="sk-...", model="qwen-vl-ocr-latest", max_concurrency=4)
    repr(settings)                     # ... api_key=SecretStr('**********') ...
    settings.model_dump()              # no 'api_key' key
    with settings.sync_client() as client:
        print(client.ocr("page.png").text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ._base import DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, Protocol, Provider
from .models import DEFAULT_MODEL

if TYPE_CHECKING:
    from ._async_client import AsyncQwenOCR
    from ._client import QwenOCR

__all__ = ["ClientSettings"]


class ClientSettings(BaseModel):
    """The settings of :class:`~qwen_ocr.QwenOCR` / :class:`~qwen_ocr.AsyncQwenOCR` as pydantic fields.

    Every field means what the client argument of the same name means; ``None`` means "from the environment"
    (``DASHSCOPE_API_KEY``, ``DASHSCOPE_BASE_URL``, the credentials file), as for the client.

    >>> ClientSettings(api_key="sk-secret").model_dump()["model"]
    'qwen-vl-ocr'
    >>> "sk-secret" in repr(ClientSettings(api_key="sk-secret"))
    False
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    api_key: SecretStr | None = Field(default=None, exclude=True, repr=True, description="DashScope API key.")
    base_url: str | None = Field(default=None, description="Service root, or a self-hosted /v1 server.")
    region: str = Field(default="intl", description="'intl' (Singapore), 'cn' (Beijing) or 'us' (Virginia).")
    workspace: str | None = Field(default=None, description="DashScope workspace id.")
    model: str = Field(default=DEFAULT_MODEL, description="Model name.")
    protocol: Protocol | None = Field(default=None, description="'dashscope' (native) or 'openai' (compatible).")
    provider: Provider = Field(default="auto", description="'auto', 'dashscope', 'openai' or 'local' (offline).")
    timeout: float | None = Field(default=DEFAULT_TIMEOUT, description="Seconds per request.")
    max_retries: int | None = Field(default=None, description="Retries of transient failures.")
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, description="Requests in flight at once.")

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for the client constructors."""
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "region": self.region,
            "workspace": self.workspace,
            "model": self.model,
            "protocol": self.protocol,
            "provider": self.provider,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
        }

    def sync_client(self) -> QwenOCR:
        """A new :class:`~qwen_ocr.QwenOCR` with these settings (the caller closes it)."""
        from ._client import QwenOCR

        return QwenOCR(**self.client_kwargs())

    def async_client(self) -> AsyncQwenOCR:
        """A new :class:`~qwen_ocr.AsyncQwenOCR` with these settings (the caller closes it)."""
        from ._async_client import AsyncQwenOCR

        return AsyncQwenOCR(**self.client_kwargs())
