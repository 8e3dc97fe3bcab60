"""LangChain integration for Qwen-OCR (ImageReader, QwenOCRLoader, QwenOCRParser, QwenOCRTool)."""

from __future__ import annotations

__all__: list[str] = []
