"""How a Ray reading is cut into tasks: the files listed on the driver, their pages counted, then grouped and sliced
(no Ray here).

Each task (a :class:`Unit`) is either one slice of a long document (a run of its selected pages, so that one large
PDF spreads over every worker) or a few whole small files (single images, short PDFs), about ``pages_per_task``
pages either way. Pages are counted cheaply: a PDF or TIFF is opened (PDFium parses no page), any other image is one
page without being opened; a URL is one task of its own (the worker downloads it), and a file that cannot be
opened here is one task too (its worker reports the same error as the local engine would, in its row).

Example::

    units, in_memory = plan(expand_sources("scans/"), pages=None, password=None, pages_per_task=16)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import QwenOCRError

if TYPE_CHECKING:
    from ..documents import PageSpec
    from ..sources import SourceItem

__all__ = ["Part", "Unit", "default_pages_per_task", "plan"]

_HEAD = 1024
_TIFF = (b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class Part:
    """A file of a task.

    Attributes:
        item: the file (a path, a URL, a ``oss://`` image, or an entry that failed to expand); without its bytes
            when ``data`` is set.
        data: the index of its bytes in the reading's in-memory files (bytes given, file objects), which travel
            through Ray's object store once, however many slices the file is cut into.
    """

    item: SourceItem
    data: int | None = None


@dataclass(frozen=True)
class Unit:
    """One task: files read together with one ``pages`` selection.

    Attributes:
        parts: the files.
        pages: the user's selection (whole files), or for a slice its 1-based page numbers.
        weight: the pages it holds (an estimate for files not opened).
        slice: whether ``pages`` is a slice of one file.
    """

    parts: tuple[Part, ...]
    pages: PageSpec
    weight: int
    slice: bool = False


def default_pages_per_task(total_pages: int, workers: int, window: int) -> int:
    """About two tasks per worker, each at most four windows of pages (a task's pages run ``window`` at a time,
    so a task is a few windows long) and at least one page.

    >>> default_pages_per_task(200, 2, 8), default_pages_per_task(40, 4, 8), default_pages_per_task(3, 4, 8)
    (32, 5, 1)
    """
    return max(1, min(4 * window, math.ceil(total_pages / max(1, 2 * workers))))


def plan(
    items: Iterable[SourceItem],
    *,
    pages: PageSpec,
    password: str | None,
    pages_per_task: int | None,
    workers: int = 1,
    window: int = 8,
) -> tuple[list[Unit], list[bytes]]:
    """The tasks of a reading, in the order of the files and pages, and the bytes of its in-memory files.

    Args:
        items: the files (:func:`qwen_ocr.sources.expand_sources`).
        pages: the user's page selection (1-based spec), applied to every file.
        password: for encrypted PDFs (to count their pages).
        pages_per_task: pages per task; ``None``: :func:`default_pages_per_task`.
        workers: the workers that will read (for the default).
        window: pages one worker keeps in flight (for the default).
    """
    in_memory: list[bytes] = []
    counted: list[tuple[Part, tuple[int, ...] | None]] = []
    for item in items:
        part, data = _part(item, in_memory)
        counted.append((part, _selected(item, data, pages, password)))
    total = sum(1 if selected is None else len(selected) for _, selected in counted)
    size = pages_per_task or default_pages_per_task(total, workers, window)
    return list(_units(counted, pages, size)), in_memory


def _part(item: SourceItem, in_memory: list[bytes]) -> tuple[Part, bytes | None]:
    """The item as a task's part: its bytes (given, or read from its file object) set aside, sent by reference."""
    data = item.data
    if item.fileobj is not None and item.error is None:
        try:
            read: Any = item.fileobj.read()
        except OSError as exc:
            return Part(replace(item, fileobj=None, error=_unreadable(item.label, exc))), None
        data = bytes(read) if isinstance(read, (bytes, bytearray, memoryview)) else None
        if data is None:  # a text-mode file: the worker reports it as the local engine does
            return Part(item), None
    if data is None:
        return Part(item), None
    in_memory.append(data)
    return Part(replace(item, data=None, fileobj=None), len(in_memory) - 1), data


def _unreadable(label: str, exc: OSError) -> QwenOCRError:
    from ..documents import DocumentReadError

    return DocumentReadError(f"cannot read {label}: {exc.strerror or exc}.", code="ReadError")


def _selected(item: SourceItem, data: bytes | None, pages: PageSpec, password: str | None) -> tuple[int, ...] | None:
    """The selected 0-based page indices of a PDF or TIFF; ``None`` for anything else (one page, a URL, a file that
    cannot be opened: read whole by one worker, which reports any error)."""
    if item.error is not None or item.remote is not None or item.url is not None:
        return None
    head = data[:_HEAD] if data is not None else _head(item)
    if head is None or not (b"%PDF-" in head or head[:4] in _TIFF):
        return None
    from ..documents import open_document
    from ..sources import _named

    source = _named(data, item.label) if data is not None else str(item.path)
    try:
        with open_document(source, password=password, pages=pages) as doc:
            return tuple(doc.selected)
    except QwenOCRError:
        return None


def _head(item: SourceItem) -> bytes | None:
    if item.path is None:
        return None
    try:
        with open(os.fspath(item.path), "rb") as handle:
            return handle.read(_HEAD)
    except OSError:
        return None


def _units(counted: list[tuple[Part, tuple[int, ...] | None]], pages: PageSpec, size: int) -> Iterator[Unit]:
    group: list[Part] = []
    weight = 0
    for part, selected in counted:
        count = 1 if selected is None else len(selected)
        if selected is not None and count > size:
            if group:
                yield Unit(tuple(group), pages, weight)
                group, weight = [], 0
            for start in range(0, count, size):
                numbers = [index + 1 for index in selected[start : start + size]]
                yield Unit((part,), numbers, len(numbers), slice=True)
            continue
        group.append(part)
        weight += count
        if weight >= size:
            yield Unit(tuple(group), pages, weight)
            group, weight = [], 0
    if group:
        yield Unit(tuple(group), pages, weight)
