"""``QwenOCRReader``: PDFs, multi-page TIFFs and images read by Qwen-OCR into one LlamaIndex ``Document`` per page."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping
from contextlib import aclosing, closing
from typing import IO, TYPE_CHECKING, Any, Union

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, PrivateAttr

from qwen_ocr.assembly import named_page_record
from qwen_ocr.engine import OnError, StrictSettings, aread_documents, fatal_noted, read_documents
from qwen_ocr.page_metadata import KeyList
from qwen_ocr.read_settings import ReadSettings
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import ContentFormat
from qwen_ocr.settings import ClientHolder
from qwen_ocr.sources import named_sources

from .._metadata import hidden_keys

if TYPE_CHECKING:
    from qwen_ocr import QwenOCR

    from .batch import QwenOCRBatchReader

__all__ = ["FileInput", "KeyList", "PageDocument", "QwenOCRReader", "page_document"]

logger = logging.getLogger("llamaindex_qwen_ocr")

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""One input of the reader: a path (local, or on ``fs``; a folder or a glob pattern stands for its files), the
file's bytes, or a binary file object; the reader also takes a list of these."""


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


class QwenOCRReader(StrictSettings, BasePydanticReader, ReadSettings, ClientHolder):
    """Reads PDFs, multi-page TIFFs and images with Qwen-OCR: one ``Document`` per page, files in the order given.

    It reads through :func:`qwen_ocr.read_documents` (files, folders, globs or lists of them; one window of pages
    across files; one ``on_error`` policy) and works as a ``SimpleDirectoryReader`` ``file_extractor`` too. Settings:
    :class:`qwen_ocr.read_settings.ReadSettings` and :class:`qwen_ocr.settings.ClientSettings` (or ``client=``);
    an unknown one is refused; secrets never appear in ``repr`` or ``to_dict()``. A page is
    :func:`qwen_ocr.assembly.named_page_record`: its text in ``content_format``, its flat keys (only ``file_path``,
    ``page_label`` and unknown ``extra_info`` keys embedded), the id ``"<file_path>_part_<page>"``. Errors that fail
    every file alike are raised and the first of each kind logged at WARNING (``SimpleDirectoryReader`` skips
    failed files silently unless ``raise_on_error=True``).

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
        docs = QwenOCRReader.from_batch("jobs/june").load_data()             # a finished Batch API job's pages
    """

    is_remote: bool = Field(default=True, description="Pages are read by a remote service.")
    _warned: set[str] = PrivateAttr(default_factory=set)

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
        # closing: stops the pages still in flight when the caller stops early or a page raises
        with closing(pages), fatal_noted(self._warned, logger, "QwenOCRReader"):
            for page in pages:
                yield self._document(page, unnamed, extra_info)

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
            with fatal_noted(self._warned, logger, "QwenOCRReader"):
                async for page in pages:
                    yield self._document(page, unnamed, extra_info)

    async def aload_data(self, *args: Any, **kwargs: Any) -> list[Document]:
        """Every selected page's ``Document``, read natively async (the arguments of :meth:`lazy_load_data`)."""
        return [doc async for doc in self.aiter_data(*args, **kwargs)]

    def _document(self, page: PageResult, unnamed: set[str], extra_info: Mapping[str, Any] | None) -> Document:
        return page_document(page, unnamed, extra_info, self.content_format)

    @classmethod
    def from_batch(
        cls,
        job_dir: str | os.PathLike[str],
        *,
        client: QwenOCR | None = None,
        content_format: ContentFormat = "markdown",
        on_error: OnError = "raise",
        wait: bool = False,
        poll_interval: float = 30.0,
        timeout: float | None = None,
    ) -> QwenOCRBatchReader:
        """A reader of the pages of a Batch API job (:mod:`qwen_ocr.batch`): ``load_data()`` (no argument: the job
        names its files) gives the Documents a real-time read of the same sources with the job's options gives
        (same text, id and metadata, plus ``batch``: the batch that read the page), in input order, read from the
        job's files (nothing is sent). See :class:`~llamaindex_qwen_ocr.readers.QwenOCRBatchReader`.

        Args:
            job_dir: the job's directory (``client.batch.submit(..., job_dir=...)``, ``qwen-ocr batch submit --job``).
            client: the client to open the job with (it must talk to the host the job was submitted to); default:
                one for that host, its key from the environment (needed only to wait).
            content_format: the page text, as for :class:`QwenOCRReader` (what was read, and how, is the job's).
            on_error: a page or file that failed: ``"raise"`` its error (default), ``"skip"`` it or ``"mark"`` it.
            wait: follow a job still running to its end first (polling every ``poll_interval`` seconds, for at most
                ``timeout`` seconds); off: a job not finished raises :class:`~qwen_ocr.errors.BatchNotFinishedError`.

        Raises:
            BatchJobError: no job in ``job_dir``, or ``client`` talks to another host (here, not at load).

        Example::

            docs = QwenOCRReader.from_batch("jobs/june").load_data()
            docs = QwenOCRReader.from_batch("jobs/june", wait=True, poll_interval=60).load_data(extra_info={"lot": 7})
        """
        from .batch import QwenOCRBatchReader

        return QwenOCRBatchReader(
            job_dir=os.fspath(job_dir),
            client=client,
            content_format=content_format,
            on_error=on_error,
            wait=wait,
            poll_interval=poll_interval,
            timeout=timeout,
        )


def page_document(
    page: PageResult, unnamed: Collection[str], extra_info: Mapping[str, Any] | None, content_format: ContentFormat
) -> Document:
    """A page's ``Document``, as the readers give it (:func:`qwen_ocr.assembly.named_page_record`: its text, flat
    keys and id; the keys this package wrote and declares hidden left out of the embedding and LLM text).

    >>> doc = page_document(PageResult(source="a.pdf", index=1, label="2", total_pages=2), (), None, "markdown")
    >>> doc.id_, doc.metadata["file_name"], doc.metadata["page_label"]
    ('a.pdf_part_1', 'a.pdf', '2')
    """
    id_, text, meta, own = named_page_record(page, unnamed, extra_info, content_format)
    hidden = KeyList(hidden_keys(meta, own=own))
    return PageDocument(
        id_=id_, text=text, metadata=meta, excluded_embed_metadata_keys=hidden, excluded_llm_metadata_keys=hidden
    )
