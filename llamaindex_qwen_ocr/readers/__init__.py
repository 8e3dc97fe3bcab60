"""LlamaIndex readers backed by Qwen-OCR.

Example::

    from llamaindex_qwen_ocr.readers import QwenOCRReader

    docs = QwenOCRReader(task="table_parsing").load_data("report.pdf")
    docs = QwenOCRReader.from_batch("jobs/june").load_data()          # a finished Batch API job's pages
"""

from __future__ import annotations

from .base import QwenOCRReader
from .batch import QwenOCRBatchReader

__all__ = ["QwenOCRBatchReader", "QwenOCRReader"]
