"""``QwenOCRReader``: PDFs, multi-page TIFFs and images read by Qwen-OCR into one LlamaIndex ``Document`` per page."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import IO, Any, Literal, Union

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, SecretStr

from qwen_ocr.budget import Resolution
from qwen_ocr.documents import DocumentSource
from qwen_ocr.reading import PageResult, aread_document, read_document
from qwen_ocr.rendering import ContentFormat, render
from qwen_ocr.settings import ClientHolder
from qwen_ocr.tasks import Task, resolve_task

from .._metadata import hidden_keys, page_metadata

__all__ = ["FileInput", "QwenOCRReader"]

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""What the reader reads: a path (local, or on ``fs``), the file's bytes, or a binary file object."""

OnError = Literal["raise", "skip", "mark"]


class QwenOCRReader(BasePydanticReader, ClientHolder):
    """Reads PDFs, multi-page TIFFs and images with Qwen-OCR: one ``Document`` per page, in page order.

    Works on its own, as a ``SimpleDirectoryReader`` ``file_extractor`` entry (also over an fsspec filesystem),
    and in an ``IngestionPipeline``. Settings are pydantic fields: the OCR options below plus the client settings
    of :class:`qwen_ocr.settings.ClientSettings` (``api_key``, ``base_url``, ``region``, ``model``, ``protocol``,
    ``provider``, ``timeout``, ``max_retries``, ``max_concurrency`` = pages in flight); or pass ``client=`` /
    ``aclient=``. ``api_key`` and ``password`` are secrets: hidden in ``repr`` and never in ``to_dict()``.

    Each page's ``Document``:

    - ``text``: the page in ``content_format`` (:mod:`qwen_ocr.rendering`, the same text as the LangChain loader
      gives): by default Markdown (``document_parsing`` LaTeX as Markdown, tables as Markdown tables, extracted
      fields as ``key: value`` lines; other tasks the model's text); ``"text"`` gives LaTeX as plain paragraphs,
      ``"raw"`` the model's text as written.
    - ``metadata``: the keys of :meth:`qwen_ocr.PageResult.metadata` (the LangChain loader's key set, declared in
      :mod:`qwen_ocr.page_metadata`) made flat (``str``/``int``/``float``/``bool`` only; a list or object as its
      JSON text): ``file_name``, ``file_path``, ``page_label`` (as the document prints it), ``page`` (0-based
      index), ``total_pages``, ``text_source`` (``"ocr"`` or ``"text_layer"``), ``task``, ``model``,
      ``provider``, ``request_id``, ``finish_reason``, ``truncated``, ``input_tokens``, ``output_tokens``,
      ``image_tokens``, ``total_tokens``, ``page_width``/``page_height``; for a failed page
      (``on_error="mark"``) ``error``, ``error_type`` and ``error_code``; and the task's structure, which the
      node parser reads: ``latex``, ``tables_html``, ``fields``, ``lines``, ``formulas`` (JSON text).
      ``extra_info`` is merged in (page keys win).
    - Only ``file_path`` and ``page_label`` (and keys of ``extra_info`` the reader does not know) reach the
      embedding and LLM text, as ``SimpleDirectoryReader`` keeps only ``file_path``; every other key above is in
      ``excluded_embed_metadata_keys`` and ``excluded_llm_metadata_keys`` (each key's flag in
      :data:`llamaindex_qwen_ocr._metadata.KEYS`).
    - ``id_``: ``"<file_path>_part_<page index>"`` (0-based index of the page in the file), so reading the same
      file again gives the same ids (what ``SimpleDirectoryReader(filename_as_id=True)`` gives when every page is
      read), and an ``IngestionPipeline`` with a docstore recognises the pages. Bytes and file objects without a
      name use ``"sha256:<first 32 hex digits of the content>"`` in place of the path.

    A file that cannot be opened (encrypted without the right ``password``, corrupt, not a document) raises its
    typed :class:`qwen_ocr.QwenOCRError`. A page that fails raises too (``on_error="raise"``), is left out
    (``"skip"``), or comes back as a ``Document`` with empty text and ``error`` metadata (``"mark"``).

    Example::

        from llama_index.core import SimpleDirectoryReader
        from llamaindex_qwen_ocr import QwenOCRReader

        reader = QwenOCRReader(task="document_parsing", max_concurrency=4)   # key from DASHSCOPE_API_KEY
        docs = reader.load_data("paper.pdf")
        docs[0].metadata["page_label"], docs[0].metadata["total_pages"]

        docs = SimpleDirectoryReader("scans/", file_extractor={".pdf": reader, ".png": reader}).load_data()
        docs = await reader.aload_data("paper.pdf")                           # natively async
    """

    is_remote: bool = Field(default=True, description="Pages are read by a remote service.")
    task: Task | None = Field(
        default=Task.TEXT_RECOGNITION,
        description="The Qwen-OCR task: text_recognition, document_parsing, table_parsing, "
        "key_information_extraction, advanced_recognition, formula_recognition, multi_lan; None for a plain read. "
        "Left unset, a schema implies key_information_extraction and a custom prompt no task.",
    )
    extraction_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="For key_information_extraction: the fields to fill (a JSON-able dict, at most 3 levels).",
    )
    prompt: str | None = Field(default=None, description="A custom instruction (when no task is set).")
    pages: str | int | list[int] | None = Field(
        default=None, description="Pages to read, 1-based: '1-3,7', 5 or [1, 3]; all by default."
    )
    password: SecretStr | None = Field(
        default=None, exclude=True, description="Password of encrypted PDFs (never serialised)."
    )
    text_layer: Literal["never", "auto", "only"] = Field(
        default="never",
        description="'auto' uses a PDF page's own good text instead of OCR, 'only' never sends a page.",
    )
    on_error: OnError = Field(
        default="raise",
        description="A failed page: 'raise' its error, 'skip' it, or 'mark' it (empty text, error metadata).",
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Output token limit per page.")
    min_pixels: int | None = Field(default=None, ge=1, description="Lower pixel budget of a page image.")
    max_pixels: int | None = Field(default=None, ge=1, description="Upper pixel budget of a page image.")
    resolution: Resolution | None = Field(
        default=None,
        description="Pixel budget level of a page image: 'standard' (default, 2,560 tokens), 'high' (small print) "
        "or 'max' (large pages).",
    )
    enable_rotate: bool | None = Field(default=None, description="Let the service straighten rotated pages.")
    content_format: ContentFormat = Field(
        default="markdown", description="The page text: 'markdown' (default), 'text' or the model's 'raw' text."
    )

    @classmethod
    def class_name(cls) -> str:
        """The stable name used in serialisation."""
        return "QwenOCRReader"

    # -- loading ---------------------------------------------------------------------------------------------------

    def lazy_load_data(
        self,
        file_path: FileInput,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterator[Document]:
        """Read a file page by page, yielding each page's ``Document`` as soon as it and the ones before are read.

        Args:
            file_path: a path (on ``fs`` when given), the file's bytes, or a binary file object.
            extra_info: metadata merged into every page (``SimpleDirectoryReader`` passes the file's).
            fs: an fsspec filesystem to read ``file_path`` from (``SimpleDirectoryReader`` passes its own).
        """
        source, key, name = self._source(file_path, fs)
        pages = read_document(
            self.get_client(),
            source,
            pages=self.pages,
            password=self._password(),
            text_layer=self.text_layer,
            max_concurrency=self._window(),
            **self._options(),
        )
        try:
            for page in pages:
                doc = self._document(page, key, name, extra_info)
                if doc is not None:
                    yield doc
        finally:
            # Stops the pages still in flight when the caller stops early or a page raises.
            close = getattr(pages, "close", None)
            if callable(close):
                close()

    def load_data(
        self,
        file_path: FileInput,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """Every selected page's ``Document``, in page order (see :meth:`lazy_load_data`)."""
        return list(self.lazy_load_data(file_path, extra_info=extra_info, fs=fs))

    async def alazy_load_data(  # type: ignore[override]
        self,
        file_path: FileInput,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load_data`: an async iterator of the pages' ``Document`` objects.

        Requests are awaited on the running event loop with the reader's async client (rendering runs in worker
        threads); leaving the loop early cancels the requests still in flight.
        """
        if fs is not None and not _is_local(fs):
            source, key, name = await asyncio.to_thread(self._source, file_path, fs)
        else:
            source, key, name = self._source(file_path, None)
        pages = aread_document(
            self.get_async_client(),
            source,
            pages=self.pages,
            password=self._password(),
            text_layer=self.text_layer,
            max_concurrency=self._window(),
            **self._options(),
        )
        try:
            async for page in pages:
                doc = self._document(page, key, name, extra_info)
                if doc is not None:
                    yield doc
        finally:
            # Cancels the requests still in flight when the caller stops early or a page raises.
            aclose = getattr(pages, "aclose", None)
            if callable(aclose):
                await aclose()

    async def aload_data(
        self,
        file_path: FileInput,
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """Every selected page's ``Document``, read asynchronously (see :meth:`alazy_load_data`)."""
        return [doc async for doc in self.alazy_load_data(file_path, extra_info=extra_info, fs=fs)]

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        # text_recognition unless a task, a schema or a custom prompt says otherwise (one rule: resolve_task)
        explicit = "task" in self.model_fields_set
        task = resolve_task(
            self.task if explicit else None,
            self.extraction_schema,
            self.prompt,
            default=None if explicit else Task.TEXT_RECOGNITION,
        )
        options: dict[str, Any] = {
            "task": task,
            "schema": self.extraction_schema,
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "resolution": self.resolution,
            "enable_rotate": self.enable_rotate,
        }
        return {k: v for k, v in options.items() if v is not None}

    def _password(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    def _window(self) -> int | None:
        # The client's own limit unless max_concurrency was set on the reader.
        return self.max_concurrency if "max_concurrency" in self.model_fields_set else None

    def _source(self, file_path: FileInput, fs: Any) -> tuple[DocumentSource, str, str | None]:
        """``(what to open, the id key, the file name)``; a file on a non-local ``fs`` is read into memory."""
        if isinstance(file_path, (str, os.PathLike)):
            path = os.fsdecode(os.fspath(file_path))
            name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path
            if fs is None or _is_local(fs):
                return path, path, name
            with fs.open(path, "rb") as handle:
                data = handle.read()
            buffer = io.BytesIO(bytes(data))
            buffer.name = path  # names the file in error messages
            return buffer, path, name
        if isinstance(file_path, (bytes, bytearray, memoryview)):
            data = bytes(file_path)
            return data, _content_key(data), None
        read = getattr(file_path, "read", None)
        if callable(read):
            data = read()
            label = getattr(file_path, "name", None)
            if isinstance(data, (bytes, bytearray, memoryview)):
                buffer = io.BytesIO(bytes(data))
                if isinstance(label, (str, os.PathLike)):
                    path = os.fsdecode(os.fspath(label))
                    buffer.name = path
                    return buffer, path, path.replace("\\", "/").rsplit("/", 1)[-1]
                return buffer, _content_key(bytes(data)), None
        # Anything else: let the documents layer raise its typed error.
        return file_path, "unknown", None

    def _document(
        self, page: PageResult, key: str, name: str | None, extra_info: Mapping[str, Any] | None
    ) -> Document | None:
        if page.error is not None:
            if self.on_error == "raise":
                raise page.error
            if self.on_error == "skip":
                return None
        meta: dict[str, Any] = {"file_name": name, "file_path": key} if name is not None else {}
        meta.update(extra_info or {})
        page_meta = page_metadata(page, self.content_format)
        meta.update(page_meta)
        text = render(page.result, self.content_format) if page.ok else ""
        hidden = hidden_keys(meta, own=[*page_meta, *(("file_name", "file_path") if name is not None else ())])
        return Document(
            id_=f"{key}_part_{page.index}",
            text=text,
            metadata=meta,
            excluded_embed_metadata_keys=hidden,
            excluded_llm_metadata_keys=list(hidden),
        )


def _is_local(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", None)
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "file" in protocols or "local" in protocols


def _content_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]
