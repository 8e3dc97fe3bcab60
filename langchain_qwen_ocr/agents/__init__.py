"""Agents: images and PDFs reach text-only chat models inside LangChain v1 and LangGraph agents, tool calling kept.

* :class:`ImageReaderMiddleware` (LangChain v1 ``create_agent``): the model call sees OCR text, the state keeps the
  images (needs ``langchain`` 1.x, imported only when this name is used);
* :func:`with_image_reader`: a ``BaseChatModel`` around any chat model that reads images first and keeps
  ``bind_tools``, ``with_structured_output``, streaming, async and tracing (LangGraph ``create_react_agent``);
* :func:`image_reader_hook`: the same as a LangGraph ``pre_model_hook``.

Example::

    from langchain.agents import create_agent
    from langchain_qwen_ocr.agents import ImageReaderMiddleware, with_image_reader

    agent = create_agent(llm, tools, middleware=[ImageReaderMiddleware()])
    llm_that_reads = with_image_reader(llm).bind_tools(tools)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chat_model import ImageReadingChatModel, with_image_reader
from .hooks import image_reader_hook

if TYPE_CHECKING:
    from .middleware import ImageReaderMiddleware

__all__ = ["ImageReaderMiddleware", "ImageReadingChatModel", "image_reader_hook", "with_image_reader"]


def __getattr__(name: str) -> Any:
    if name == "ImageReaderMiddleware":  # langchain (and LangGraph under it) only when the middleware is used
        from .middleware import ImageReaderMiddleware

        return ImageReaderMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
