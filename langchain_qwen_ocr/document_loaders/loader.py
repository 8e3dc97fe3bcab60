"""``QwenOCRLoader``: scans, PDFs and images into LangChain Documents, page by page, with Qwen-OCR.

The reading is :func:`qwen_ocr.read_documents` (:mod:`qwen_ocr.engine`); this module only turns its page results
into Documents for the mode (:class:`Assembler`, shared with the parser).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from qwen_ocr.documents import parse_pages
from qwen_ocr.engine import OnError, aread_documents, read_documents, split_arguments
from qwen_ocr.errors import InvalidArgumentError, QwenOCRError
from qwen_ocr.rendering import check_content_format
from qwen_ocr.sources import Sources, check_sources, display_url, is_url

from .documents import (
    DEFAULT_PAGE_SEPARATOR,
    ContentFormat,
    SingleDocumentBuilder,
    element_documents,
    error_document,
    page_document,
)

if TYPE_CHECKING:
    from qwen_ocr import AsyncQwenOCR, PageResult, QwenOCR
    from qwen_ocr.documents import PageSpec
    from qwen_ocr.engine import ReadOptions
    from qwen_ocr.settings import ClientHolder

__all__ = ["MODES", "Assembler", "Mode", "OnError", "QwenOCRLoader", "configure", "describe"]

Mode = Literal["page", "single", "elements"]
MODES: tuple[str, ...] = ("page", "single", "elements")

_OCR_EXTRA = ("min_pixels", "max_pixels", "resolution", "enable_rotate", "max_tokens", "temperature")


class Assembler:
    """Turns page results (:func:`qwen_ocr.read_documents`, files in order) into Documents for the mode."""

    def __init__(self, mode: Mode, content_format: ContentFormat, separator: str, pages: PageSpec = None) -> None:
        self.mode, self.content_format, self.separator, self.pages = mode, content_format, separator, pages
        self._file, self._left = -1, 0
        self._single: SingleDocumentBuilder | None = None

    def add(self, page: PageResult) -> list[Document]:
        """The Documents of this result (in single mode, a file's Document with its last selected page, or with the
        next file's first result when a page was skipped)."""
        docs: list[Document] = []
        if page.file_index != self._file:
            docs, self._file = self.finish(), page.file_index
            if self.mode == "single":
                self._single = SingleDocumentBuilder(
                    page.source, separator=self.separator, content_format=self.content_format
                )
                try:
                    self._left = len(parse_pages(self.pages, page.total_pages))
                except QwenOCRError:
                    self._left = 0
        if page.error is not None and page.file_failed:  # its pages so far (single mode), then the marked failure
            return [*docs, *self.finish(), error_document(page.source, page.error)]
        if self._single is not None:
            self._single.add(page)
            self._left -= 1
            if self._left == 0:
                docs.extend(self.finish())
        elif page.error is not None:
            docs.append(error_document(page.source, page.error, page=page))
        elif self.mode == "elements":
            docs.extend(element_documents(page, page.source))
        else:
            docs.append(page_document(page, page.source, content_format=self.content_format))
        return docs

    def finish(self) -> list[Document]:
        """What is left: the single-mode Document of the last file."""
        single, self._single = self._single, None
        return [single.build()] if single is not None and not single.empty else []


def configure(
    *, mode: str, content_format: str, ocr_options: Mapping[str, Any] | None, **arguments: Any
) -> tuple[ReadOptions, ClientHolder]:
    """Check the loader's (or parser's) arguments: its own, the reading options and the client settings."""
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r}; use one of {', '.join(map(repr, MODES))}.")
    check_content_format(content_format)
    extra = dict(ocr_options or {})
    unknown = sorted(set(extra) - set(_OCR_EXTRA))
    if unknown:
        raise InvalidArgumentError(
            f"ocr_options has {', '.join(map(repr, unknown))}; it takes {', '.join(_OCR_EXTRA)} "
            "(task, schema, prompt and model are arguments of their own)."
        )
    return split_arguments(**extra, **arguments)


def describe(mode: str, options: ReadOptions, holder: ClientHolder) -> str:
    """The settings for a ``repr``: no password, no key."""
    provider = holder.client.provider if holder.client is not None else holder.provider
    model = options.ocr.get("model") or holder.effective_model
    return f"mode={mode!r}, {options.describe()}, model={model!r}, provider={provider!r}"


