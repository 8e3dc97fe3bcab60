"""``ImageReaderMiddleware``: in a LangChain v1 agent, the model sees the text of the images (and PDFs) it is sent;
the agent's state keeps them.

Before each model call (``wrap_model_call`` / ``awrap_model_call``), the messages of the request are read by an
:class:`~langchain_qwen_ocr.ImageReader` and the request goes on with image and PDF parts replaced by their text
(``request.override(messages=...)``); the state is not touched, so the conversation, its checkpoints and the tools
(``QwenOCRTool(image_index=k)``) still hold the original images. The reader caches readings by content, so an
image of an earlier turn is not read again at every model call. It needs ``langchain`` 1.x (the ``langchain``
extra).

Example::

    from langchain.agents import create_agent
    from langchain_qwen_ocr import ImageReaderMiddleware, QwenOCRTool

    agent = create_agent(
        model="openai:gpt-4o-mini",                                # any text-only chat model
        tools=[get_weather, QwenOCRTool()],
        middleware=[ImageReaderMiddleware(task="text_recognition")],
    )
    agent.invoke({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is the total?"},
        {"type": "image", "url": "https://example.com/receipt.jpg"},
    ]}]})
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from qwen_ocr.errors import InvalidArgumentError

from ..image_reader import ImageReader
from ..image_reader.parts import find_parts

try:
    from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
    from langchain.agents.middleware.types import ExtendedModelResponse
except ImportError as exc:  # pragma: no cover - the langchain extra installs it
    raise ImportError(
        "ImageReaderMiddleware needs langchain 1.x (langchain.agents.middleware): pip install 'qwen-ocr[langchain]'."
    ) from exc

__all__ = ["ImageReaderMiddleware"]

_Result = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


class ImageReaderMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Agent middleware: the model call sees OCR text where the messages hold images or PDF parts.

    Works with ``create_agent(model, tools, middleware=[ImageReaderMiddleware(...)])`` (sync and async): the model
    keeps its tools and structured output, since only the request's messages change. The agent's state keeps the
    original messages.

    Args:
        reader: an :class:`~langchain_qwen_ocr.ImageReader` to use; or, instead, its options as keywords: ``client=``
            / ``aclient=`` or the client settings (``api_key``, ``model``, ``provider``...), ``task``, ``schema``,
            ``prompt``, ``template`` (``"placeholder"`` leaves the images of the last user message unread, numbered,
            for :class:`~langchain_qwen_ocr.QwenOCRTool` ``image_index``), ``on_error``, ``scope``, ``history``,
            ``cache_size`` (readings kept by content; earlier turns' images are not read again), ``max_pages``,
            ``allowed_dir``... An unknown option is refused, naming the closest one.

    Raises:
        InvalidArgumentError: both ``reader`` and options are given, or an option is unknown.
    """

    def __init__(self, *, reader: ImageReader | None = None, **reader_options: Any) -> None:
        super().__init__()
        if reader is not None and reader_options:
            raise InvalidArgumentError("pass reader= or the ImageReader's options, not both.")
        self.reader: ImageReader = reader if reader is not None else ImageReader(**reader_options)

    # -- what the model sees -------------------------------------------------------------------------------------

    @staticmethod
    def _messages(request: ModelRequest[Any]) -> tuple[list[BaseMessage], bool]:
        """The request's messages, with the system message first when it holds images (rare) too."""
        system = request.system_message
        with_system = system is not None and bool(find_parts(system.content))
        messages: list[BaseMessage] = list(request.messages)
        return ([system, *messages] if system is not None and with_system else messages), with_system

    @staticmethod
    def _override(request: ModelRequest[Any], read: list[BaseMessage], with_system: bool) -> ModelRequest[Any]:
        if with_system:
            system = read[0]
            assert isinstance(system, SystemMessage)
            return request.override(system_message=system, messages=cast("list[Any]", read[1:]))
        return request.override(messages=cast("list[Any]", read))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> _Result:
        """Read the images of the request's messages, then call the model with their text instead."""
        messages, with_system = self._messages(request)
        read = self.reader.invoke(messages)
        return handler(self._override(request, read, with_system))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> _Result:
        """The async twin of :meth:`wrap_model_call` (the reader's native async path)."""
        messages, with_system = self._messages(request)
        read = await self.reader.ainvoke(messages)
        return await handler(self._override(request, read, with_system))
