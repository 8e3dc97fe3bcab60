"""LangChain tools: ``QwenOCRTool`` lets an agent read an image on demand.

Example::

    from langchain_qwen_ocr.tools import QwenOCRTool

    QwenOCRTool().invoke({"image": "https://example.com/receipt.jpg"})
"""

from __future__ import annotations

from .ocr import QwenOCRInput, QwenOCRTool, conversation_image, format_tool_output

__all__ = ["QwenOCRInput", "QwenOCRTool", "conversation_image", "format_tool_output"]
