"""LlamaIndex integration for Qwen-OCR (QwenOCRReader, QwenOCRNodeParser)."""

from __future__ import annotations

__all__: list[str] = []
