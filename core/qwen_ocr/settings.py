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

import asyncio
import threading
import weakref
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr

from ._async_client import AsyncQwenOCR
from ._client import QwenOCR
from .options import CLIENT_SETTINGS, ClientOptions

__all__ = ["ClientHolder", "ClientSettings"]


class ClientSettings(ClientOptions):
    """The settings of :class:`~qwen_ocr.QwenOCR` / :class:`~qwen_ocr.AsyncQwenOCR` as pydantic fields.

    The fields are those of :class:`~qwen_ocr.options.ClientOptions` (every client setting, declared there once),
    here mutable; each means what the client argument of the same name means, ``None`` meaning "from the
    environment" (``DASHSCOPE_API_KEY``, ``DASHSCOPE_BASE_URL``, the credentials file) as for the client. An
    unknown name raises :class:`~qwen_ocr.InvalidArgumentError` naming the closest one.

    >>> ClientSettings(api_key="sk-secret").model_dump()["model"]
    'qwen-vl-ocr'
    >>> "sk-secret" in repr(ClientSettings(api_key="sk-secret"))
    False
    """

    model_config = ConfigDict(frozen=False)

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for the client constructors: every setting."""
        return {name: getattr(self, name) for name in CLIENT_SETTINGS}

    def sync_client(self) -> QwenOCR:
        """A new :class:`~qwen_ocr.QwenOCR` with these settings (the caller closes it)."""
        return QwenOCR(**self.client_kwargs())

    def async_client(self) -> AsyncQwenOCR:
        """A new :class:`~qwen_ocr.AsyncQwenOCR` with these settings (the caller closes it)."""
        return AsyncQwenOCR(**self.client_kwargs())


class ClientHolder(ClientSettings):
    """Settings plus an optional ready-made client: what an integration inherits to "accept a client or settings".

    Pass ``client=QwenOCR(...)`` (and/or ``aclient=AsyncQwenOCR(...)``) to use your own; otherwise clients are
    built from the settings on first use. Async work needs an :class:`~qwen_ocr.AsyncQwenOCR` per event loop (its
    connections belong to one loop), so without ``aclient`` one is made per running loop, with the settings of
    ``client`` when given. Neither client is serialised.

    Example::

        class MyReader(ClientHolder):
            def read(self, path: str) -> str:
                return self.get_client().ocr(path).text

        MyReader(client=QwenOCR(provider="local")).read("scan.png")
    """

    client: QwenOCR | None = Field(default=None, exclude=True, repr=False, description="A sync client to use.")
    aclient: AsyncQwenOCR | None = Field(default=None, exclude=True, repr=False, description="An async client to use.")

    _own_client: QwenOCR | None = PrivateAttr(default=None)
    _own_aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncQwenOCR] = PrivateAttr(
        default_factory=weakref.WeakKeyDictionary
    )
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def get_client(self) -> QwenOCR:
        """The sync client: the one given, else one built from the settings (once)."""
        if self.client is not None:
            return self.client
        with self._lock:
            if self._own_client is None:
                self._own_client = self.sync_client()
            return self._own_client

    def get_async_client(self) -> AsyncQwenOCR:
        """The async client for the running event loop: the one given, else one made for this loop."""
        if self.aclient is not None:
            return self.aclient
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._own_aclients.get(loop)
            if found is None:
                found = AsyncQwenOCR.from_client(self.client) if self.client is not None else self.async_client()
                self._own_aclients[loop] = found
            return found

    @property
    def effective_model(self) -> str:
        """The model requests will name: the given client's, else the ``model`` setting."""
        return self.client.model if self.client is not None else self.model
