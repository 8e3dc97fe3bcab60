"""Page results into LangChain ``Document`` objects: one per page, one per file, or one per element.

The text and the keys are core's (:mod:`qwen_ocr.assembly`, the same as the LlamaIndex reader's); this module only
wraps them into Documents, each with its stable ``id`` (:func:`qwen_ocr.assembly.record_id`:
``"<source>_part_<page>"``, ``"<source>"`` in single mode, ``"<source>_part_<page>_<n>"`` per element,
``"<source>_unreadable"`` for a failed file), so loading a file again gives the same ids and a vector store's
``add_documents(docs, ids=[d.id for d in docs])`` replaces instead of duplicating. A failed page or file, where
errors are marked, gives empty text and ``error``, ``error_type``, ``error_code`` in metadata.

Example::

    from qwen_ocr import QwenOCR, read_document
    from langchain_qwen_ocr.document_loaders.documents import page_document

    with QwenOCR() as client:
        docs = [page_document(page) for page in read_document(client, "scan.pdf", task="table_parsing")]
    docs[0].page_content          # text, with each table as a Markdown table
    docs[0].metadata["page"]      # 0
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from langchain_core.documents import Document

from qwen_ocr.assembly import (
    DEFAULT_PAGE_SEPARATOR,
    Collator,
    JoinedPages,
    element_records,
    error_record,
    record_id,
)
from qwen_ocr.assembly import page_for_offset as page_for_offset
from qwen_ocr.assembly import page_keys as page_metadata
from qwen_ocr.page_metadata import error_metadata as error_metadata
from qwen_ocr.reading import JSONValue, PageResult
from qwen_ocr.rendering import ContentFormat, blocks_to_markdown, render, tables_to_markdown

if TYPE_CHECKING:
    from qwen_ocr.errors import QwenOCRError
    from qwen_ocr.results import OCRResult

__all__ = [
    "DEFAULT_PAGE_SEPARATOR",
    "Assembler",
    "ContentFormat",
    "SingleDocumentBuilder",
    "blocks_to_markdown",
    "element_documents",
    "error_document",
    "error_metadata",
    "page_document",
    "page_for_offset",
    "page_metadata",
    "page_text",
    "tables_to_markdown",
]


def to_document(text: str, metadata: dict[str, JSONValue]) -> Document:
    """A Document of ``text`` and ``metadata``, its ``id`` :func:`qwen_ocr.assembly.record_id` (stable)."""
    return Document(page_content=text, metadata=metadata, id=record_id(metadata))


def page_text(result: OCRResult | None, content_format: ContentFormat = "markdown") -> str:
    """The text of a page for ``page_content``: :func:`qwen_ocr.rendering.render`."""
    return render(result, content_format)


def page_document(
    page: PageResult, source: str | None = None, *, content_format: ContentFormat = "markdown"
) -> Document:
    """One page as a Document (a failed page gives empty text and ``error`` in metadata)."""
    return to_document(
        page_text(page.result, content_format), page_metadata(page, source, content_format=content_format)
    )


def error_document(source: str, error: QwenOCRError, *, page: PageResult | None = None) -> Document:
    """A marked failure (:func:`qwen_ocr.assembly.error_record`): empty text, the error in metadata."""
    return to_document("", error_record(source, error, page=page))


def element_documents(page: PageResult, source: str | None = None) -> list[Document]:
    """One Document per element of a read page (:func:`qwen_ocr.assembly.element_records`)."""
    return [to_document(text, meta) for text, meta in element_records(page, source)]


class SingleDocumentBuilder(JoinedPages):
    """Collects the pages of one file into one Document (single mode; metadata: :class:`qwen_ocr.assembly.JoinedPages`).

    Example::

        builder = SingleDocumentBuilder("scan.pdf")
        for page in read_document(client, "scan.pdf"):
            builder.add(page)
        doc = builder.build()
        page_for_offset(doc.metadata, 1200)      # the page whose text holds character 1200
    """

    def build(self) -> Document:
        """The file's Document."""
        return to_document(self.text, self.metadata())


Assembler = functools.partial(Collator[Document], to_document)
"""``Assembler(mode, content_format, separator, pages)``: a :class:`qwen_ocr.assembly.Collator` of Documents."""
