"""``QwenOCRLoader``: scans, PDFs and images into LangChain Documents, page by page, with Qwen-OCR."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from ._pipeline import Downloads, Mode, OnError, Progress, Reader, ReadSettings, build_holder
from .documents import DEFAULT_PAGE_SEPARATOR, ContentFormat
from .sources import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    Sources,
    check_sources,
    display_url,
    expand_sources,
    is_url,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

    from qwen_ocr import AsyncQwenOCR, QwenOCR
    from qwen_ocr.documents import PageSpec, TextLayerMode
    from qwen_ocr.tasks import Task

__all__ = ["QwenOCRLoader"]


class QwenOCRLoader(BaseLoader):
    """Load PDFs, multi-page TIFFs and images as Documents read by Qwen-OCR: one per page by default.

    Pages come back in order while later pages are already being rendered and read: ``max_concurrency`` pages
    in flight, in one window across files, so that the next files are read while a file's last pages are (a
    directory of single images goes as fast as one long PDF; each file is opened once beforehand to count its
    pages). Each page is retried on its own when the service throttles or fails, and a page that still fails is
    raised, skipped or marked (``on_error``) without losing the others. Memory stays flat on large files: a page
    is rendered only when its turn comes and nothing of it is kept but its text.

    Stopping early (``break``, closing the iterator, an exception or Ctrl-C in the loop, ``aclose()`` or
    cancelling :meth:`alazy_load`) stops at once: no further page is started, no failed request is retried, and the
    requests already in flight are abandoned (async: cancelled; sync: not waited for, since a sync request cannot
    be interrupted; it ends on its own at its answer or the client's ``timeout``, and its result is dropped).

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
        task: the Qwen-OCR task (``"text_recognition"``, ``"advanced_recognition"`` for line boxes,
            ``"key_information_extraction"`` for fields, ``"table_parsing"``, ``"document_parsing"``, ...);
            plain text by default.
        schema: the fields to extract (implies ``key_information_extraction``).
        prompt: a custom instruction instead of a task.
        pages: which pages of each file, 1-based: ``"1-3,7"``, ``5``, ``[1, 3]``; all by default.
        password: the password of encrypted PDFs.
        text_layer: ``"auto"`` uses a PDF page's own text where it is good (no request), ``"never"`` OCRs every
            page, ``"only"`` never sends a page. Default: ``"auto"`` for plain-text reading, ``"never"`` for the
            structured tasks and custom prompts (a text layer has no boxes, fields or tables).
        on_error: what a page or file that cannot be read gives: ``"raise"`` (its typed
            :class:`~qwen_ocr.QwenOCRError`; pages before it were already yielded), ``"skip"`` (nothing; a warning
            is logged) or ``"mark"`` (a Document with empty text and ``error``, ``error_type``, ``error_code`` in
            its metadata, so nothing is dropped silently). Errors that would fail every page alike (a missing or
            wrong key, no access to the model, an exhausted quota, a bad option) are raised in every case.
        show_progress: a tqdm progress bar of pages (needs ``tqdm``).
        content_format: ``page_content`` as ``"markdown"`` (default), ``"text"`` or the model's ``"raw"`` text
            (:mod:`qwen_ocr.rendering`; the same text as the LlamaIndex reader gives).
        page_separator: what joins pages in single mode (a blank line by default).
        ocr_options: further request options: ``resolution`` (``"standard"``, the default of 2,560 image tokens a
            page; ``"high"`` for small print; ``"max"`` for large pages: see :mod:`qwen_ocr.budget`), or
            ``min_pixels``/``max_pixels``; ``enable_rotate``, ``max_tokens``, ``temperature``.
        max_download_bytes: the largest file accepted from a URL (100 MiB).
        download_timeout: seconds allowed for each network step of a download.
        allow_private_urls: also download URLs whose host is a private, loopback, link-local or otherwise
            non-public address (an intranet server, a test server). Refused by default, at every redirect too, so
            that a URL cannot make this process reach services inside your network (SSRF): see
            :mod:`qwen_ocr.fetch`.
        client: a :class:`~qwen_ocr.QwenOCR` to use for :meth:`lazy_load` (its settings also make the async
            client of :meth:`alazy_load` when ``aclient`` is not given).
        aclient: an :class:`~qwen_ocr.AsyncQwenOCR` to use for :meth:`alazy_load`.
        api_key, base_url, region, workspace, model, protocol, provider, timeout, max_retries: the client
            settings, as for :class:`~qwen_ocr.QwenOCR`, when no client is given (``model`` also overrides a given
            client's model).
        max_concurrency: pages in flight at once (default: the client's, 8).

    Metadata (JSON only): ``source``, ``page`` (0-based), ``page_label``, ``total_pages``, ``text_source``
    (``"ocr"`` or ``"text_layer"``), ``task``, ``model``, ``provider``, ``request_id``, ``finish_reason``,
    ``truncated``, ``input_tokens``, ``output_tokens``, ``image_tokens``, ``page_width``/``page_height`` (the
    frame of the boxes: PDF points for a PDF page, pixels for an image); and as the task gives them ``lines``
    (``[{"text", "bbox", "location"}]``), ``fields``, ``tables_html``, ``formulas``. See
    :mod:`langchain_qwen_ocr.document_loaders.documents` for the single and elements modes.

    Raises:
        InvalidArgumentError: an option is wrong (at construction).

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
        task: Task | str | None = None,
        schema: Mapping[str, Any] | str | type | None = None,
        prompt: str | None = None,
        pages: PageSpec = None,
        password: str | None = None,
        text_layer: TextLayerMode | None = None,
        on_error: OnError = "raise",
        show_progress: bool = False,
        content_format: ContentFormat = "markdown",
        page_separator: str = DEFAULT_PAGE_SEPARATOR,
        ocr_options: Mapping[str, Any] | None = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        allow_private_urls: bool = False,
        client: QwenOCR | None = None,
        aclient: AsyncQwenOCR | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str | None = None,
        workspace: str | None = None,
        model: str | None = None,
        protocol: str | None = None,
        provider: str = "auto",
        timeout: float | None = 30.0,
        max_retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        check_sources(file_path)
        self.file_path = file_path
        self.name = name
        self.recursive = recursive
        self.glob = glob
        self.settings = ReadSettings.build(
            mode=mode,
            on_error=on_error,
            task=task,
            schema=schema,
            prompt=prompt,
            model=model,
            pages=pages,
            password=password,
            text_layer=text_layer,
            max_concurrency=max_concurrency,
            content_format=content_format,
            page_separator=page_separator,
            show_progress=show_progress,
            ocr_options=ocr_options,
            max_download_bytes=max_download_bytes,
            download_timeout=download_timeout,
            allow_private_urls=allow_private_urls,
        )
        self._holder = build_holder(
            client=client,
            aclient=aclient,
            api_key=api_key,
            base_url=base_url,
            region=region,
            workspace=workspace,
            model=model,
            protocol=protocol,
            provider=provider,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
        )
        self._reader = Reader(self._holder, self.settings)

    def __repr__(self) -> str:
        holder = self._holder
        provider = holder.client.provider if holder.client is not None else holder.provider
        return (
            f"{type(self).__name__}(file_path={_describe(self.file_path)}, {self.settings.describe()}, "
            f"model={self.settings.options.get('model') or holder.effective_model!r}, provider={provider!r})"
        )

    def lazy_load(self) -> Iterator[Document]:
        """The Documents, file by file and page by page in order, while later pages (and files) are read."""
        client = self._holder.get_client()
        progress = Progress(self.settings.show_progress, self.settings.pages)
        downloads = Downloads(self.settings.download_timeout)
        items = expand_sources(self.file_path, name=self.name, recursive=self.recursive, glob=self.glob)
        try:
            yield from self._reader.read_many(items, client=client, progress=progress, downloads=downloads)
        finally:
            downloads.close()
            progress.close()

    async def alazy_load(self) -> AsyncIterator[Document]:
        """The async twin of :meth:`lazy_load`: requests are awaited on the event loop (rendering runs in threads)."""
        client = self._holder.get_async_client()
        progress = Progress(self.settings.show_progress, self.settings.pages)
        downloads = Downloads(self.settings.download_timeout)
        try:
            items = await asyncio.to_thread(
                lambda: list(expand_sources(self.file_path, name=self.name, recursive=self.recursive, glob=self.glob))
            )
            async for doc in self._reader.aread_many(items, client=client, progress=progress, downloads=downloads):
                yield doc
        finally:
            await downloads.aclose()
            progress.close()


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
