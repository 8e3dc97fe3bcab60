"""Tests of the LangChain integration (``langchain_qwen_ocr``)."""
