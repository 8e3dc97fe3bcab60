"""qwen_ocr: a fast, typed client for Alibaba's Qwen-OCR (``qwen-vl-ocr``).

Example::

    from qwen_ocr import QwenOCR

    client = QwenOCR()                                   # key from DASHSCOPE_API_KEY
    result = client.ocr("receipt.jpg", schema={"Total": "", "Date": ""})
    result.fields                                        # {'Total': '12.50', 'Date': '2025-03-05'}
"""

from __future__ import annotations

from ._async_client import AsyncQwenOCR
from ._client import QwenOCR
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchOCRError,
    ContentFilteredError,
    InvalidArgumentError,
    InvalidImageError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCRError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    UnsupportedTaskError,
)
from .imaging import estimate_tokens, prepare_image, smart_resize
from .models import ModelSpec, model_spec, register_model
from .results import OCRChunk, OCRResult, Table, TableCell, TextLine, Usage
from .retry import RetryPolicy
from .tasks import Task

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncQwenOCR",
    "AuthenticationError",
    "BadRequestError",
    "BatchOCRError",
    "ContentFilteredError",
    "InvalidArgumentError",
    "InvalidImageError",
    "MissingAPIKeyError",
    "ModelSpec",
    "NotFoundError",
    "OCRChunk",
    "OCRResult",
    "PermissionDeniedError",
    "QuotaExceededError",
    "QwenOCR",
    "QwenOCRError",
    "RateLimitError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "Table",
    "TableCell",
    "Task",
    "TextLine",
    "UnsupportedTaskError",
    "Usage",
    "__version__",
    "estimate_tokens",
    "model_spec",
    "prepare_image",
    "register_model",
    "smart_resize",
]
