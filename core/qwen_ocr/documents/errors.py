"""Errors of the documents layer: every one is a :class:`~qwen_ocr.errors.QwenOCRError`.

A document that cannot be used raises a :class:`DocumentError`. It subclasses
:class:`~qwen_ocr.errors.InvalidImageError`, which is what a single image that cannot be used raises, so one
``except InvalidImageError`` handles "this input cannot be OCR'd" whether the input was an image or a PDF; catch the
subclasses below to tell the cases apart, or read ``code``. A bad ``pages=`` selection is an argument error
(:class:`PageSelectionError`, an :class:`~qwen_ocr.errors.InvalidArgumentError`).

=============================  ======================  ===========================================================
exception                      code                    when
=============================  ======================  ===========================================================
DocumentReadError              FileNotFound,           the path is missing, a directory, unreadable, not a
                               IsADirectory,           regular file (a FIFO, a device), or can name no file
                               PermissionDenied,       at all (empty, a NUL byte)
                               ReadError,
                               NotAFile,
                               InvalidPath
EmptyDocumentError             EmptyFile               the file has 0 bytes
UnsupportedDocumentError       UnsupportedFormat       not a PDF or a supported image (the message says what it is)
CorruptDocumentError           CorruptDocument         a PDF or image whose structure cannot be read
NoPagesError                   NoPages                 a well-formed PDF with zero pages
TooManyPagesError              TooManyPages            an image file (a TIFF) of more than ``MAX_IMAGE_PAGES``
                                                       pages
PasswordRequiredError          PasswordRequired        encrypted, and no ``password=`` was given
WrongPasswordError             WrongPassword           encrypted, and the ``password=`` given is wrong
EncryptedDocumentError         UnsupportedEncryption   encrypted with a security handler PDFium cannot open
PageRenderError                CorruptPage             one page cannot be loaded or decoded (raised for that page
                                                       only, when it is rendered; pages before it still work)
PageSizeError                  BadAspectRatio,         a page that can never be sent: aspect ratio over 200:1,
                               ImageTooSmall,          an image side under 10 px, an image over the
                               ImageTooLarge,          decoded-pixel limit, a page of zero area
                               EmptyPage
DocumentClosedError            DocumentClosed          a page was used after its document was closed
PageSelectionError             InvalidPages            ``pages=`` is malformed or out of range
=============================  ======================  ===========================================================

Example::

    from qwen_ocr.documents import open_document, PasswordRequiredError, WrongPasswordError

    try:
        doc = open_document("secret.pdf")
    except PasswordRequiredError:
        doc = open_document("secret.pdf", password=input("password: "))
"""

from __future__ import annotations

from ..errors import InvalidArgumentError, InvalidImageError

__all__ = [
    "CorruptDocumentError",
    "DocumentClosedError",
    "DocumentError",
    "DocumentReadError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "NoPagesError",
    "PageRenderError",
    "PageSelectionError",
    "PageSizeError",
    "PasswordRequiredError",
    "TooManyPagesError",
    "UnsupportedDocumentError",
    "WrongPasswordError",
]


class DocumentError(InvalidImageError):
    """A document (PDF, multi-page TIFF, or image opened as a document) cannot be used. Nothing was sent."""

    default_code = "DocumentError"


class DocumentReadError(DocumentError):
    """The file cannot be read: no such file, a directory, no permission, an I/O error."""

    default_code = "ReadError"


class EmptyDocumentError(DocumentError):
    """The file is empty (0 bytes)."""

    default_code = "EmptyFile"


class UnsupportedDocumentError(DocumentError):
    """The input is neither a PDF nor an image format we read; the message says what it looks like."""

    default_code = "UnsupportedFormat"


class CorruptDocumentError(DocumentError):
    """The file looks like a PDF or an image but its structure cannot be read (corrupt or truncated)."""

    default_code = "CorruptDocument"


class NoPagesError(DocumentError):
    """The document is well formed but has no pages."""

    default_code = "NoPages"


class TooManyPagesError(DocumentError):
    """An image file has more pages than are read from one file (:data:`~qwen_ocr.documents.MAX_IMAGE_PAGES`);
    split it first. Refused when it is opened, after counting at most one page past the limit."""

    default_code = "TooManyPages"


class EncryptedDocumentError(DocumentError):
    """The PDF is encrypted and cannot be opened (base class of the two password errors)."""

    default_code = "UnsupportedEncryption"


class PasswordRequiredError(EncryptedDocumentError):
    """The PDF is encrypted and no password was given: pass ``password=``."""

    default_code = "PasswordRequired"


class WrongPasswordError(EncryptedDocumentError):
    """The PDF is encrypted and the password given opens neither as user nor as owner password."""

    default_code = "WrongPassword"


class PageRenderError(DocumentError):
    """One page cannot be loaded or decoded. Raised when that page is rendered; the other pages still work.

    Attributes:
        page_index: the 0-based index of the page in its file.
    """

    default_code = "CorruptPage"

    def __init__(self, message: str, *, page_index: int | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.page_index = page_index


class PageSizeError(PageRenderError):
    """A page that can never be sent: an aspect ratio over 200:1, too small an image, a decompression bomb."""

    default_code = "BadAspectRatio"


class DocumentClosedError(DocumentError):
    """A page of a closed document was used. Keep the document open (``with open_document(...)``) while you work."""

    default_code = "DocumentClosed"


class PageSelectionError(InvalidArgumentError):
    """``pages=`` is malformed or names a page the document does not have; the message gives the page count."""

    default_code = "InvalidPages"
