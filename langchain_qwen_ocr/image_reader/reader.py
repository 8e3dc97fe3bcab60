"""``ImageReader``: a Runnable that turns the images of chat messages into text, so ``ImageReader() | llm`` lets any
text-only chat model read them.

It does what the Higress ``ai-image-reader`` gateway plugin does (find the images of the last user message, read
them all at once with Qwen-OCR, put their text into the message) and fixes what the plugin gets wrong: images are
numbered in the order they appear (not in the order the replies arrive), a failed image is marked instead of
skipped in silence, images of earlier turns are read or dropped so that a text-only back end accepts the request,
the text is quoted as data and not as instructions, local files are never read unless a directory is allowed, and
the API key belongs to the instance. Images are read through the document engine (:func:`qwen_ocr.read_documents`:
one window of requests, its ``on_error`` policy and cancellation; an http(s) image URL goes to the service as a
:class:`qwen_ocr.RemoteImage`, never downloaded here), and so are PDF ``file`` parts, page by page, which a text-only
model would reject.

The same reading runs inside LangChain v1 agents (:class:`~langchain_qwen_ocr.ImageReaderMiddleware`) and around a
chat model that keeps its whole API (:func:`~langchain_qwen_ocr.with_image_reader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage, ChatMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from qwen_ocr import AsyncQwenOCR, OCRResult, QwenOCR, QwenOCRError, RemoteImage, Task, engine
from qwen_ocr.budget import Resolution, check_resolution
from qwen_ocr.documents import open_document
from qwen_ocr.engine import StrictArguments, is_fatal
from qwen_ocr.fetch import afetch, fetch
from qwen_ocr.imaging import ImageInput
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import render
from qwen_ocr.settings import ClientHolder
from qwen_ocr.sources import Source
from qwen_ocr.tasks import coerce_task, normalize_schema, resolve_task

from .parts import MAX_LOCAL_BYTES, ImageRef, LoadedImage, check_allowed_dir, find_parts, load_image
from .templates import (
    ImageText,
    check_template,
    error_mark,
    higress_prompt,
    omitted_mark,
    pages_left_mark,
    placeholder_mark,
    render_inline,
)

__all__ = ["ImageReader", "OnError", "ocr_options", "to_messages"]

logger = logging.getLogger("langchain_qwen_ocr")

OnError = Literal["raise", "mark", "keep_image", "skip"]
"""What to do with an image that cannot be read: raise its error, mark it in place ("[image k of n could not be
read: reason]"), keep the image part as it was, or leave it out (what the Higress plugin does)."""

_Action = Literal["template", "ocr", "drop", "placeholder"]

DEFAULT_MAX_PAGES = 20
"""The pages of a document part read at most (the rest are marked as not read)."""


def to_messages(value: LanguageModelInput) -> list[BaseMessage]:
    """Chat-model input (a string, a ``PromptValue`` or a sequence of message-likes) as a list of messages.

    >>> to_messages("hi")[0].type
    'human'
    """
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(content=value)]
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, Sequence):
        return convert_to_messages(value)
    raise TypeError(
        f"ImageReader takes what a chat model takes (a str, a PromptValue or a list of messages), not a "
        f"{type(value).__name__}."
    )


def ocr_options(
    *,
    task: Task | None,
    schema: Mapping[str, Any] | None,
    prompt: str | None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    resolution: Resolution | None = None,
) -> dict[str, Any]:
    """The ``ocr()`` keyword options: text recognition unless a task, a schema or a custom prompt says otherwise.

    >>> ocr_options(task=None, schema=None, prompt=None)
    {'task': <Task.TEXT_RECOGNITION: 'text_recognition'>}
    >>> ocr_options(task=None, schema={"Total": ""}, prompt=None)["task"]
    <Task.KEY_INFORMATION_EXTRACTION: 'key_information_extraction'>
    """
    options: dict[str, Any] = {
        "task": resolve_task(task, schema, prompt, default=Task.TEXT_RECOGNITION),
        "schema": dict(schema) if schema is not None else None,
        "prompt": prompt,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "resolution": check_resolution(resolution),
    }
    return {name: value for name, value in options.items() if value is not None}


