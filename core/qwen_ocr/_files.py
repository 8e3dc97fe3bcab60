"""Files written whole or not at all: a temporary file beside the target, renamed onto it once complete.

The one place the library writes a file atomically: the cache's entries (:mod:`qwen_ocr.cache`), a batch job's
state and the files it downloads (:mod:`qwen_ocr.batch`), and ``qwen-ocr batch results --out``. A reader never sees
a half-written file; a failure (or a kill) leaves the old file, or none, and at most a temporary file whose name
starts with ``prefix``.

Example::

    atomic_write(Path("jobs/june/job.json"), b"{}")
    with replacing(Path("out.jsonl"), suffix=".jsonl") as handle:
        handle.write(b'{"page": 0}\\n')
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "replacing", "replacing_text"]


@contextlib.contextmanager
def _replacing(path: Path, mode: str, prefix: str, suffix: str, sync: bool) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def replacing(path: Path, *, prefix: str = ".tmp-", suffix: str = "") -> contextlib.AbstractContextManager[IO[bytes]]:
    """A binary file to write ``path`` through: a temporary file in its folder (made if missing), flushed, fsynced
    and renamed onto ``path`` when the block ends; removed, ``path`` untouched, when the block raises."""
    return _replacing(path, "wb", prefix, suffix, True)


def replacing_text(
    path: Path, *, prefix: str = ".tmp-", suffix: str = "", sync: bool = True
) -> contextlib.AbstractContextManager[IO[str]]:
    """:func:`replacing` for UTF-8 text (``sync=False``: renamed without an fsync first)."""
    return _replacing(path, "w", prefix, suffix, sync)


def atomic_write(path: Path, data: bytes, *, suffix: str = "") -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`replacing`)."""
    with replacing(path, suffix=suffix) as handle:
        handle.write(data)
