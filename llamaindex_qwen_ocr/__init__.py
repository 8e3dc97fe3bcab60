"""LlamaIndex integration for Qwen-OCR: a reader of PDFs and images, and a node parser of its structured pages.

Example::

    from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader

    docs = QwenOCRReader(task="document_parsing").load_data("paper.pdf")     # one Document per page
    nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)               # sections, text, tables, formulas
"""

from __future__ import annotations

from .node_parsers import QwenOCRNodeParser
from .readers import QwenOCRBatchReader, QwenOCRReader

__all__ = ["QwenOCRBatchReader", "QwenOCRNodeParser", "QwenOCRReader"]
