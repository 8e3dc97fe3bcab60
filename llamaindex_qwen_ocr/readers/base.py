"""``QwenOCRReader``: PDFs, multi-page TIFFs and images read by Qwen-OCR into one LlamaIndex ``Document`` per page."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import aclosing, closing
from typing import IO, Any, SupportsIndex, Union

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, GetCoreSchemaHandler, PrivateAttr
from pydantic_core import CoreSchema, core_schema
from typing_extensions import Self

from qwen_ocr.engine import aread_documents, check_model_arguments, is_fatal, read_documents
from qwen_ocr.errors import QwenOCRError
from qwen_ocr.read_settings import ReadSettings
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import render
from qwen_ocr.settings import ClientHolder
from qwen_ocr.sources import named_sources

from .._metadata import flat_page_metadata, hidden_keys

__all__ = ["FileInput", "KeyList", "PageDocument", "QwenOCRReader"]

logger = logging.getLogger("llamaindex_qwen_ocr")

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""One input of the reader: a path (local, or on ``fs``; a folder or a glob pattern stands for its files), the
file's bytes, or a binary file object; the reader also takes a list of these."""


class KeyList(list[str]):
    """A list of metadata key names that keeps each name once: adding a name it holds does nothing.

    ``SimpleDirectoryReader`` extends every reader's ``excluded_embed_metadata_keys`` and
    ``excluded_llm_metadata_keys`` with its own file keys (``file_name``, ``file_size``, ...), which the reader
    already hides; with this list each still appears once.

    >>> keys = KeyList(["file_name"]); keys.extend(["file_name", "file_size"]); keys
    ['file_name', 'file_size']
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self.extend(keys)

    def append(self, key: str) -> None:
        """Add ``key`` unless it is there."""
        if key not in self:
            super().append(key)

    def extend(self, keys: Iterable[str]) -> None:
        """Add each of ``keys`` that is not there, in order."""
        for key in keys:
            self.append(key)

    def insert(self, index: SupportsIndex, key: str) -> None:
        """Insert ``key`` at ``index`` unless it is there."""
        if key not in self:
            super().insert(index, key)

    def __iadd__(self, keys: Iterable[str]) -> Self:  # type: ignore[override,misc]
        self.extend(keys)
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls, handler(list[str]))


class PageDocument(Document):
    """The reader's ``Document`` of a page: a LlamaIndex ``Document`` (``class_name()`` ``"Document"``, stored and
    loaded as one) whose excluded metadata key lists are :class:`KeyList`, so a key is listed once even after
    ``SimpleDirectoryReader`` adds its own."""

    excluded_embed_metadata_keys: KeyList = Field(
        default_factory=KeyList, description="Metadata keys left out of the embedding text, each once."
    )
    excluded_llm_metadata_keys: KeyList = Field(
        default_factory=KeyList, description="Metadata keys left out of the LLM text, each once."
    )

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)


class QwenOCRReader(BasePydanticReader, ReadSettings, ClientHolder):
    """Reads PDFs, multi-page TIFFs and images with Qwen-OCR: one ``Document`` per page, files in the order given.

    Reads through :func:`qwen_ocr.read_documents` (files, folders, glob patterns or lists of them, one window of
    ``max_concurrency`` pages across files, one ``on_error`` policy); works on its own, as a
    ``SimpleDirectoryReader`` ``file_extractor`` (also over an fsspec filesystem) and in an ``IngestionPipeline``.
    Settings are the fields of :class:`qwen_ocr.read_settings.ReadSettings` (``task``, ``schema``, ``prompt``,
    ``pages``, ``password``, ``text_layer``, ``on_error``, ``recursive``, ``glob``, ``content_format``, ...) and
    :class:`qwen_ocr.settings.ClientSettings` (or ``client=`` / ``aclient=``); an unknown one is refused.
    ``api_key`` and ``password`` never appear in ``repr`` or ``to_dict()``.

    Each page's ``Document``: ``text`` in ``content_format`` (:mod:`qwen_ocr.rendering`, the LangChain loader's
    text); ``metadata`` the keys of :meth:`qwen_ocr.PageResult.metadata` made flat (lists and objects as JSON
    text), with ``file_name`` and ``file_path`` and ``extra_info`` merged in; only ``file_path``, ``page_label``
    and keys of ``extra_info`` the reader does not know are embedded (each key's flag:
    :data:`llamaindex_qwen_ocr._metadata.KEYS`); ``id_`` ``"<file_path>_part_<page index>"`` (stable across
    reads; bytes without a name use ``"sha256:<32 hex digits>"`` as the path). A page or file that cannot be read
    is raised, skipped or marked (``on_error``; a file's mark has the id ``"<file_path>_unreadable"``). Errors that
    fail every file alike (a missing or wrong key, no access to the model, an exhausted quota) are raised in every
    case and the first of each kind is logged at WARNING, so a ``SimpleDirectoryReader`` run does not end silently.

    Example::

        from llama_index.core import SimpleDirectoryReader
        from llamaindex_qwen_ocr import QwenOCRReader

        reader = QwenOCRReader(task="document_parsing", max_concurrency=4)   # key from DASHSCOPE_API_KEY
        docs = reader.load_data("paper.pdf")
        docs = reader.load_data(["scans/", "cover.png"])                       # folders and lists too
        docs = SimpleDirectoryReader(
            "scans/", file_extractor={".pdf": reader, ".png": reader}, raise_on_error=True
        ).load_data()
        docs = await reader.aload_data("paper.pdf")                           # natively async
        async for doc in reader.aiter_data("paper.pdf"):                      # each page as soon as it is read
            ...
    """

    is_remote: bool = Field(default=True, description="Pages are read by a remote service.")
    _warned: set[str] = PrivateAttr(default_factory=set)

    def __init__(self, **data: Any) -> None:
        check_model_arguments(type(self), data, "setting")
        super().__init__(**data)

    def _warn_fatal(self, error: QwenOCRError) -> None:
        """Log, once per kind, an error that fails every file alike: ``SimpleDirectoryReader`` catches a reader's
        errors and skips the file (it raises only with ``raise_on_error=True``), so a run where every file fails
        for that reason must not end in silence with 0 documents."""
        kind = f"{type(error).__name__}:{error.code}"
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(
            "QwenOCRReader cannot read any file: %s (%s). Every file fails alike until this is fixed; "
            "SimpleDirectoryReader skips failed files unless raise_on_error=True.",
            error.message,
            type(error).__name__,
        )

    @classmethod
    def class_name(cls) -> str:
        """The stable name used in serialisation."""
        return "QwenOCRReader"

    def lazy_load_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterator[Document]:
        """Each selected page's ``Document``, in order, as soon as it and the ones before are read (``load_data``
        gives them as a list).

        Args:
            file_path: a path (on ``fs`` when given; a folder or a glob pattern stands for its files), the file's
                bytes, a binary file object, or a list of these.
            extra_info: metadata merged into every page (``SimpleDirectoryReader`` passes the file's).
            fs: an fsspec filesystem to read ``file_path`` from (``SimpleDirectoryReader`` passes its own).
        """
        unnamed: set[str] = set()
        pages = read_documents(
            self.get_client(), named_sources(file_path, fs=fs, unnamed=unnamed), **self.read_arguments()
        )
        with closing(pages):  # stops the pages still in flight when the caller stops early or a page raises
            try:
                for page in pages:
                    yield self._document(page, unnamed, extra_info)
            except QwenOCRError as exc:
                if is_fatal(exc):
                    self._warn_fatal(exc)
                raise

    async def alazy_load_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterable[Document]:
        """``BaseReader``'s contract: a coroutine returning every selected page's ``Document``
        (``list(await reader.alazy_load_data(path))``), read natively async (:meth:`aiter_data`, not a thread).
        To handle each page as soon as it is read, iterate :meth:`aiter_data` instead."""
        return [doc async for doc in self.aiter_data(file_path, extra_info, fs)]

    async def aiter_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load_data`, an async iterator (``async for doc in
        reader.aiter_data(path)``): requests are awaited on the running event loop; leaving the loop early cancels
        the requests still in flight."""
        unnamed: set[str] = set()
        sources = named_sources(file_path, fs=fs, unnamed=unnamed)
        async with aclosing(aread_documents(self.get_async_client(), sources, **self.read_arguments())) as pages:
            try:
                async for page in pages:
                    yield self._document(page, unnamed, extra_info)
            except QwenOCRError as exc:
                if is_fatal(exc):
                    self._warn_fatal(exc)
                raise

    async def aload_data(self, *args: Any, **kwargs: Any) -> list[Document]:
        """Every selected page's ``Document``, read natively async (the arguments of :meth:`lazy_load_data`)."""
        return [doc async for doc in self.aiter_data(*args, **kwargs)]

    def _document(self, page: PageResult, unnamed: set[str], extra_info: Mapping[str, Any] | None) -> Document:
        key, named = page.source, page.source not in unnamed
        meta: dict[str, Any] = {}
        if named:
            meta["file_name"] = key.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or key
            meta["file_path"] = key
        meta.update(extra_info or {})
        page_meta = flat_page_metadata(page, self.content_format)
        meta.update(page_meta)
        if page.file_failed:
            id_, text = f"{key}_unreadable", ""
        else:
            id_, text = f"{key}_part_{page.index}", render(page.result, self.content_format) if page.ok else ""
        hidden = hidden_keys(meta, own=[*page_meta, *(("file_name", "file_path") if named else ())])
        return PageDocument(
            id_=id_,
            text=text,
            metadata=meta,
            excluded_embed_metadata_keys=KeyList(hidden),
            excluded_llm_metadata_keys=KeyList(hidden),
        )