class QwenOCRLoader(BaseLoader):
    """Load PDFs, multi-page TIFFs and images as Documents read by Qwen-OCR: one per page by default.

    The reading is :func:`qwen_ocr.read_documents`: pages come back in order while later pages are already being
    rendered and read, ``max_concurrency`` pages in flight in one window across files (a directory of single
    images goes as fast as one long PDF). Each page is retried on its own when the service throttles or fails, and
    a page that still fails is raised, skipped or marked (``on_error``) without losing the others. Memory stays
    flat on large files. Stopping early (``break``, closing the iterator, an exception or Ctrl-C in the loop,
    ``aclose()`` or cancelling :meth:`alazy_load`) stops at once: no further page is started, no failed request is
    retried, and the requests already in flight are abandoned.

    Args:
        file_path: a path, a glob pattern (``"scans/*.pdf"``, ``"inbox/**/*.tif"``), a directory, an http(s) URL
            (downloaded into memory; ``source`` is the URL), the file's ``bytes`` (with ``name=``),
            ``(name, bytes)``, a binary file object, or a list of any of these, read in the order given.
        name: the ``source`` of ``file_path`` when it is bytes or a file object.
        recursive: also read the subdirectories of a directory.
        glob: which files of a directory to read (default: every PDF and image file by extension).
        mode: ``"page"`` (one Document per page), ``"single"`` (one per file, pages joined by ``page_separator``,
            ``page_offsets`` in metadata) or ``"elements"`` (one per title, paragraph, table, formula, text line...,
            with ``category``; from :func:`qwen_ocr.structure.blocks_from_result`).
        content_format: ``page_content`` as ``"markdown"`` (default), ``"text"`` or the model's ``"raw"`` text
            (:mod:`qwen_ocr.rendering`; the same text as the LlamaIndex reader gives).
        page_separator: what joins pages in single mode (a blank line by default).
        ocr_options: further request options: ``resolution`` (``"standard"``, the default of 2,560 image tokens a
            page; ``"high"`` for small print; ``"max"`` for large pages: see :mod:`qwen_ocr.budget`), or
            ``min_pixels``/``max_pixels``; ``enable_rotate``, ``max_tokens``, ``temperature``.
        client: a :class:`~qwen_ocr.QwenOCR` to use for :meth:`lazy_load` (its settings also make the async
            client of :meth:`alazy_load` when ``aclient`` is not given).
        aclient: an :class:`~qwen_ocr.AsyncQwenOCR` to use for :meth:`alazy_load`.
        **options: the reading options of :func:`qwen_ocr.read_documents`: ``task``, ``schema`` (implies
            ``key_information_extraction``), ``prompt``, ``model`` (also overrides a given client's), ``pages``,
            ``password``, ``text_layer`` (default: ``"auto"`` for plain text, ``"never"`` for tasks and prompts),
            ``on_error`` (``"raise"``, ``"skip"`` or ``"mark"``: a Document with empty text and ``error``,
            ``error_type``, ``error_code`` in its metadata; errors that would fail every page alike are raised in
            every case), ``max_concurrency`` (pages in flight; default the client's), ``show_progress``,
            ``max_download_bytes``, ``download_timeout``, ``allow_private_urls``; and, when no client is given, the
            client settings of :class:`qwen_ocr.settings.ClientSettings` (``api_key``, ``base_url``, ``region``,
            ``workspace``, ``protocol``, ``provider``, ``timeout``, ``max_retries``, ...).

    Metadata (JSON only): ``source``, ``page`` (0-based), ``page_label``, ``total_pages``, ``text_source``
    (``"ocr"`` or ``"text_layer"``), ``task``, ``model``, ``provider``, ``request_id``, ``finish_reason``,
    ``truncated``, ``input_tokens``, ``output_tokens``, ``image_tokens``, ``page_width``/``page_height``; and as
    the task gives them ``lines``, ``fields``, ``tables_html``, ``formulas``. See
    :mod:`langchain_qwen_ocr.document_loaders.documents` for the single and elements modes.

    Raises:
        InvalidArgumentError: an option is wrong or unknown (at construction).

    Example::

        from langchain_qwen_ocr.document_loaders import QwenOCRLoader

        loader = QwenOCRLoader("scans/*.pdf", task="table_parsing", on_error="mark", max_concurrency=8)
        for doc in loader.lazy_load():
            print(doc.metadata["source"], doc.metadata["page"], doc.page_content[:80])

        docs = await QwenOCRLoader("https://example.com/invoice.pdf", mode="single").aload()
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
        ocr_options: Mapping[str, Any] | None = None,
        client: QwenOCR | None = None,
        aclient: AsyncQwenOCR | None = None,
        **options: Any,
    ) -> None:
        check_sources(file_path, argument="file_path")
        self.file_path, self.name, self.recursive, self.glob = file_path, name, recursive, glob
        self.mode, self.content_format, self.page_separator = mode, content_format, page_separator
        self.options, self._holder = configure(
            mode=mode, content_format=content_format, ocr_options=ocr_options, client=client, aclient=aclient, **options
        )

    def __repr__(self) -> str:
        settings = describe(self.mode, self.options, self._holder)
        return f"{type(self).__name__}(file_path={_describe(self.file_path)}, {settings})"

    def _reading(self) -> dict[str, Any]:
        return {"name": self.name, "recursive": self.recursive, "glob": self.glob, **self.options.arguments()}

    def lazy_load(self) -> Iterator[Document]:
        """The Documents, file by file and page by page in order, while later pages (and files) are read."""
        assembler = Assembler(self.mode, self.content_format, self.page_separator, self.options.pages)
        pages = read_documents(self._holder.get_client(), self.file_path, **self._reading())
        try:
            for page in pages:
                yield from assembler.add(page)
        finally:
            pages.close()  # stop the requests still in flight
        yield from assembler.finish()

    async def alazy_load(self) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load`: requests are awaited on the event loop (rendering runs in threads)."""
        assembler = Assembler(self.mode, self.content_format, self.page_separator, self.options.pages)
        pages = aread_documents(self._holder.get_async_client(), self.file_path, **self._reading())
        try:
            async for page in pages:
                for doc in assembler.add(page):
                    yield doc
        finally:
            await pages.aclose()  # cancel the requests still in flight
        for doc in assembler.finish():
            yield doc


def _describe(file_path: object) -> str:
    if isinstance(file_path, (bytes, bytearray, memoryview)):
        return f"<{len(file_path)} bytes>"
    if isinstance(file_path, (str, os.PathLike)):
        text = os.fspath(file_path)
        return repr(display_url(text) if is_url(text) else text)
    if isinstance(file_path, tuple) and len(file_path) == 2 and isinstance(file_path[0], str):
        return f"({file_path[0]!r}, <bytes>)"
    if isinstance(file_path, (list, tuple)):
        shown = ", ".join(_describe(entry) for entry in file_path[:3])
        more = f", ... ({len(file_path)} in all)" if len(file_path) > 3 else ""
        return f"[{shown}{more}]"
    return f"<{type(file_path).__name__}>"
