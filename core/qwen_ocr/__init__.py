"""qwen_ocr: a fast, typed client for Alibaba's Qwen-OCR (``qwen-vl-ocr``).

Example::

    from qwen_ocr import QwenOCR

    client = QwenOCR()                                   # key from DASHSCOPE_API_KEY
    result = client.ocr("receipt.jpg", schema={"Total": "", "Date": ""})
    result.fields                                        # {'Total': '12.50', 'Date': '2025-03-05'}

    from qwen_ocr import read_documents

    for page in read_documents(client, ["scans/", "cover.png"], on_error="mark"):   # many files, one window
        print(page.source, page.label, page.text if page.ok else page.error)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

# Every public name is imported on first use (PEP 562): `import qwen_ocr` loads nothing else, and
# `from qwen_ocr import QwenOCR` loads the client, not PDFium or the document layer (see issue 17).
_LAZY: dict[str, str] = {
    "AsyncQwenOCR": "._async_client",
    "DEFAULT_MAX_RESPONSE_BYTES": ".options",
    "ClientOptions": ".options",
    "RemoteImage": ".sources",
    "BatchJob": ".batch",
    "QwenOCR": "._client",
    "OCRCache": ".cache",
    "CostEstimate": ".cost",
    "estimate_document": ".cost",
    "Document": ".documents",
    "DocumentError": ".documents",
    "EncryptedDocumentError": ".documents",
    "Page": ".documents",
    "PasswordRequiredError": ".documents",
    "WrongPasswordError": ".documents",
    "open_document": ".documents",
    "aread_documents": ".engine",
    "read_documents": ".engine",
    "APIConnectionError": ".errors",
    "APIError": ".errors",
    "APITimeoutError": ".errors",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "BatchOCRError": ".errors",
    "BatchCancelledError": ".errors",
    "BatchError": ".errors",
    "BatchExpiredError": ".errors",
    "BatchJobError": ".errors",
    "BatchLineTooLargeError": ".errors",
    "BatchNotFinishedError": ".errors",
    "BatchUnavailableError": ".errors",
    "BatchValidationError": ".errors",
    "BatchWaitTimeoutError": ".errors",
    "ContentFilteredError": ".errors",
    "InvalidArgumentError": ".errors",
    "InvalidImageError": ".errors",
    "MalformedAPIKeyError": ".errors",
    "MissingAPIKeyError": ".errors",
    "MissingDependencyError": ".errors",
    "NotFoundError": ".errors",
    "PermissionDeniedError": ".errors",
    "QuotaExceededError": ".errors",
    "QwenOCRError": ".errors",
    "RateLimitError": ".errors",
    "ResponseDecodeError": ".errors",
    "ResponseTooLargeError": ".errors",
    "ServerError": ".errors",
    "TableTooLargeError": ".errors",
    "UnsupportedTaskError": ".errors",
    "estimate_tokens": ".imaging",
    "prepare_image": ".imaging",
    "smart_resize": ".imaging",
    "ModelSpec": ".models",
    "model_spec": ".models",
    "register_model": ".models",
    "PageResult": ".reading",
    "aread_document": ".reading",
    "read_document": ".reading",
    "structured_metadata": ".reading",
    "OCRChunk": ".results",
    "OCRResult": ".results",
    "Table": ".results",
    "TableCell": ".results",
    "TextLine": ".results",
    "Usage": ".results",
    "RetryPolicy": ".retry",
    "ClientSettings": ".settings",
    "Task": ".tasks",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from ._async_client import AsyncQwenOCR
    from ._client import QwenOCR
    from .batch import BatchJob
    from .cache import OCRCache
    from .cost import CostEstimate, estimate_document
    from .documents import (
        Document,
        DocumentError,
        EncryptedDocumentError,
        Page,
        PasswordRequiredError,
        WrongPasswordError,
        open_document,
    )
    from .engine import aread_documents, read_documents
    from .errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BatchCancelledError,
        BatchError,
        BatchExpiredError,
        BatchJobError,
        BatchLineTooLargeError,
        BatchNotFinishedError,
        BatchOCRError,
        BatchUnavailableError,
        BatchValidationError,
        BatchWaitTimeoutError,
        ContentFilteredError,
        InvalidArgumentError,
        InvalidImageError,
        MalformedAPIKeyError,
        MissingAPIKeyError,
        MissingDependencyError,
        NotFoundError,
        PermissionDeniedError,
        QuotaExceededError,
        QwenOCRError,
        RateLimitError,
        ResponseDecodeError,
        ResponseTooLargeError,
        ServerError,
        TableTooLargeError,
        UnsupportedTaskError,
    )
    from .imaging import estimate_tokens, prepare_image, smart_resize
    from .models import ModelSpec, model_spec, register_model
    from .options import DEFAULT_MAX_RESPONSE_BYTES, ClientOptions
    from .reading import PageResult, aread_document, read_document, structured_metadata
    from .results import OCRChunk, OCRResult, Table, TableCell, TextLine, Usage
    from .retry import RetryPolicy
    from .settings import ClientSettings
    from .sources import RemoteImage
    from .tasks import Task


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncQwenOCR",
    "AuthenticationError",
    "BadRequestError",
    "BatchCancelledError",
    "BatchError",
    "BatchExpiredError",
    "BatchJob",
    "BatchJobError",
    "BatchLineTooLargeError",
    "BatchNotFinishedError",
    "BatchOCRError",
    "BatchUnavailableError",
    "BatchValidationError",
    "BatchWaitTimeoutError",
    "ClientOptions",
    "ClientSettings",
    "ContentFilteredError",
    "CostEstimate",
    "Document",
    "DocumentError",
    "EncryptedDocumentError",
    "InvalidArgumentError",
    "InvalidImageError",
    "MalformedAPIKeyError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "ModelSpec",
    "NotFoundError",
    "OCRCache",
    "OCRChunk",
    "OCRResult",
    "Page",
    "PageResult",
    "PasswordRequiredError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "QwenOCR",
    "QwenOCRError",
    "RateLimitError",
    "RemoteImage",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Table",
    "TableCell",
    "TableTooLargeError",
    "Task",
    "TextLine",
    "UnsupportedTaskError",
    "Usage",
    "WrongPasswordError",
    "__version__",
    "aread_document",
    "aread_documents",
    "estimate_document",
    "estimate_tokens",
    "model_spec",
    "open_document",
    "prepare_image",
    "read_document",
    "read_documents",
    "register_model",
    "smart_resize",
    "structured_metadata",
]
