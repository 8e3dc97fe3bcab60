"""LlamaIndex node parsers for Qwen-OCR pages.

Example::

    from llamaindex_qwen_ocr.node_parsers import QwenOCRNodeParser

    nodes = QwenOCRNodeParser(table_max_rows=20).get_nodes_from_documents(docs)
"""

from __future__ import annotations

from .base import QwenOCRNodeParser, stable_id_func

__all__ = ["QwenOCRNodeParser", "stable_id_func"]
