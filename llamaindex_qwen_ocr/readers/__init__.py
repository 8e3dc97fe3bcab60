"""LlamaIndex readers backed by Qwen-OCR.

Example::

    from llamaindex_qwen_ocr.readers import QwenOCRReader

    docs = QwenOCRReader(task="table_parsing").load_data("report.pdf")
"""

from __future__ import annotations

from .base import QwenOCRReader

__all__ = ["QwenOCRReader"]
