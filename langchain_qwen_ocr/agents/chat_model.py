"""``with_image_reader(llm)``: a chat model that reads the images (and PDFs) of its input first, and keeps the whole
chat-model API of ``llm``.

``ImageReader() | llm`` is a ``RunnableSequence``: ``bind_tools`` and ``with_structured_output`` are gone, so it
cannot be an agent's model. :class:`ImageReadingChatModel` is a ``BaseChatModel`` instead: ``invoke``, ``stream``
and their async twins first run the :class:`~langchain_qwen_ocr.ImageReader` on the input (a run of its own, next
to the model's run, so the OCR shows in tracing and the model's run shows the text it was given), then generate
with ``llm`` in one chat-model run (with ``llm``'s LangSmith parameters; tokens are streamed once). Other entry
points (``generate``, event streams) read the images inside the model's run. ``bind_tools`` binds ``llm``'s own
tool format to the wrapper, so ``create_react_agent(with_image_reader(llm), tools)`` and
``create_agent(with_image_reader(llm), tools)`` work; ``with_structured_output`` reads the images, then calls
``llm.with_structured_output(...)`` as ``llm`` implements it.

Example::

    from langchain_qwen_ocr import with_image_reader

    llm = with_image_reader(ChatOpenAI(model="gpt-4o-mini"), client=QwenOCR(provider="local"))
    llm.bind_tools([get_weather]).invoke([message_with_an_image])     # the model gets text and the tools
    llm.with_structured_output(Invoice).invoke([message_with_a_pdf])  # the PDF's pages as text
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qwen_ocr.engine import StrictArguments
from qwen_ocr.errors import InvalidArgumentError

from ..image_reader import ImageReader
from ..image_reader.parts import find_parts

__all__ = ["ImageReadingChatModel", "with_image_reader"]


def _has_parts(messages: Sequence[BaseMessage]) -> bool:
    """Whether any message still holds an image or document part (none once the entry points have read them)."""
    return any(find_parts(message.content) for message in messages)


class ImageReadingChatModel(StrictArguments, BaseChatModel):
    """A chat model that replaces the images and PDF parts of its input with their text (read by
    :class:`~langchain_qwen_ocr.ImageReader`), then answers with ``llm``, a text-only chat model.

    Everything a chat model does works: ``invoke``/``ainvoke``, ``stream``/``astream`` (when ``llm`` streams),
    ``batch``, callbacks and tracing (the OCR is an ``ImageReader`` run inside the model's run), ``bind_tools``
    (``llm``'s tool format), ``with_structured_output`` (``llm``'s own method), ``with_retry``, ``with_config``.
    ``llm``'s ``profile`` is kept, with ``image_inputs`` and ``pdf_inputs`` set: this model takes them. Make one with
    :func:`with_image_reader`.

    Args:
        llm: the chat model that answers (any ``BaseChatModel``; bind tools on this wrapper, not before).
        reader: the :class:`~langchain_qwen_ocr.ImageReader` that reads the images (its client, task, template,
            ``on_error``, cache, ``max_pages``...).

    An unknown argument is refused (:class:`~qwen_ocr.errors.InvalidArgumentError` naming the closest one).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    llm: BaseChatModel = Field(description="The chat model that answers, from the messages as text.")
    reader: ImageReader = Field(default_factory=ImageReader, description="Reads the images and PDFs first.")

    @model_validator(mode="after")
    def _follow_llm(self) -> ImageReadingChatModel:
        """The wrapped model's profile (plus the inputs this model takes) and streaming settings, unless given."""
        if "profile" not in self.model_fields_set and self.llm.profile is not None:
            profile: ModelProfile = {**self.llm.profile, "image_inputs": True, "pdf_inputs": True}
            self.profile = profile
        if "disable_streaming" not in self.model_fields_set:
            self.disable_streaming = self.llm.disable_streaming
        return self

    # -- identity ------------------------------------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return f"image-reader-{self.llm._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "llm": self.llm._llm_type,
            **self.llm._identifying_params,
            "image_reader": {"model": self.reader.effective_model, **self.reader.options},
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.llm._get_ls_params(stop=stop, **kwargs)

    # -- entry points: the images are read first, as a run of their own -----------------------------------------

    def _reader_config(self, config: RunnableConfig | None) -> RunnableConfig:
        """The caller's config for the reader's run, without the model run's own name and id."""
        given = dict(config or {})
        given.pop("run_name", None)
        given.pop("run_id", None)
        return cast("RunnableConfig", given)

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Read the images of ``input``, then ``llm`` answers from their text."""
        read = self.reader.invoke(input, self._reader_config(config))
        return super().invoke(read, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """The async twin of :meth:`invoke` (the reader's native async path)."""
        read = await self.reader.ainvoke(input, self._reader_config(config))
        return await super().ainvoke(read, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Read the images of ``input``, then stream ``llm``'s answer."""
        read = self.reader.invoke(input, self._reader_config(config))
        yield from super().stream(read, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """The async twin of :meth:`stream`."""
        read = await self.reader.ainvoke(input, self._reader_config(config))
        async for chunk in super().astream(read, config, stop=stop, **kwargs):
            yield chunk

    # -- generation (the images are already text when the entry points above were used) ---------------------------

    @staticmethod
    def _child(run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None) -> RunnableConfig:
        """Callbacks for a run under this model's run (the OCR), as a chain's ``get_child()`` gives them."""
        if run_manager is None:
            return {}
        kind = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
        child = kind(handlers=[], parent_run_id=run_manager.run_id)
        child.set_handlers(run_manager.inheritable_handlers)
        child.add_tags(run_manager.inheritable_tags)
        child.add_metadata(run_manager.inheritable_metadata)
        return {"callbacks": child}

    def _read(self, messages: list[BaseMessage], run_manager: CallbackManagerForLLMRun | None) -> list[BaseMessage]:
        read = self.reader.invoke(messages, config=self._child(run_manager)) if _has_parts(messages) else messages
        if self.llm.rate_limiter is not None:  # llm's own limit: its invoke() is not what runs here
            self.llm.rate_limiter.acquire(blocking=True)
        return read

    async def _aread(
        self, messages: list[BaseMessage], run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> list[BaseMessage]:
        read = messages
        if _has_parts(messages):
            read = await self.reader.ainvoke(messages, config=self._child(run_manager))
        if self.llm.rate_limiter is not None:
            await self.llm.rate_limiter.aacquire(blocking=True)
        return read

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self.llm._generate(self._read(messages, run_manager), stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        read = await self._aread(messages, run_manager)
        return await self.llm._agenerate(read, stop=stop, run_manager=run_manager, **kwargs)

    def _should_stream(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        """Stream when ``llm`` would (it implements streaming and is asked to), and streaming is not disabled here."""
        if self.disable_streaming is True or (self.disable_streaming == "tool_calling" and kwargs.get("tools")):
            return False
        return bool(self.llm._should_stream(async_api=async_api, run_manager=run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self.llm._stream(self._read(messages, run_manager), stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        read = await self._aread(messages, run_manager)
        async for chunk in self.llm._astream(read, stop=stop, run_manager=run_manager, **kwargs):
            yield chunk

    # -- the rest of the chat-model API --------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """``llm.bind_tools(...)``, bound to this model: the tools in ``llm``'s format, the images read first."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.llm.bind_tools(tools, **kwargs)
        if isinstance(bound, RunnableBinding) and bound.bound is self.llm:
            rebound: Runnable[LanguageModelInput, AIMessage] = RunnableBinding(
                bound=self, kwargs=bound.kwargs, config=bound.config, config_factories=bound.config_factories
            )
            return rebound
        # llm binds tools some other way: read first, then that runnable (the OCR still runs as its own run)
        return self.reader | bound

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """``llm.with_structured_output(...)`` (``llm``'s own method and options), after the images are read."""
        return self.reader | self.llm.with_structured_output(schema, include_raw=include_raw, **kwargs)


def with_image_reader(
    llm: BaseChatModel, *, reader: ImageReader | None = None, **reader_options: Any
) -> ImageReadingChatModel:
    """``llm`` as a chat model that reads the images and PDF parts of its input with Qwen-OCR first.

    Args:
        llm: a chat model (a ``BaseChatModel``; bind its tools on the result, not before).
        reader: an :class:`~langchain_qwen_ocr.ImageReader` to use; or its options as keywords instead
            (``client=``, ``task``, ``template``, ``on_error``, ``scope``, ``history``, ``cache_size``,
            ``max_pages``, ``allowed_dir``, the client settings...).

    Raises:
        InvalidArgumentError: ``llm`` is not a chat model, both ``reader`` and options are given, or an option is
            unknown (naming the closest one).

    Example::

        agent = create_react_agent(with_image_reader(llm, client=QwenOCR(provider="local")), tools)
    """
    if not isinstance(cast("object", llm), BaseChatModel):  # a bound model, a chain...: said plainly
        hint = " (bind tools on the result of with_image_reader, not before)" if isinstance(llm, Runnable) else ""
        raise InvalidArgumentError(
            f"with_image_reader takes a chat model (BaseChatModel), not a {type(llm).__name__}{hint}."
        )
    if reader is not None and reader_options:
        raise InvalidArgumentError("pass reader= or the ImageReader's options, not both.")
    return ImageReadingChatModel(llm=llm, reader=reader if reader is not None else ImageReader(**reader_options))
