"""Page selection: ``pages="1-3,7"`` and friends, read as people say them (1-based) (pure).

Accepted forms, all naming pages by their 1-based number:

* ``None``: every page;
* an ``int``: that one page (``7``);
* a string: comma-separated numbers and ranges, ``"1-3,7"``, ``"5-"`` (5 to the end), ``"-3"`` (1 to 3),
  ``"last"`` or ``"5-last"``; spaces are ignored; ``–`` (en dash) works as ``-``;
* a list or tuple of ints (``[1, 3, 5]``), or a ``range`` of page numbers (``range(1, 11)`` = pages 1 to 10).

The result is a tuple of 0-based indices in the order given, duplicates dropped. Anything malformed or out of
range raises :class:`~qwen_ocr.documents.errors.PageSelectionError` naming the document's page count.

Example::

    >>> parse_pages("1-3,7", 10)
    (0, 1, 2, 6)
    >>> parse_pages(range(9, 11), 10)
    (8, 9)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from .errors import PageSelectionError

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ["PageSpec", "parse_pages"]

PageSpec: TypeAlias = Union[int, str, range, "Iterable[int]", None]
"""What ``pages=`` accepts: ``None`` (all), a page number, ``"1-3,7"``, a list of page numbers, or a ``range``."""

_RANGE = re.compile(r"^(?P<start>\d+|last)?\s*(?P<dash>-)?\s*(?P<end>\d+|last)?$")


def parse_pages(spec: PageSpec, page_count: int) -> tuple[int, ...]:
    """The 0-based page indices selected by ``spec`` in a document of ``page_count`` pages.

    Raises:
        PageSelectionError: the selection is malformed, empty, or names a page outside ``1..page_count``.

    >>> parse_pages(None, 3)
    (0, 1, 2)
    >>> parse_pages("2-", 4)
    (1, 2, 3)
    >>> parse_pages([3, 1, 3], 4)
    (2, 0)
    """
    if page_count < 1:
        raise PageSelectionError("the document has no pages to select from.")
    if spec is None:
        return tuple(range(page_count))
    if isinstance(spec, bool):
        raise PageSelectionError(f"pages={spec!r} is not a page selection; pass e.g. pages='1-3,7' or pages=2.")
    if isinstance(spec, int):
        numbers: list[int] = [_check(spec, page_count)]
    elif isinstance(spec, str):
        numbers = _parse_string(spec, page_count)
    elif isinstance(spec, range):
        if spec.step < 1:
            raise PageSelectionError(f"pages={spec!r}: use an ascending range of page numbers, e.g. range(1, 11).")
        numbers = [_check(n, page_count) for n in spec]
    elif isinstance(spec, Iterable):
        numbers = []
        for item in spec:
            if isinstance(item, bool) or not isinstance(item, int):
                raise PageSelectionError(
                    f"pages= holds {item!r}; a list of pages must hold page numbers (ints, counted from 1)."
                )
            numbers.append(_check(item, page_count))
    else:
        raise PageSelectionError(
            f"pages= cannot be a {type(spec).__name__}; pass '1-3,7', a page number, a list of page numbers or a range."
        )
    if not numbers:
        raise PageSelectionError(f"pages={spec!r} selects no pages; the document has {_count(page_count)}.")
    return tuple(dict.fromkeys(n - 1 for n in numbers))


def _count(page_count: int) -> str:
    return "1 page" if page_count == 1 else f"{page_count} pages (1-{page_count})"


def _check(number: int, page_count: int) -> int:
    if number < 1:
        raise PageSelectionError(
            f"page {number} does not exist: pages are numbered from 1, and the document has {_count(page_count)}."
        )
    if number > page_count:
        raise PageSelectionError(f"page {number} is out of range: the document has {_count(page_count)}.")
    return number


def _parse_string(text: str, page_count: int) -> list[int]:
    cleaned = text.replace("\u2013", "-").replace("\u2014", "-").lower().strip()
    if not cleaned:
        raise PageSelectionError(f"pages={text!r} is empty; the document has {_count(page_count)}.")
    numbers: list[int] = []
    for raw_part in cleaned.split(","):
        part = raw_part.strip()
        if not part:
            raise PageSelectionError(f"pages={text!r} has an empty item between commas.")
        match = _RANGE.match(part)
        if match is None or (match["dash"] is None and match["end"] is not None) or part == "-":
            raise PageSelectionError(
                f"pages={text!r}: cannot read {part!r}; write page numbers and ranges like '1-3,7', '5-' or '-3'."
            )
        start = _number(match["start"], page_count, default=1)
        if match["dash"] is None:
            numbers.append(_check(start, page_count))
            continue
        end = _number(match["end"], page_count, default=page_count)
        _check(start, page_count)
        _check(end, page_count)
        if end < start:
            raise PageSelectionError(f"pages={text!r}: the range {part!r} runs backwards; write it as '{end}-{start}'.")
        numbers.extend(range(start, end + 1))
    return numbers


def _number(token: str | None, page_count: int, *, default: int) -> int:
    if token is None:
        return default
    if token == "last":  # noqa: S105 - a page word, not a password
        return page_count
    return int(token)
