"""Wire protocols: pure request builders and reply parsers, shared by the sync and async clients."""

from __future__ import annotations

from . import compatible, native
from .base import HTTPRequest, OCRCall, StreamAssembler

__all__ = ["HTTPRequest", "OCRCall", "StreamAssembler", "compatible", "native"]
