"""``QwenOCRReader``: PDFs, multi-page TIFFs and images read by Qwen-OCR into one LlamaIndex ``Document`` per page."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import IO, Any, Literal, Union

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, PrivateAttr, SecretStr

from qwen_ocr.budget import Resolution
from qwen_ocr.engine import OnError, aread_documents, check_model_arguments, is_fatal, read_documents
from qwen_ocr.errors import QwenOCRError
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import ContentFormat, render
from qwen_ocr.settings import ClientHolder
from qwen_ocr.tasks import Task, resolve_task

from .._metadata import hidden_keys, page_metadata

__all__ = ["FileInput", "QwenOCRReader"]

logger = logging.getLogger("llamaindex_qwen_ocr")

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""One input of the reader: a path (local, or on ``fs``; a folder or a glob pattern stands for its files), the
file's bytes, or a binary file object; the reader also takes a list of these."""


class QwenOCRReader(BasePydanticReader, ClientHolder):
    """Reads PDFs, multi-page TIFFs and images with Qwen-OCR: one ``Document`` per page, files in the order given,
    pages in page order.

    Works on its own (a file, a folder, a glob pattern, or a list of them: read with one window of
    ``max_concurrency`` pages in flight across files by :func:`qwen_ocr.read_documents`), as a
    ``SimpleDirectoryReader`` ``file_extractor`` entry (also over an fsspec filesystem), and in an
    ``IngestionPipeline``. Settings are pydantic fields: the OCR options below plus the client settings of
    :class:`qwen_ocr.settings.ClientSettings` (``api_key``, ``base_url``, ``region``, ``model``, ``protocol``,
    ``provider``, ``timeout``, ``max_retries``, ``max_concurrency`` = pages in flight, ...); or pass ``client=`` /
    ``aclient=``. An unknown setting is refused (:class:`~qwen_ocr.errors.InvalidArgumentError` naming the closest
    one). ``api_key`` and ``password`` are secrets: hidden in ``repr`` and never in ``to_dict()``.

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

    A page or a file that cannot be read (encrypted without the right ``password``, corrupt, not a document,
    missing) raises its typed :class:`qwen_ocr.QwenOCRError` (``on_error="raise"``), is left out (``"skip"``), or
    comes back as a ``Document`` with empty text and ``error`` metadata (``"mark"``; a whole file's has the id
    ``"<file_path>_unreadable"``). Errors that would fail every page alike (a missing or wrong key, no access to the
    model, an exhausted quota) are raised in every case, as in every integration, and the first of each kind is
    also logged at WARNING with its cause: ``SimpleDirectoryReader`` catches a reader's errors and skips the file
    (it raises only with ``raise_on_error=True``), so a run where every file fails for that reason does not end
    in silence with 0 documents.

    Example::

        from llama_index.core import SimpleDirectoryReader
        from llamaindex_qwen_ocr import QwenOCRReader

        reader = QwenOCRReader(task="document_parsing", max_concurrency=4)   # key from DASHSCOPE_API_KEY
        docs = reader.load_data("paper.pdf")
        docs[0].metadata["page_label"], docs[0].metadata["total_pages"]

        docs = reader.load_data(["scans/", "cover.png"])                       # folders and lists too
        docs = SimpleDirectoryReader(
            "scans/", file_extractor={".pdf": reader, ".png": reader}, raise_on_error=True
        ).load_data()
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
    text_layer: Literal["never", "auto", "only"] | None = Field(
        default=None,
        description="'auto' uses a PDF page's own good text instead of OCR, 'only' never sends a page, 'never' OCRs "
        "every page. Default: 'auto' for plain text, 'never' for the structured tasks and custom prompts.",
    )
    on_error: OnError = Field(
        default="raise",
        description="A failed page or file: 'raise' its error, 'skip' it, or 'mark' it (empty text, error metadata).",
    )
    recursive: bool = Field(default=False, description="Also read the subfolders of a folder.")
    glob: str | None = Field(default=None, description="Which files of a folder to read (default: PDFs, images).")
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

    _warned: set[str] = PrivateAttr(default_factory=set)

    def __init__(self, **data: Any) -> None:
        check_model_arguments(type(self), data, "setting")
        super().__init__(**data)

    def _warn_fatal(self, error: QwenOCRError) -> None:
        """Log, once per kind, an error that fails every file alike (see the class's description)."""
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

    # -- loading ---------------------------------------------------------------------------------------------------

    def lazy_load_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> Iterator[Document]:
        """Read files page by page, yielding each page's ``Document`` as soon as it and the ones before are read.

        Args:
            file_path: a path (on ``fs`` when given; a folder or a glob pattern stands for its files), the file's
                bytes, a binary file object, or a list of these.
            extra_info: metadata merged into every page (``SimpleDirectoryReader`` passes the file's).
            fs: an fsspec filesystem to read ``file_path`` from (``SimpleDirectoryReader`` passes its own).
        """
        unnamed: set[str] = set()
        pages = read_documents(self.get_client(), self._sources(file_path, fs, unnamed), **self._reading())
        try:
            for page in pages:
                yield self._document(page, unnamed, extra_info)
        except QwenOCRError as exc:
            if is_fatal(exc):
                self._warn_fatal(exc)
            raise
        finally:
            pages.close()  # stops the pages still in flight when the caller stops early or a page raises

    def load_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """Every selected page's ``Document``, in order (see :meth:`lazy_load_data`)."""
        return list(self.lazy_load_data(file_path, extra_info=extra_info, fs=fs))

    async def alazy_load_data(  # type: ignore[override]
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load_data`: an async iterator of the pages' ``Document`` objects.

        Requests are awaited on the running event loop with the reader's async client (listing, opening and
        rendering run in worker threads); leaving the loop early cancels the requests still in flight.
        """
        unnamed: set[str] = set()
        pages = aread_documents(self.get_async_client(), self._sources(file_path, fs, unnamed), **self._reading())
        try:
            async for page in pages:
                yield self._document(page, unnamed, extra_info)
        except QwenOCRError as exc:
            if is_fatal(exc):
                self._warn_fatal(exc)
            raise
        finally:
            await pages.aclose()  # cancels the requests still in flight when the caller stops early or a page raises

    async def aload_data(
        self,
        file_path: FileInput | Iterable[FileInput],
        extra_info: dict[str, Any] | None = None,
        fs: Any = None,
    ) -> list[Document]:
        """Every selected page's ``Document``, read asynchronously (see :meth:`alazy_load_data`)."""
        return [doc async for doc in self.alazy_load_data(file_path, extra_info=extra_info, fs=fs)]

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _reading(self) -> dict[str, Any]:
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
            "pages": self.pages,
            "password": self.password.get_secret_value() if self.password is not None else None,
            "text_layer": self.text_layer,
            "on_error": self.on_error,
            # The client's own limit unless max_concurrency was set on the reader.
            "max_concurrency": self.max_concurrency if "max_concurrency" in self.model_fields_set else None,
        }
        return {"recursive": self.recursive, "glob": self.glob, **{k: v for k, v in options.items() if v is not None}}

    def _sources(self, file_path: Any, fs: Any, unnamed: set[str]) -> Iterator[Any]:
        """What :func:`qwen_ocr.read_documents` reads: paths as they are (or, on a non-local ``fs``, read into
        memory as they come), bytes and file objects as ``(name, bytes)``, named after their content when they
        have no name (those names go into ``unnamed``)."""
        single = isinstance(file_path, (str, os.PathLike, bytes, bytearray, memoryview)) or callable(
            getattr(file_path, "read", None)
        )
        for entry in [file_path] if single else file_path:
            if isinstance(entry, (str, os.PathLike)):
                path = os.fsdecode(os.fspath(entry))
                if fs is None or _is_local(fs):
                    yield path
                else:
                    with fs.open(path, "rb") as handle:
                        yield path, bytes(handle.read())
                continue
            read = getattr(entry, "read", None)
            data = read() if callable(read) else entry
            if not isinstance(data, (bytes, bytearray, memoryview)):
                yield entry  # not something the reader reads: read_documents raises its typed error
                continue
            label = getattr(entry, "name", None) if callable(read) else None
            if isinstance(label, (str, os.PathLike)):
                yield os.fsdecode(os.fspath(label)), bytes(data)
            else:
                key = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()[:32]
                unnamed.add(key)
                yield key, bytes(data)

    def _document(self, page: PageResult, unnamed: set[str], extra_info: Mapping[str, Any] | None) -> Document:
        key = page.source
        named = key not in unnamed
        meta: dict[str, Any] = {}
        if named:
            meta["file_name"] = key.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or key
            meta["file_path"] = key
        meta.update(extra_info or {})
        page_meta = page_metadata(page, self.content_format)
        meta.update(page_meta)
        if page.file_failed:
            id_, text = f"{key}_unreadable", ""
        else:
            id_, text = f"{key}_part_{page.index}", render(page.result, self.content_format) if page.ok else ""
        hidden = hidden_keys(meta, own=[*page_meta, *(("file_name", "file_path") if named else ())])
        return Document(
            id_=id_,
            text=text,
            metadata=meta,
            excluded_embed_metadata_keys=hidden,
            excluded_llm_metadata_keys=list(hidden),
        )


def _is_local(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", None)
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "file" in protocols or "local" in protocols
