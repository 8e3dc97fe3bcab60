"""An on-disk cache of readings, so that a re-run pays only for what it has not read yet.

The key is the SHA-256 of the exact request that would be sent, without its credentials: the image bytes as
encoded, the model, the task and every option are all in the request body, so two requests share an entry only
when the service would be asked the very same question. Entries are JSON files written atomically (a temporary
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
import os
import tempfile
import threading
from pathlib import Path

from pydantic import ValidationError

from .errors import InvalidArgumentError
from .results import OCRResult

__all__ = ["OCRCache", "request_key"]

_VERSION = b"qwen-ocr-cache/1"


def request_key(path: str, body: bytes) -> str:
    """The cache key of a request: SHA-256 over a format version, the endpoint path and the body.

    >>> len(request_key("/api/v1/x", b"{}"))
    64
    """
    digest = hashlib.sha256(_VERSION)
    digest.update(b"\0" + path.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


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
            result = OCRResult.model_validate_json(data)
        except FileNotFoundError:
            self._count(hit=False)
            return None
        except (OSError, ValueError, ValidationError):
            with contextlib.suppress(OSError):
                path.unlink()  # damaged: forget it, it will be read again
            self._count(hit=False)
            return None
        self._count(hit=True)
        result.metadata["cache"] = "hit"
        return result

    def put(self, key: str, result: OCRResult) -> None:
        """Store ``result`` under ``key``, atomically. Failures to write are ignored (the cache is an optimisation)."""
        path = self._path(key)
        stored = result.model_copy(update={"metadata": {k: v for k, v in result.metadata.items() if k != "cache"}})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(stored.model_dump_json().encode())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return

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
