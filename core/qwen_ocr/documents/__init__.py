"""Documents in: PDFs, multi-page TIFFs and single images, opened and read page by page.

Open anything with :func:`open_document`; iterate the :class:`Document` for :class:`Page` objects; render a page
(:meth:`Page.render`), make it ready to send (:meth:`Page.prepare`), or read its own text layer
(:meth:`Page.text_layer`, :attr:`Page.has_good_text_layer`). Every failure is a typed
:class:`~qwen_ocr.errors.QwenOCRError` (see :mod:`qwen_ocr.documents.errors`).

Example::

    from qwen_ocr.documents import open_document

    with open_document("scan.pdf", pages="1-3,7", password=None) as doc:
        for page in doc:
            if page.needs_ocr("auto"):
                prepared = page.prepare()       # data: URL at the model's pixel budget
            else:
                text = page.text_layer()        # born-digital text, no OCR needed
"""

from __future__ import annotations

from ._analysis import PDFIUM_LOCK, PageAnalysis
from ._image import MAX_IMAGE_PAGES
from .document import SUPPORTED_DOCUMENT_FORMATS, Document, DocumentSource, Page, open_document
from .errors import (
    CorruptDocumentError,
    DocumentClosedError,
    DocumentError,
    DocumentReadError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoPagesError,
    PageRenderError,
    PageSelectionError,
    PageSizeError,
    PasswordRequiredError,
    TooManyPagesError,
    UnsupportedDocumentError,
    WrongPasswordError,
)
from .render import DEFAULT_DPI, pdf_render_size
from .selection import PageSpec, parse_pages
from .textlayer import (
    TextLayerMode,
    TextLayerVerdict,
    check_text_layer_mode,
    judge_text_layer,
    text_layer_quality,
)

__all__ = [
    "DEFAULT_DPI",
    "MAX_IMAGE_PAGES",
    "PDFIUM_LOCK",
    "SUPPORTED_DOCUMENT_FORMATS",
    "CorruptDocumentError",
    "Document",
    "DocumentClosedError",
    "DocumentError",
    "DocumentReadError",
    "DocumentSource",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "NoPagesError",
    "Page",
    "PageAnalysis",
    "PageRenderError",
    "PageSelectionError",
    "PageSizeError",
    "PageSpec",
    "PasswordRequiredError",
    "TextLayerMode",
    "TextLayerVerdict",
    "TooManyPagesError",
    "UnsupportedDocumentError",
    "WrongPasswordError",
    "check_text_layer_mode",
    "judge_text_layer",
    "open_document",
    "parse_pages",
    "pdf_render_size",
    "text_layer_quality",
]
