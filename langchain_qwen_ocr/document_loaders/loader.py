"""``QwenOCRLoader``: scans, PDFs and images into LangChain Documents, page by page, with Qwen-OCR."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from qwen_ocr.assembly import DEFAULT_PAGE_SEPARATOR, MODES, Collator, Mode, configure, describe
from qwen_ocr.engine import OnError, aread_documents, read_documents
from qwen_ocr.sources import Sources, check_sources, describe_sources

from .batch import QwenOCRBatchLoader
from .documents import Assembler, ContentFormat

if TYPE_CHECKING:
    from qwen_ocr import AsyncQwenOCR, QwenOCR

__all__ = ["MODES", "Assembler", "Mode", "OnError", "QwenOCRBatchLoader", "QwenOCRLoader", "configure", "describe"]


class QwenOCRLoader(BaseLoader):
    """Load PDFs, multi-page TIFFs and images as Documents read by Qwen-OCR: one per page by default.

    The reading is :func:`qwen_ocr.read_documents` (a window of ``max_concurrency`` pages in flight across files,
    pages in order, flat memory, one ``on_error`` policy, stopping at once when the caller stops); the Documents
    are :mod:`qwen_ocr.assembly`'s, the same text and keys as the LlamaIndex reader's.

    Args:
        file_path: a path, a glob pattern, a directory, an http(s) URL, the file's ``bytes`` (with ``name=``),
            ``(name, bytes)``, a binary file object, or a list of these (:func:`qwen_ocr.sources.expand_sources`).
        name: the ``source`` of ``file_path`` when it is bytes or a file object.
        recursive: also read the subdirectories of a directory.
        glob: which files of a directory to read (default: every PDF and image file by extension).
        mode: ``"page"`` (one Document per page), ``"single"`` (one per file, ``page_offsets`` in metadata: see
            :func:`page_for_offset`) or ``"elements"`` (one per title, paragraph, table, ..., with ``category``).
        content_format: ``page_content`` as ``"markdown"`` (default), ``"text"`` or the model's ``"raw"`` text.
        page_separator: what joins pages in single mode (a blank line by default).
        include_lines: keep ``metadata["lines"]``, every text line's box (off: ~2 KB a page that a splitter copies
            into every chunk and most vector stores refuse; on to draw or highlight lines).
        ocr_options: ``resolution`` (``"standard"``, ``"high"``, ``"max"``: :mod:`qwen_ocr.budget`), ``min_pixels``,
            ``max_pixels``, ``enable_rotate``, ``max_tokens``, ``temperature``.
        client, aclient: the :class:`~qwen_ocr.QwenOCR` / :class:`~qwen_ocr.AsyncQwenOCR` to use.
        **options: the options of :func:`qwen_ocr.read_documents` (``task``, ``schema``, ``prompt``, ``model``,
            ``pages``, ``password``, ``text_layer``, ``on_error``, ``max_concurrency``, ``show_progress``, the
            download limits) and, without a client, the client settings of :class:`qwen_ocr.settings.ClientSettings`.

    Ids, element categories and which keys survive ``filter_complex_metadata``: see :mod:`qwen_ocr.assembly`.

    Raises:
        InvalidArgumentError: an option is wrong or unknown (at construction).

    Example::

        from langchain_qwen_ocr.document_loaders import QwenOCRLoader

        loader = QwenOCRLoader("scans/*.pdf", task="table_parsing", on_error="mark", max_concurrency=8)
        for doc in loader.lazy_load():
            print(doc.metadata["source"], doc.metadata["page"], doc.page_content[:80])

        docs = await QwenOCRLoader("https://example.com/invoice.pdf", mode="single").aload()
        docs = QwenOCRLoader.from_batch("jobs/june").load()     # a finished Batch API job: see from_batch
    """

    def __init__(
        self,
        file_path: Sources,
        *,
        name: str | None = None,
        recursive: bool = False,
        glob: str | None = None,
        mode: Mode = "page",
        content_format: ContentFormat = "markdown",
        page_separator: str = DEFAULT_PAGE_SEPARATOR,
        include_lines: bool = False,
        ocr_options: Mapping[str, Any] | None = None,
        client: QwenOCR | None = None,
        aclient: AsyncQwenOCR | None = None,
        **options: Any,
    ) -> None:
        check_sources(file_path, argument="file_path")
        self.file_path, self.name, self.recursive, self.glob = file_path, name, recursive, glob
        self.mode, self.content_format, self.page_separator = mode, content_format, page_separator
        self.include_lines = include_lines
        self.options, self._holder = configure(
            mode=mode, content_format=content_format, ocr_options=ocr_options, client=client, aclient=aclient, **options
        )

    from_batch = staticmethod(QwenOCRBatchLoader)
    """``QwenOCRLoader.from_batch(job_dir, ...)``: a loader of the pages of a Batch API job (:mod:`qwen_ocr.batch`),
    the Documents a real-time read of the same sources gives, plus ``batch``; the arguments are
    :class:`~langchain_qwen_ocr.document_loaders.QwenOCRBatchLoader`'s.

    Example::

        docs = QwenOCRLoader.from_batch("jobs/june").load()
        docs = QwenOCRLoader.from_batch("jobs/june", mode="single", wait=True, poll_interval=60).load()
    """

    def __repr__(self) -> str:
        settings = describe(self.mode, self.options, self._holder)
        return f"{type(self).__name__}(file_path={describe_sources(self.file_path)}, {settings})"

    def _reading(self) -> dict[str, Any]:
        return {"name": self.name, "recursive": self.recursive, "glob": self.glob, **self.options.arguments()}

    def _assembler(self) -> Collator[Document]:
        return Assembler(self.mode, self.content_format, self.page_separator, self.options.pages, self.include_lines)

    def lazy_load(self) -> Iterator[Document]:
        """The Documents, file by file and page by page in order, while later pages (and files) are read."""
        yield from self._assembler().collect(
            read_documents(self._holder.get_client(), self.file_path, **self._reading())
        )

    async def alazy_load(self) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load`: requests are awaited on the event loop (rendering runs in threads)."""
        pages = aread_documents(self._holder.get_async_client(), self.file_path, **self._reading())
        async with aclosing(self._assembler().acollect(pages)) as docs:
            async for doc in docs:
                yield doc
