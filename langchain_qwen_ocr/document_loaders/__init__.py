"""LangChain document loading with Qwen-OCR: :class:`QwenOCRLoader` for files, :class:`QwenOCRParser` for blobs.

Example::

    from langchain_qwen_ocr.document_loaders import QwenOCRLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = QwenOCRLoader("scans/", recursive=True, on_error="mark").load()   # one Document per page
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000).split_documents(docs)
    chunks[0].metadata["source"], chunks[0].metadata["page"]                # the file and 0-based page
    docs = QwenOCRLoader.from_batch("jobs/june").load()                     # a finished Batch API job's pages
"""

from __future__ import annotations

from qwen_ocr.sources import SUPPORTED_EXTENSIONS, Source, Sources

from .batch import QwenOCRBatchLoader
from .documents import DEFAULT_PAGE_SEPARATOR, ContentFormat, page_for_offset
from .loader import Mode, OnError, QwenOCRLoader
from .parser import NPY_MIME_TYPE, QwenOCRParser

__all__ = [
    "DEFAULT_PAGE_SEPARATOR",
    "NPY_MIME_TYPE",
    "SUPPORTED_EXTENSIONS",
    "ContentFormat",
    "Mode",
    "OnError",
    "QwenOCRBatchLoader",
    "QwenOCRLoader",
    "QwenOCRParser",
    "Source",
    "Sources",
    "page_for_offset",
]
