"""``QwenOCRParser``: the loader's reading for LangChain ``Blob`` objects (images, PDFs, and image arrays)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseBlobParser
from langchain_core.documents import Document
from langchain_core.documents.base import Blob

from qwen_ocr.assembly import Collator, configure, describe, record_id
from qwen_ocr.engine import read_documents
from qwen_ocr.npy import NPY_MIME_TYPE, image_from_npy, is_npy, npy_source
from qwen_ocr.sources import SourceItem

from .documents import DEFAULT_PAGE_SEPARATOR, ContentFormat
from .loader import Mode

if TYPE_CHECKING:
    from qwen_ocr import AsyncQwenOCR, QwenOCR

__all__ = ["NPY_MIME_TYPE", "QwenOCRParser", "image_from_npy"]


class QwenOCRParser(BaseBlobParser):
    """Parse image and PDF ``Blob`` objects with Qwen-OCR, exactly as :class:`QwenOCRLoader` reads files.

    The blob is recognised by its bytes (PDF, PNG, JPEG, TIFF, ...), or as a NumPy image array
    (:mod:`qwen_ocr.npy`) by its ``application/x-npy`` mimetype or ``.npy`` magic. An array gives exactly one
    Document whatever the mode, since LangChain's PDF parsers read only the first Document of their
    ``images_parser`` (a failure under ``on_error="skip"`` gives an empty, marked one). A path-backed blob is read
    from disk lazily. Metadata: the blob's, then the loader's (``source`` is ``blob.source``). The arguments are the
    loader's (:class:`~langchain_qwen_ocr.document_loaders.QwenOCRLoader`) without the ones about finding files.

    Example::

        from langchain_core.documents.base import Blob
        from langchain_qwen_ocr.document_loaders import QwenOCRParser

        docs = QwenOCRParser(task="table_parsing").parse(Blob.from_path("scan.pdf"))
        # OCR for the pictures inside PDFs (langchain-community):
        # PyPDFium2Loader("report.pdf", extract_images=True, images_parser=QwenOCRParser())
    """

    def __init__(
        self,
        *,
        mode: Mode = "page",
        content_format: ContentFormat = "markdown",
        page_separator: str = DEFAULT_PAGE_SEPARATOR,
        include_lines: bool = False,
        ocr_options: Mapping[str, Any] | None = None,
        client: QwenOCR | None = None,
        aclient: AsyncQwenOCR | None = None,
        **options: Any,
    ) -> None:
        self.mode, self.content_format, self.page_separator = mode, content_format, page_separator
        self.include_lines = include_lines
        self.options, self._holder = configure(
            mode=mode, content_format=content_format, ocr_options=ocr_options, client=client, aclient=aclient, **options
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.mode, self.options, self._holder)})"

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """The Documents of one blob, pages in order while later pages are read."""
        options, mode = self.options, self.mode
        if is_npy(blob.data, mimetype=blob.mimetype, path=blob.path):
            item = npy_source(str(blob.source or "<image array>"), blob.as_bytes())
            # Exactly one Document: the PDF parsers take next(lazy_parse(blob)).
            options = replace(options, on_error="mark" if options.on_error == "skip" else options.on_error)
            mode = "page"
        elif blob.data is None and blob.path is not None:
            item = SourceItem(label=str(blob.source or "<blob>"), path=Path(os.fspath(blob.path)))
        else:
            item = SourceItem(label=str(blob.source or "<blob>"), data=blob.as_bytes())

        def make(text: str, metadata: dict[str, Any]) -> Document:
            return Document(page_content=text, metadata={**blob.metadata, **metadata}, id=record_id(metadata))

        collator = Collator(make, mode, self.content_format, self.page_separator, options.pages, self.include_lines)
        yield from collator.collect(read_documents(self._holder.get_client(), [item], **options.arguments()))