def _is_user(message: BaseMessage) -> bool:
    return isinstance(message, HumanMessage) or (isinstance(message, ChatMessage) and message.role == "user")


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _text_of(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return str(part["text"])
    return None


@dataclass(frozen=True)
class _Page:
    """One page of a document part: its number (from 1), text (:func:`qwen_ocr.rendering.render`), and reading."""

    number: int
    text: str
    result: OCRResult | None = None
    error: QwenOCRError | None = None


@dataclass(frozen=True)
class _DocumentReading:
    """The pages read of a document part (the first ``max_pages``), and how many it has."""

    pages: tuple[_Page, ...]
    total_pages: int

    @property
    def complete(self) -> bool:
        """Every page read was read without error (only such readings are cached)."""
        return all(page.error is None for page in self.pages)


_Outcome = Union[OCRResult, _DocumentReading, QwenOCRError]  # noqa: UP007 - a runtime alias (Python 3.10)


@dataclass
class _Image:
    """One image (or document) part of one message, and what becomes of it."""

    message: int
    part: int
    ref: ImageRef
    index: int
    total: int
    action: _Action
    key: str | None = None
    outcome: _Outcome | None = None

    @property
    def is_document(self) -> bool:
        return self.ref.media == "document"


def _page_count(data: bytes) -> int:
    """Pages in a document's bytes (a typed ``DocumentError`` when it is not a document the engine reads)."""
    with open_document(io.BytesIO(data)) as document:
        return document.page_count


def _page(page: PageResult) -> _Page:
    """A page of the engine's reading; a file the engine could not open at all raises its error."""
    if page.file_failed and page.error is not None:
        raise page.error
    result = page.result.model_copy()._attach_image(None) if page.result is not None else None  # text, not pixels
    return _Page(page.index + 1, render(result) if result is not None else "", result, page.error)


def _image_outcomes(pages: Iterable[PageResult], count: int) -> list[OCRResult | QwenOCRError]:
    """One outcome per image, in image order, from the engine's results (one page per image, by ``file_index``)."""
    outcomes: list[OCRResult | QwenOCRError | None] = [None] * count
    for page in pages:
        if page.result is not None and page.error is None:
            outcomes[page.file_index] = page.result
        else:
            outcomes[page.file_index] = page.error or QwenOCRError(f"{page.source} gave no result.")
    return [
        outcome if outcome is not None else QwenOCRError(f"image {number} gave no result.")
        for number, outcome in enumerate(outcomes, 1)
    ]


class ImageReader(StrictArguments, RunnableSerializable[LanguageModelInput, list[BaseMessage]], ClientHolder):
    """Replaces the images of chat messages with their text, read by Qwen-OCR, so a text-only model can answer.

    Input: what a chat model takes (a ``str``, a list of messages or message-likes, a ``PromptValue``). Output: the
    list of messages, with image parts replaced by text. Messages without images are passed through untouched (the
    same objects); a changed message keeps its ``id``, ``name``, ``additional_kwargs`` and every non-image part in
    its place. ``invoke`` and ``ainvoke`` are native (the async path awaits an ``AsyncQwenOCR``; no thread hop);
    ``batch``, ``abatch``, ``stream``, callbacks and tracing (as a run named ``ImageReader``), ``with_retry`` and
    ``with_config`` work as for any Runnable.

    Client: pass ``client=QwenOCR(...)`` (and, for async use, ``aclient=AsyncQwenOCR(...)``), or the client's
    settings as fields (``api_key``, ``base_url``, ``region``, ``model``, ``provider``, ``timeout``, ...). The key
    belongs to this instance; it is never in a repr, a log line, an error or serialised output.

    Args:
        scope: ``"last_user"`` (default, as the Higress plugin): the images of the last user message are read and
            rendered with ``template``; ``"all"``: every user message is treated like the last one.
        history: images in the other messages (earlier turns, and AI, tool or system messages): ``"ocr"``
            (default) reads them too and replaces each in place (with ``template``, or the default block when the
            template is ``"higress"``), so that a text-only back end accepts the conversation; ``"drop"`` replaces
            each with ``[image k of n omitted]``; ``"keep"`` leaves them as they are.
        task: a built-in task (``"text_recognition"`` when ``None`` and no schema or prompt; any task works, e.g.
            ``"key_information_extraction"`` with ``schema``, ``"table_parsing"``).
        schema: the fields to extract; implies ``key_information_extraction`` (``schema`` is the argument's name in
            every integration; ``result_schema=``, where the value is stored, is still accepted: deprecated).
        prompt: a custom instruction for the OCR model (used when no task is set).
        min_pixels, max_pixels: the pixel budget of each image, sent as given.
        resolution: the budget as a level (:mod:`qwen_ocr.budget`): ``"standard"`` (default, 2,560 image tokens),
            ``"high"`` (small print) or ``"max"`` (large images).
        template: ``"default"``: each image part becomes, in place, a note plus an
            ``<image_text index="k" of="n">...</image_text>`` block holding the text as quoted data (a closing tag
            inside the text is escaped); ``"higress"``: the plugin's layout (its Chinese prompt; the whole message
            becomes one text: "N images in total", "image k's content is ...", then the user's text; not quoted
            as data); ``"placeholder"``: the images of the messages in ``scope`` are not read, each becomes
            ``[image k of n in this message: not read; ...(image_index=k)]`` for an agent whose model asks
            :class:`~langchain_qwen_ocr.QwenOCRTool` to read one with the task it needs; a format string with
            ``{index}``, ``{total}``, ``{text}`` (and ``{page}``, ``{pages}`` for document pages); or a callable
            taking an :class:`~langchain_qwen_ocr.image_reader.templates.ImageText` and returning the text.
        on_error: a failed image: ``"raise"`` its ``QwenOCRError``; ``"mark"`` it in place with
            ``[image k of n could not be read: reason]``; ``"keep_image"`` (leave the image part); ``"skip"`` (leave
            it out). ``None`` (default) means ``"mark"``, and ``"skip"`` with ``template="higress"``, which is what
            the plugin does (so its numbering shows a gap where the failed image was). Errors that would fail every
            image alike (a missing or wrong key, no access to the model, an exhausted quota, a bad option:
            :func:`qwen_ocr.engine.is_fatal`) are raised whatever ``on_error`` says, as in every integration.
        max_concurrency: images read at once per call (and the client's own limit when built from settings).
        cache_size: results kept per instance (LRU), keyed by the SHA-256 of the image's bytes (of the URL for a
            remote image) and the OCR options, so a conversation's earlier images are not read again on every
            turn; ``0`` turns the cache off.
        allowed_dir: local paths and ``file://`` URLs in message content are refused (``LocalFileRefused``)
            unless this names a directory and the file resolves inside it (relative paths are taken relative to
            it; ``..`` and symlinks are resolved first). Remote http(s) URLs of images are passed to the service,
            which fetches them; this class downloads nothing but documents (below).
        max_pages: a document part (a PDF ``file`` block: base64, a data: URL, an http(s) URL or an allowed local
            file) is read page by page through :func:`qwen_ocr.read_documents` (a PDF page with good text of its
            own costs no request, as in the loader), at most this many pages (default 20); each page becomes a
            text part rendered with ``template`` ("page p of P of file k of n"), then one part says which pages
            were not read. A document given by a provider's ``file_id`` cannot be read (``FileIdNotReadable``,
            handled per ``on_error``). ``file`` blocks of other types (``text/plain``...) are left as they are.
        allow_private_urls: a document's http(s) URL is downloaded through :mod:`qwen_ocr.fetch` (size cap,
            timeouts, hosts with private or loopback addresses refused unless this is ``True``).

    An unknown argument is refused (:class:`~qwen_ocr.errors.InvalidArgumentError` naming the closest one).

    Example::

        from langchain_openai import ChatOpenAI
        from langchain_qwen_ocr.image_reader import ImageReader

        chain = ImageReader() | ChatOpenAI(model="gpt-4o-mini")   # key from DASHSCOPE_API_KEY
        chain.invoke([
            {"role": "user", "content": [
                {"type": "text", "text": "What is the total of this receipt?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/receipt.jpg"}},
            ]},
        ])

        ImageReader(client=QwenOCR(provider="local")).invoke(messages)     # offline
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    scope: Literal["last_user", "all"] = Field(default="last_user", description="Which user messages to read.")
    history: Literal["keep", "drop", "ocr"] = Field(default="ocr", description="Images in the other messages.")
    task: Task | None = Field(default=None, description="Built-in task; text recognition when None.")
    result_schema: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("schema", "result_schema"),
        description="Fields to extract (key_information_extraction).",
    )
    prompt: str | None = Field(default=None, description="Custom OCR instruction (when no task is set).")
    min_pixels: int | None = Field(default=None, ge=1, description="Lower pixel budget per image.")
    max_pixels: int | None = Field(default=None, ge=1, description="Upper pixel budget per image.")
    resolution: Resolution | None = Field(
        default=None, description="Pixel budget level per image: 'standard' (default), 'high' or 'max'."
    )
    template: Union[str, Callable[[ImageText], str]] = Field(  # noqa: UP007 - pydantic evaluates this at runtime
        default="default", description="'default', 'higress', a format string or a callable."
    )
    on_error: OnError | None = Field(default=None, description="raise, mark, keep_image or skip; None: see above.")
    cache_size: int = Field(default=256, ge=0, description="Results kept per instance (LRU); 0 disables.")
    allowed_dir: Path | None = Field(default=None, description="The only directory local images may come from.")
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1, description="Pages of a document part read at most.")
    allow_private_urls: bool = Field(default=False, description="Download documents from non-public hosts too.")

    _cache: OrderedDict[str, OCRResult | _DocumentReading] = PrivateAttr(default_factory=OrderedDict)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # -- validation ----------------------------------------------------------------------------------------------

    @field_validator("task", mode="before")
    @classmethod
    def _coerce_task(cls, value: Any) -> Task | None:
        return coerce_task(value)

    @field_validator("result_schema", mode="before")
    @classmethod
    def _normalize_schema(cls, value: Any) -> dict[str, Any] | None:
        return normalize_schema(value)

    @field_validator("template", mode="before")
    @classmethod
    def _check_template(cls, value: Any) -> Any:
        return check_template(value)

    @field_validator("allowed_dir", mode="before")
    @classmethod
    def _check_allowed_dir(cls, value: Any) -> Path | None:
        return check_allowed_dir(value)

    @model_validator(mode="after")
    def _check_task_and_schema(self) -> ImageReader:
        resolve_task(self.task, self.result_schema)  # a schema with another task: a ValueError, as pydantic wants
        return self

    @property
    def lc_secrets(self) -> dict[str, str]:
        """The secret fields and the environment variable each comes from."""
        return {"api_key": "DASHSCOPE_API_KEY"}

    @property
    def effective_on_error(self) -> OnError:
        """``on_error`` with its default resolved: ``"skip"`` for the Higress template, else ``"mark"``."""
        if self.on_error is not None:
            return self.on_error
        return "skip" if self.template == "higress" else "mark"

    @property
    def options(self) -> dict[str, Any]:
        """The options every image is read with (``ocr()`` keyword arguments)."""
        return ocr_options(
            task=self.task,
            schema=self.result_schema,
            prompt=self.prompt,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            resolution=self.resolution,
        )

    def clear_cache(self) -> None:
        """Forget every cached reading."""
        with self._cache_lock:
            self._cache.clear()

    # -- Runnable ------------------------------------------------------------------------------------------------

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BaseMessage]:
        """Read the images of ``input`` and return its messages with the images replaced by text."""
        return self._call_with_config(self._read, input, config, run_type="chain")

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BaseMessage]:
        """Async :meth:`invoke`, on the event loop's :class:`~qwen_ocr.AsyncQwenOCR`."""
        return await self._acall_with_config(self._aread, input, config, run_type="chain")

    def _read(self, input_: LanguageModelInput, run_manager: CallbackManagerForChainRun) -> list[BaseMessage]:
        messages = to_messages(input_)
        images = self._plan(messages)
        if not any(image.action != "placeholder" for image in images):
            return self._with_text(messages, images) if images else messages
        client = self.get_client()
        todo, documents = self._prepare(images, client.model)
        if todo:
            pages = engine.read_documents(client, self._image_sources(todo), **self._image_reading(len(todo)))
            with contextlib.closing(pages):  # an exception or Ctrl-C here stops the reading at once
                outcomes = _image_outcomes(pages, len(todo))
            self._store(images, todo, outcomes)
        if documents:
            self._store(
                images, documents, [self._read_document(client, ref, loaded) for ref, loaded in documents.values()]
            )
        return self._with_text(messages, images)

    async def _aread(
        self, input_: LanguageModelInput, run_manager: AsyncCallbackManagerForChainRun
    ) -> list[BaseMessage]:
        messages = to_messages(input_)
        images = self._plan(messages)
        if not any(image.action != "placeholder" for image in images):
            return self._with_text(messages, images) if images else messages
        client = self.get_async_client()
        if any(image.ref.kind in ("local", "base64") and image.is_document for image in images) or (
            self.allowed_dir is not None and any(image.ref.kind == "local" for image in images)
        ):
            todo, documents = await asyncio.to_thread(self._prepare, images, client.model)  # file reads off the loop
        else:
            todo, documents = self._prepare(images, client.model)
        if todo:
            reading = engine.aread_documents(client, self._image_sources(todo), **self._image_reading(len(todo)))
            async with contextlib.aclosing(reading):  # cancelling the call stops the reading at once
                pages = [page async for page in reading]
            self._store(images, todo, _image_outcomes(pages, len(todo)))
        if documents:
            readings = [await self._aread_document(client, ref, loaded) for ref, loaded in documents.values()]
            self._store(images, documents, readings)
        return self._with_text(messages, images)

    # -- steps (pure except the cache) ---------------------------------------------------------------------------

    def _plan(self, messages: Sequence[BaseMessage]) -> list[_Image]:
        """Every image and document part to read or drop, in message and part order (images and documents are
        numbered apart)."""
        users = [i for i, message in enumerate(messages) if _is_user(message)]
        last_user = users[-1] if users else None
        images: list[_Image] = []
        for i, message in enumerate(messages):
            found = find_parts(message.content)
            if not found:
                continue
            in_scope = _is_user(message) and (self.scope == "all" or i == last_user)
            if not in_scope and self.history == "keep":
                continue
            action: _Action = "template" if in_scope else ("drop" if self.history == "drop" else "ocr")
            for media in ("image", "document"):
                of_kind = [(position, ref) for position, ref in found if ref.media == media]
                placeholder = action == "template" and media == "image" and self.template == "placeholder"
                for index, (position, ref) in enumerate(of_kind, 1):
                    images.append(
                        _Image(i, position, ref, index, len(of_kind), "placeholder" if placeholder else action)
                    )
        images.sort(key=lambda image: (image.message, image.part))
        return images

    def _key(self, digest: str, model: str, document: bool = False) -> str:
        options = json.dumps(self.options, sort_keys=True, default=str, ensure_ascii=False)
        pages = f"\0document\0{self.max_pages}" if document else ""
        return hashlib.sha256(f"{digest}\0{model}\0{options}{pages}".encode()).hexdigest()

    def _prepare(
        self, images: Sequence[_Image], model: str
    ) -> tuple[dict[str, ImageInput], dict[str, tuple[ImageRef, LoadedImage]]]:
        """Load each part (refusing what may not be read), answer what the cache knows; the rest, by key: the
        images to read, and the documents."""
        todo: dict[str, ImageInput] = {}
        documents: dict[str, tuple[ImageRef, LoadedImage]] = {}
        hits = 0
        for image in images:
            if image.action in ("drop", "placeholder"):
                continue
            try:
                loaded = load_image(image.ref, self.allowed_dir)
            except QwenOCRError as exc:
                image.outcome = exc
                continue
            image.key = self._key(loaded.digest, model, image.is_document)
            cached = self._cache_get(image.key)
            if cached is not None:
                image.outcome = cached
                hits += 1
            elif image.is_document:
                documents.setdefault(image.key, (image.ref, loaded))
            elif image.key not in todo:
                todo[image.key] = loaded.image
        if self.effective_on_error == "raise":  # a part that may not be read fails the call before anything is read
            for image in images:
                if isinstance(image.outcome, QwenOCRError):
                    raise image.outcome
        logger.debug(
            "ImageReader: %d part(s), %d from the cache, %d image(s) and %d document(s) to read",
            len(images),
            hits,
            len(todo),
            len(documents),
        )
        return todo, documents

    # -- documents: page by page through the engine ----------------------------------------------------------------

    def _reading(self, pages: int) -> dict[str, Any]:
        """The options of :func:`qwen_ocr.read_documents` for a document whose first ``pages`` pages are read."""
        concurrency = self.max_concurrency if "max_concurrency" in self.model_fields_set else None
        on_error = "raise" if self.effective_on_error == "raise" else "mark"  # the engine's policy, as for images
        options: dict[str, Any] = {**self.options, "pages": f"1-{pages}", "on_error": on_error}
        if concurrency is not None:
            options["max_concurrency"] = concurrency
        return options

    def _document_bytes(self, loaded: LoadedImage) -> bytes:
        if isinstance(loaded.image, bytes):
            return loaded.image
        return fetch(str(loaded.image), max_bytes=MAX_LOCAL_BYTES, allow_private=self.allow_private_urls)

    def _read_document(self, client: QwenOCR, ref: ImageRef, loaded: LoadedImage) -> _DocumentReading | QwenOCRError:
        try:
            data = self._document_bytes(loaded)
            total = _page_count(data)
            pages = engine.read_documents(
                client, [(ref.name or "document", data)], **self._reading(min(total, self.max_pages))
            )
            read = [_page(page) for page in pages]
        except QwenOCRError as exc:
            return exc
        return _DocumentReading(tuple(read), total)

    async def _aread_document(
        self, client: AsyncQwenOCR, ref: ImageRef, loaded: LoadedImage
    ) -> _DocumentReading | QwenOCRError:
        try:
            if isinstance(loaded.image, bytes):
                data = loaded.image
            else:
                url = str(loaded.image)
                data = await afetch(url, max_bytes=MAX_LOCAL_BYTES, allow_private=self.allow_private_urls)
            total = await asyncio.to_thread(_page_count, data)
            options = self._reading(min(total, self.max_pages))
            read = [
                _page(page)
                async for page in engine.aread_documents(client, [(ref.name or "document", data)], **options)
            ]
        except QwenOCRError as exc:
            return exc
        return _DocumentReading(tuple(read), total)

    # -- images: through the engine, one window for all of them ----------------------------------------------------

    def _image_reading(self, count: int) -> dict[str, Any]:
        """The options of :func:`qwen_ocr.read_documents` for ``count`` images: the engine's policy (``"raise"``
        stops the reading at the first error; otherwise each image's error is kept for ``on_error`` to render)."""
        return {
            **self.options,
            "on_error": "raise" if self.effective_on_error == "raise" else "mark",
            "text_layer": "never",  # an image has no text layer
            "max_concurrency": max(1, min(self.max_concurrency, count)),
        }

    @staticmethod
    def _image_sources(todo: Mapping[str, ImageInput]) -> list[Source]:
        """What the engine reads for each image: its bytes, or its http(s) URL as a :class:`~qwen_ocr.RemoteImage`
        (the service downloads it; this client never does)."""
        sources: list[Source] = []
        for image in todo.values():
            if isinstance(image, str):
                sources.append(RemoteImage(image))
            else:
                assert isinstance(image, bytes)  # load_image gives bytes or a URL
                # named without a number: the reader's own mark says which image ("image k of n")
                sources.append(("the image", image))
        return sources

    def _store(self, images: Sequence[_Image], todo: Mapping[str, Any], outcomes: Sequence[_Outcome]) -> None:
        by_key = dict(zip(todo, outcomes, strict=True))
        for key, outcome in by_key.items():
            if isinstance(outcome, OCRResult) or (isinstance(outcome, _DocumentReading) and outcome.complete):
                self._cache_put(key, outcome)
        for image in images:
            if image.outcome is None and image.key is not None and image.key in by_key:
                image.outcome = by_key[image.key]

    def _cache_get(self, key: str) -> OCRResult | _DocumentReading | None:
        if self.cache_size == 0:
            return None
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _cache_put(self, key: str, result: OCRResult | _DocumentReading) -> None:
        if self.cache_size == 0:
            return
        # the text, not the image: the cache holds no pixels (document pages are kept without theirs already)
        kept = result.model_copy()._attach_image(None) if isinstance(result, OCRResult) else result
        with self._cache_lock:
            self._cache[key] = kept
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    # -- output --------------------------------------------------------------------------------------------------

    def _with_text(self, messages: Sequence[BaseMessage], images: Sequence[_Image]) -> list[BaseMessage]:
        on_error = self.effective_on_error
        for image in images:  # errors that fail every image alike (a wrong key...) are raised, as everywhere
            if isinstance(image.outcome, QwenOCRError) and (on_error == "raise" or is_fatal(image.outcome)):
                raise image.outcome
            if isinstance(image.outcome, _DocumentReading) and on_error == "raise":
                for page in image.outcome.pages:
                    if page.error is not None:
                        raise page.error
        by_message: dict[int, list[_Image]] = {}
        for image in images:
            by_message.setdefault(image.message, []).append(image)
        out = list(messages)
        for i, group in by_message.items():
            message = messages[i]
            assert isinstance(message.content, list)
            if self.template == "higress" and group[0].action == "template":
                content: str | list[Any] = self._higress_content(message.content, group, on_error)
            else:
                content = self._inline_content(message.content, group, on_error)
            out[i] = message.model_copy(update={"content": content})
        return out

    def _image_text(self, image: _Image) -> ImageText:
        result = image.outcome if isinstance(image.outcome, OCRResult) else None
        error = image.outcome if isinstance(image.outcome, QwenOCRError) else None
        return ImageText(
            index=image.index,
            total=image.total,
            text=result.text if result is not None else "",
            result=result,
            error=error,
            source=image.ref.describe(),
        )

    def _document_blocks(self, image: _Image, reading: _DocumentReading, on_error: OnError) -> list[Any]:
        """A document's pages, one text part each (rendered with the template), then the pages not read."""
        template = "default" if self.template in ("higress", "placeholder") else self.template
        blocks: list[Any] = []
        for page in reading.pages:
            if page.error is not None:
                if on_error != "skip":  # "keep_image" cannot keep a page: the page is marked
                    mark = error_mark(image.index, image.total, page.error, media="document", page=page.number)
                    blocks.append(_text_block(mark))
                continue
            text = ImageText(
                index=image.index,
                total=image.total,
                text=page.text,
                result=page.result,
                source=image.ref.describe(),
                page=page.number,
                pages=reading.total_pages,
            )
            blocks.append(_text_block(render_inline(template, text)))
        if reading.total_pages > len(reading.pages):
            left = pages_left_mark(image.index, image.total, read=len(reading.pages), pages=reading.total_pages)
            blocks.append(_text_block(left))
        return blocks

    def _replacement(self, image: _Image, on_error: OnError) -> list[Any] | None:
        """What replaces one part: a list of parts (empty: left out), or ``None`` to keep the part as it is."""
        media = image.ref.media
        if image.action == "drop":
            return [_text_block(omitted_mark(image.index, image.total, media=media))]
        if image.action == "placeholder":
            return [_text_block(placeholder_mark(image.index, image.total))]
        if isinstance(image.outcome, OCRResult):
            return [_text_block(render_inline(self.template, self._image_text(image)))]
        if isinstance(image.outcome, _DocumentReading):
            return self._document_blocks(image, image.outcome, on_error)
        if isinstance(image.outcome, QwenOCRError):
            if on_error == "mark":
                return [_text_block(error_mark(image.index, image.total, image.outcome, media=media))]
            if on_error == "skip":
                return []
        return None

    def _inline_content(self, content: list[Any], group: Sequence[_Image], on_error: OnError) -> str | list[Any]:
        replaced = {image.part: self._replacement(image, on_error) for image in group}
        new: list[Any] = []
        for position, part in enumerate(content):
            value = replaced.get(position)
            if value is None:
                new.append(part)
            else:
                new.extend(value)
        return new if new else ""

    def _higress_content(self, content: list[Any], group: Sequence[_Image], on_error: OnError) -> str | list[Any]:
        positions = {image.part: image for image in group}
        texts: list[str] = []
        kept: list[Any] = []
        lines: list[tuple[int, str]] = []
        images = 0
        for position, part in enumerate(content):
            image = positions.get(position)
            if image is None:
                text = _text_of(part)
                if text is not None:
                    texts.append(text)
                else:
                    kept.append(part)  # neither text nor image: kept after the text
                continue
            if image.is_document:  # not in the plugin's layout: its pages, as default blocks, after the text
                replacement = self._replacement(image, on_error)
                kept.extend([part] if replacement is None else replacement)
                continue
            images += 1
            if isinstance(image.outcome, OCRResult):
                lines.append((image.index, image.outcome.text))
            elif isinstance(image.outcome, QwenOCRError):
                if on_error == "mark":
                    lines.append((image.index, error_mark(image.index, image.total, image.outcome)))
                elif on_error == "keep_image":
                    kept.append(part)
        if not images:  # documents only: no Higress prompt about images
            return self._inline_content(content, group, on_error)
        prompt = higress_prompt("\n".join(texts), images, lines)
        return [_text_block(prompt), *kept] if kept else prompt
