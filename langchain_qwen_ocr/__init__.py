"""LangChain integration for Qwen-OCR: images in chats become text, scans and PDFs become Documents.

Example::

    from langchain_qwen_ocr import ImageReader, QwenOCRLoader, QwenOCRTool

    chain = ImageReader() | llm                                  # any text model can now read the images
    docs = QwenOCRLoader("scans/*.pdf").lazy_load()              # one Document per page, with its page number
    tool = QwenOCRTool()                                          # an agent reads an image on demand

Subpackages, one per component kind: :mod:`.image_reader`, :mod:`.document_loaders`, :mod:`.tools`.
"""

from __future__ import annotations

from .document_loaders import QwenOCRLoader, QwenOCRParser
from .image_reader import ImageReader
from .tools import QwenOCRTool

__all__ = ["ImageReader", "QwenOCRLoader", "QwenOCRParser", "QwenOCRTool"]
