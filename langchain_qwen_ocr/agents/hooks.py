"""``image_reader_hook``: a LangGraph ``pre_model_hook`` that gives the model the messages with their images read.

LangGraph's ``create_react_agent(model, tools, pre_model_hook=...)`` calls the hook before each model call; a hook
that returns ``{"llm_input_messages": [...]}`` changes what the model sees and leaves the state's messages as they
are. This one returns the state's messages read by an :class:`~langchain_qwen_ocr.ImageReader`.

Example::

    from langgraph.prebuilt import create_react_agent
    from langchain_qwen_ocr import image_reader_hook

    agent = create_react_agent(llm, tools, pre_model_hook=image_reader_hook(client=QwenOCR(provider="local")))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda

from qwen_ocr.errors import InvalidArgumentError

from ..image_reader import ImageReader

__all__ = ["image_reader_hook"]


def _messages(state: Any) -> list[BaseMessage]:
    messages = state.get("messages") if isinstance(state, Mapping) else getattr(state, "messages", None)
    if not isinstance(messages, list):
        raise InvalidArgumentError("image_reader_hook reads the graph state's 'messages', and it has none.")
    return messages


def image_reader_hook(*, reader: ImageReader | None = None, **reader_options: Any) -> Runnable[Any, dict[str, Any]]:
    """A ``pre_model_hook`` giving the model ``{"llm_input_messages": <the state's messages, images read>}``.

    Args:
        reader: an :class:`~langchain_qwen_ocr.ImageReader`; or its options as keywords instead.
    """
    if reader is not None and reader_options:
        raise InvalidArgumentError("pass reader= or the ImageReader's options, not both.")
    used = reader if reader is not None else ImageReader(**reader_options)

    def read(state: Any) -> dict[str, Any]:
        return {"llm_input_messages": used.invoke(_messages(state))}

    async def aread(state: Any) -> dict[str, Any]:
        return {"llm_input_messages": await used.ainvoke(_messages(state))}

    return RunnableLambda(read, afunc=aread, name="image_reader_hook")
