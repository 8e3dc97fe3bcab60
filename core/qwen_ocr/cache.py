"""An on-disk cache of readings, so that a re-run pays only for what it has not read yet.

The key is the SHA-256 of the exact request that would be sent, without its credentials: the full URL (host, port
and path), the ``X-DashScope-*`` headers (workspace, data inspection), and the body, which holds the image bytes as
encoded, the model, the task and every option; so two requests share an entry only when the same service would be
asked the very same question. Entries are JSON files written atomically (a temporary
file renamed into place), so a job killed at any moment leaves whole entries or none; a damaged entry is ignored
and replaced.

Results served from the cache carry ``metadata["cache"] == "hit"`` (and ``PageResult.metadata()`` then says
``"cache": "hit"``). Streams are not cached.

Example::

    from qwen_ocr import QwenOCR

    client = QwenOCR(cache="~/.cache/qwen-ocr")       # or cache=OCRCache(path)
    client.ocr("page.png")                            # sent, stored
    client.ocr("page.png").metadata["cache"]          # 'hit': nothing sent
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from ._files import atomic_write
from .errors import InvalidArgumentError
from .results import OCRResult

__all__ = ["OCRCache", "request_key"]

logger = logging.getLogger("qwen_ocr")

_VERSION = b"qwen-ocr-cache/2"
"""Part of every key. Version 1 keyed on the path below the base URL, so one host's reading was served to a client
of another; its entries are simply never looked up again (misses)."""


def request_key(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> str:
    """The cache key of a request: SHA-256 over a format version, the full URL, the headers that change the answer
    and the body.

    The URL names the host (and port, and any base path), so a reading from a test server is never served to a
    client of the production service; the body holds the model, the task, every option and the image; of the
    headers, the ``X-DashScope-*`` ones count (workspace, data inspection, OSS resolution), never the key.

    >>> len(request_key("https://dashscope-intl.aliyuncs.com/api/v1/x", b"{}"))
    64
    >>> request_key("http://a/x", b"{}") != request_key("http://b/x", b"{}")
    True
    """
    digest = hashlib.sha256(_VERSION)
    digest.update(b"\0" + url.encode("utf-8", "surrogatepass") + b"\0")
    for name, value in sorted((k.lower(), v) for k, v in (headers or {}).items() if _keyed_header(k)):
        digest.update(name.encode("utf-8", "surrogatepass") + b":" + value.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def _keyed_header(name: str) -> bool:
    return name.lower().startswith("x-dashscope-")


class OCRCache:
    """Readings stored as one JSON file per request under ``directory`` (created when missing).

    Safe to share between threads and processes: entries are written to a temporary file and renamed.

    Attributes:
        hits: lookups answered from disk by this object.
        misses: lookups that found nothing.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidArgumentError(
                f"cannot use {str(self.directory)!r} as the OCR cache directory ({exc.strerror or exc}); "
                "pass a writable directory as cache=.",
                code="InvalidCache",
            ) from None
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OCRCache({str(self.directory)!r}, hits={self.hits}, misses={self.misses})"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> OCRResult | None:
        """The stored reading for ``key`` (marked ``metadata["cache"] = "hit"``), or ``None``."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._count(hit=False)
            return None
        except OSError as exc:  # unreadable (permissions, I/O error): a miss; the entry may be fine for others
            logger.warning("qwen_ocr: cannot read a cache entry (%s); reading the image again.", _describe(exc))
            self._count(hit=False)
            return None
        try:
            result = OCRResult.model_validate_json(data)
        except Exception as exc:  # not JSON, not a reading, nested too deeply...: a miss, never a failed call
            logger.warning("qwen_ocr: a cache entry cannot be decoded (%s); it is dropped.", _describe(exc))
            with contextlib.suppress(OSError):
                path.unlink()  # damaged: forget it, it will be read again
            self._count(hit=False)
            return None
        self._count(hit=True)
        result.metadata["cache"] = "hit"
        return result

    def put(self, key: str, result: OCRResult) -> None:
        """Store ``result`` under ``key``, atomically. A failure to store (a full disk, a reading that cannot be
        serialized) is logged and otherwise ignored: the cache is an optimisation, never a reason to fail a call."""
        path = self._path(key)
        try:
            stored = result.model_copy(update={"metadata": {k: v for k, v in result.metadata.items() if k != "cache"}})
            data = stored.model_dump_json().encode()  # before any file exists: nothing half-written is left
            atomic_write(path, data, suffix=".json")  # ".tmp-*.json" until renamed: see __len__, clear
        except Exception as exc:
            logger.warning("qwen_ocr: cannot store a reading in the cache (%s); the call goes on.", _describe(exc))

    def __len__(self) -> int:
        # Entries only: not the temporary file a job killed mid-write may have left (".tmp-*.json").
        return sum(1 for entry in self.directory.glob("??/*.json") if not entry.name.startswith("."))

    def clear(self) -> None:
        """Remove every entry (and any temporary file a killed job left)."""
        for entry in self.directory.glob("??/*.json"):
            with contextlib.suppress(OSError):
                entry.unlink()

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    text = text if len(text) <= 200 else text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
