"""Result types: ``OCRResult`` and its typed views (lines, fields, tables, LaTeX, formulas), and stream chunks.

Nothing the model said is ever lost: ``raw_text`` holds it verbatim; the views are best-effort readings of it.

Example::

    result = QwenOCR().ocr("table.png", task="table_parsing")
    result.tables[0].to_markdown()
    result.truncated                     # True when the output hit max_tokens
"""

from __future__ import annotations

import html
import logging
import math
import os
import threading
import weakref
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .errors import TableTooLargeError
from .parsing import (
    MAX_JSON_DEPTH,
    extract_formulas,
    parse_html_tables,
    parse_json_tolerant,
    read_json,
    strip_fences,
    value_depth,
)
from .tasks import Task

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MAX_TABLE_CELLS",
    "MAX_TABLE_CHARS",
    "NORMALIZED_FRAME",
    "RECENT_IMAGES",
    "RECENT_IMAGE_BYTES",
    "OCRChunk",
    "OCRResult",
    "Table",
    "TableCell",
    "TextLine",
    "Usage",
    "build_result",
    "min_area_rect",
    "parse_tables",
    "rotate_rect_corners",
    "scale_rotate_rect",
]

logger = logging.getLogger("qwen_ocr")


class Usage(BaseModel):
    """Token usage of one request.

    ``image_tokens`` is part of ``input_tokens``. ``total_tokens`` is what the service reported, or the sum.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    input_tokens: int = 0
    output_tokens: int = 0
    image_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class TextLine(BaseModel):
    """One text line of ``advanced_recognition``, in pixels of the image you passed in.

    Attributes:
        text: the line's text.
        location: the four corners ``[x1, y1, x2, y2, x3, y3, x4, y4]``, clockwise from top-left; clipped to the
            image when its size is known (``OCRResult.metadata["boxes_clipped"]`` counts the boxes that reached
            outside it).
        rotate_rect: ``[cx, cy, width, height, angle]``, angle in degrees within [-90, 90] (as the service gave
            it, not clipped).
        score: the engine's confidence where it gives one (the local provider); ``None`` from the service.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    text: str
    location: tuple[int, int, int, int, int, int, int, int]
    rotate_rect: tuple[float, float, float, float, float]
    score: float | None = None

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """The axis-aligned box ``(left, top, right, bottom)`` around the four corners."""
        xs = self.location[0::2]
        ys = self.location[1::2]
        return (min(xs), min(ys), max(xs), max(ys))


class TableCell(BaseModel):
    """A cell of a parsed table."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    text: str = ""
    rowspan: int = 1
    colspan: int = 1
    header: bool = False


MAX_TABLE_CELLS = 50_000
"""The most slots (rows x columns, spans expanded) a table is laid out into as a grid. Real tables have a few
thousand at most (a full page of a dense table: 60 rows x 20 columns is 1,200). Past it (a few kilobytes of model
output can ask for ``rowspan="1000" colspan="1000"`` again and again: a grid of millions of slots) the table is
:attr:`Table.oversized`: its HTML is kept as written and its text is a note and that HTML, never an expanded grid."""

MAX_TABLE_CHARS = 500_000
"""The longest a table's Markdown (:meth:`Table.to_markdown`) may be when laid out, counting a spanned cell's text
once per slot it covers; past it the table is :attr:`Table.oversized` as well."""

_SpansMode = Literal["as_written", "clamped", "none"]


def _spans(rows: Sequence[Sequence[TableCell]]) -> list[list[tuple[int, int]]]:
    """Each cell's ``(rowspan, colspan)`` clamped to the table's real extent: a row span to the rows below it, a
    column span to the number of cells in the table (a column exists only where some cell starts), both at least 1."""
    n_rows = len(rows)
    n_cells = max(1, sum(len(row) for row in rows))
    return [
        [(max(1, min(cell.rowspan, n_rows - r)), max(1, min(cell.colspan, n_cells))) for cell in row]
        for r, row in enumerate(rows)
    ]


def _layout_size(rows: Sequence[Sequence[TableCell]]) -> tuple[int, int, int]:
    """Upper bounds, computed without laying the table out (linear in its cells): ``(slots, columns, markdown
    characters)`` of :meth:`Table.grid` and :meth:`Table.to_markdown`.

    A row is as wide as the column spans of the cells that cover it (its own and those spanning down into it), so
    the widest such sum bounds the grid's width; every slot written belongs to one cell's rectangle."""
    spans = _spans(rows)
    n_rows = len(rows)
    change = [0] * (n_rows + 1)
    chars = 0
    for r, (row, row_spans) in enumerate(zip(rows, spans, strict=True)):
        for cell, (rowspan, colspan) in zip(row, row_spans, strict=True):
            change[r] += colspan
            change[r + rowspan] -= colspan
            text = cell.text
            shown = len(text) + text.count("|") + 3 * text.count("\n")  # escaped as in to_markdown
            chars += rowspan * colspan * (shown + 3)
    width = active = 0
    for delta in change[:n_rows]:
        active += delta
        width = max(width, active)
    slots = n_rows * width
    # the empty slots of short rows (" | " each), the separator row, and each row's "| ", " |" and line break
    markdown = chars + 3 * slots + 6 * width + 5 * (n_rows + 2)
    return slots, width, markdown


class Table(BaseModel):
    """A table from ``table_parsing`` (or any output holding ``<table>``).

    Attributes:
        rows: rows of cells as the model wrote them (spanned cells appear once).
        html: the table's HTML, rebuilt from the cells (well-formed even when the model's output was cut off).
        caption: the ``<caption>``, if any.
        truncated: the output was cut off inside this table; ``rows`` holds its complete rows only.

    A table whose spans would lay it out into more than :data:`MAX_TABLE_CELLS` slots (or a Markdown of more than
    :data:`MAX_TABLE_CHARS` characters) is :attr:`oversized`: :meth:`grid` raises, :meth:`to_markdown` gives a note
    and the HTML instead.
    """

    model_config = ConfigDict(defer_build=True)

    rows: list[list[TableCell]] = Field(default_factory=list)
    caption: str | None = None
    truncated: bool = False

    @property
    def n_rows(self) -> int:
        """Rows in the table."""
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        """Columns in the widest row, spans expanded; for an :attr:`oversized` table an upper bound (the table is
        not laid out to count them)."""
        if self.oversized:
            return _layout_size(self.rows)[1]
        return max((len(r) for r in self.grid()), default=0)

    @property
    def html(self) -> str:
        """See :meth:`to_html`."""
        return self.to_html()

    @property
    def oversized_reason(self) -> str | None:
        """Why the table is too large to lay out as a grid, or ``None`` when it is not (see :attr:`oversized`)."""
        slots, width, markdown = _layout_size(self.rows)
        if slots > MAX_TABLE_CELLS:
            return (
                f"its spans would lay it out into {self.n_rows:,} rows x up to {width:,} columns = {slots:,} cells "
                f"(more than MAX_TABLE_CELLS = {MAX_TABLE_CELLS:,})"
            )
        if markdown > MAX_TABLE_CHARS:
            return (
                f"its spans would repeat its text into up to {markdown:,} characters of Markdown "
                f"(more than MAX_TABLE_CHARS = {MAX_TABLE_CHARS:,})"
            )
        return None

    @property
    def oversized(self) -> bool:
        """Whether the table is too large to lay out as a grid (past :data:`MAX_TABLE_CELLS` slots or
        :data:`MAX_TABLE_CHARS` characters, spans expanded): then :meth:`grid` raises :class:`TableTooLargeError`
        and :meth:`to_markdown` is a note followed by the HTML. Checked in time linear in the cells."""
        return self.oversized_reason is not None

    def grid(self) -> list[list[str]]:
        """The table as a rectangular grid of strings, with row and column spans expanded into every slot.

        Spans are clamped to the table's real extent (a row span to the rows below, a column span to the number of
        cells in the table).

        Raises:
            TableTooLargeError: the table is :attr:`oversized`; its cells are in ``rows``, its HTML in
                :meth:`to_html`.
        """
        reason = self.oversized_reason
        if reason is not None:
            raise TableTooLargeError(
                f"this table is too large to lay out as a grid: {reason}. Read its cells from Table.rows or its "
                "HTML from Table.to_html(); to_markdown() gives a note and the HTML.",
                code="TableTooLarge",
            )
        grid: list[list[str | None]] = [[] for _ in self.rows]
        for r, (row, spans) in enumerate(zip(self.rows, _spans(self.rows), strict=True)):
            c = 0
            for cell, (rowspan, colspan) in zip(row, spans, strict=True):
                while c < len(grid[r]) and grid[r][c] is not None:
                    c += 1
                for rr in range(r, r + rowspan):
                    line = grid[rr]
                    if len(line) < c + colspan:
                        line.extend([None] * (c + colspan - len(line)))
                    line[c : c + colspan] = [cell.text] * colspan
                c += colspan
        width = max((len(r) for r in grid), default=0)
        return [[v or "" for v in row] + [""] * (width - len(row)) for row in grid]

    def to_markdown(self, *, caption: bool = True) -> str:
        """The table as GitHub-flavoured Markdown, laid out as every integration lays it out
        (:class:`qwen_ocr.tables.TableLayout`): its title (the ``<caption>`` and the text of title rows, i.e.
        leading rows without a cell per column) on a line above unless ``caption=False``, then one header row
        (leading ``<th>`` rows merged as ``"Group / Name"``) and the body rows; spans repeat their text, blank rows
        are left out.

        An :attr:`oversized` table is not laid out: its Markdown is a one-line note saying why, then its HTML (spans
        as written), one ``<tr>`` per line.

        >>> Table(rows=[[TableCell(text="a"), TableCell(text="b")], [TableCell(text="1")]]).to_markdown()
        '| a | b |\\n| --- | --- |\\n| 1 |  |'
        >>> print(Table(rows=[[TableCell(text="Sales", colspan=2)], [TableCell(text="Q"), TableCell(text="EUR")],
        ...                   [TableCell(text="Q1"), TableCell(text="10")]]).to_markdown())
        Sales
        <BLANKLINE>
        | Q | EUR |
        | --- | --- |
        | Q1 | 10 |
        """
        from .tables import table_markdown

        return table_markdown(self, caption=caption)

    def to_html(self, *, spans: _SpansMode = "as_written") -> str:
        """The table as clean HTML (cells escaped).

        Args:
            spans: ``"as_written"`` keeps the model's ``rowspan``/``colspan``; ``"clamped"`` clamps them to the
                table's real extent, as :meth:`grid` does (for display: a browser lays out what it is given);
                ``"none"`` leaves them out (each cell once, for an :attr:`oversized` table on screen).
        """
        parts = ["<table>"]
        if self.caption:
            parts.append(f"<caption>{html.escape(self.caption)}</caption>")
        clamped = _spans(self.rows) if spans == "clamped" else None
        for r, row in enumerate(self.rows):
            parts.append("<tr>")
            for i, cell in enumerate(row):
                tag = "th" if cell.header else "td"
                rowspan, colspan = clamped[r][i] if clamped is not None else (cell.rowspan, cell.colspan)
                attrs = ""
                if spans != "none":
                    if rowspan > 1:
                        attrs += f' rowspan="{rowspan}"'
                    if colspan > 1:
                        attrs += f' colspan="{colspan}"'
                text = html.escape(cell.text).replace("\n", "<br>")
                parts.append(f"<{tag}{attrs}>{text}</{tag}>")
            parts.append("</tr>")
        parts.append("</table>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        """Jupyter shows a table as a table (cells escaped); see :func:`qwen_ocr.viz.table_html`."""
        from .viz import table_html

        return table_html(self)


class OCRResult(BaseModel):
    """The reading of one image.

    Attributes:
        text: the cleaned output: fences removed; for ``advanced_recognition`` the lines' text, one per line.
        raw_text: exactly what the model said.
        task: the built-in task, or ``None`` for a custom prompt.
        model: the model that answered.
        request_id: the service's request id.
        finish_reason: ``"stop"``, or ``"length"`` when the output was cut off at ``max_tokens``.
        usage: token usage.
        lines: text lines with boxes (``advanced_recognition``, and the local provider).
        fields: extracted key-value JSON (``key_information_extraction``).
        tables: tables found in the output.
        latex: the LaTeX document (``document_parsing``), fences removed.
        formulas: display formulas found in the output (``formula_recognition``, ``document_parsing``).
        image_size: ``(width, height)`` of the image as you passed it in, when known; boxes are in these pixels.
        provider: ``"dashscope"``, ``"openai"`` or ``"local"``.
        metadata: anything else worth keeping (e.g. the service's ``processed_text``; ``boxes_clipped``: how many
            text boxes reached outside the image and were clipped to it); ``"parse_error"`` says why a view the
            task calls for is empty although the model answered (its JSON nested too deeply to read; ``raw_text``
            still holds it).
    """

    model_config = ConfigDict(defer_build=True)  # validators built on first use, not on import (issue 17)

    text: str = ""
    raw_text: str = ""
    task: Task | None = None
    model: str = ""
    request_id: str | None = None
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    lines: list[TextLine] = Field(default_factory=list)
    fields: dict[str, Any] | list[Any] | None = None
    tables: list[Table] = Field(default_factory=list)
    latex: str | None = None
    formulas: list[str] = Field(default_factory=list)
    image_size: tuple[int, int] | None = None
    provider: str = "dashscope"
    metadata: dict[str, Any] = Field(default_factory=dict)

    _image: _ImageRef | None = PrivateAttr(default=None)
    """What the clients read this from, by reference: not a field (never in repr, JSON, model_dump or pickles, and
    ignored by ``==``), for :meth:`image` and the rich display."""

    @property
    def truncated(self) -> bool:
        """Whether the output was cut off: ``finish_reason == "length"``, or a table in it ends mid-table (the
        service has been seen to say ``"stop"`` for a reply cut off inside a table)."""
        return self.finish_reason == "length" or any(table.truncated for table in self.tables)

    def __str__(self) -> str:
        return self.text

    # -- the page as text (qwen_ocr.rendering: the one policy of every integration) ---------------------------

    def to_markdown(self) -> str:
        """The page as Markdown: ``document_parsing`` LaTeX as Markdown (headings, lists, tables, ``$$``
        formulas), HTML tables as Markdown tables (:meth:`Table.to_markdown`), fields as ``key: value`` lines,
        other text as the model wrote it. What the LangChain and LlamaIndex integrations give by default; see
        :mod:`qwen_ocr.rendering`."""
        from .rendering import render

        return render(self, "markdown")

    def to_text(self) -> str:
        """The page as plain text: like :meth:`to_markdown`, but ``document_parsing`` LaTeX as plain paragraphs
        (no ``#``, ``-`` or ``$$`` marks); see :mod:`qwen_ocr.rendering`."""
        from .rendering import render

        return render(self, "text")

    # -- seeing the result (qwen_ocr.viz) ---------------------------------------------------------------------

    def image(self) -> Image.Image | None:
        """The image this was read from, decoded now and upright, in the pixels of ``image_size`` (for a PDF page,
        the page as rendered; ``image_size`` is then in points); ``None`` when not known.

        Results made by :class:`~qwen_ocr.QwenOCR` and :class:`~qwen_ocr.AsyncQwenOCR` keep a reference to what
        was passed in, but **no pixels of their own**: a path is kept (and read again now); an image in memory (a
        ``PIL.Image``, bytes, a ``data:`` URL, a prepared page) is seen for as long as you hold it yourself, and the
        last :data:`RECENT_IMAGES` of them (up to :data:`RECENT_IMAGE_BYTES`) are kept for display whoever holds
        them. So the result of a single call shows its image in a notebook, while ``ocr_many``, the loaders and the
        readers hold O(concurrency) images, not one per input. To see every result of a batch of in-memory images,
        keep the images (e.g. pass a list you hold). Not for URLs, nor results from JSON, the cache's files or
        pickles.
        """
        from .viz import result_image

        return result_image(self)

    def to_html(self, *, max_width: int = 1000) -> str:
        """The rich view (what Jupyter shows) as an HTML fragment: the page with numbered boxes, lines, tables,
        fields, formulas; every piece of model output escaped. See :func:`qwen_ocr.viz.result_html`."""
        from .viz import result_html

        return result_html(self, max_width=max_width)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(
        self, include: Collection[str] | None = None, exclude: Collection[str] | None = None, **kwargs: Any
    ) -> dict[str, str]:
        from .viz import result_mimebundle

        return result_mimebundle(self, include, exclude)

    def _attach_image(self, source: Any) -> OCRResult:
        """Remember what this was read from, without keeping its pixels alive (see :meth:`image`); returns
        ``self``."""
        self._image = _ImageRef(source) if source is not None else None
        return self

    def _image_source(self) -> Any:
        return self._image.source if self._image is not None else None


RECENT_IMAGES = 4
"""In-memory images (``PIL.Image``, bytes, ``data:`` URLs, prepared pages) kept alive for display after the calls
that read them: the most recent ones only, so a single call's result shows its image while a batch keeps O(1) of
them (see :meth:`OCRResult.image`)."""
RECENT_IMAGE_BYTES = 64 * 1024 * 1024
"""...and at most this many bytes of them (an image larger than this alone is seen only while you hold it)."""


def _no_image() -> None:
    return None


class _Kept:
    """A box the recent-images ring holds strongly; results hold it weakly, so it dies when it leaves the ring."""

    __slots__ = ("__weakref__", "nbytes", "source")

    def __init__(self, source: Any, nbytes: int) -> None:
        self.source = source
        self.nbytes = nbytes


_recent: deque[_Kept] = deque()
_recent_bytes = 0
_recent_lock = threading.Lock()


def _keep_recent(source: Any) -> weakref.ref[_Kept] | None:
    """Keep ``source`` among the recent in-memory images (dropping the oldest past the limits); a weak reference to
    its box, or ``None`` when it is too large to keep."""
    global _recent_bytes
    nbytes = _size_of(source)
    if nbytes > RECENT_IMAGE_BYTES:
        return None
    box = _Kept(source, nbytes)
    with _recent_lock:
        _recent.append(box)
        _recent_bytes += nbytes
        while _recent and (len(_recent) > RECENT_IMAGES or _recent_bytes > RECENT_IMAGE_BYTES):
            _recent_bytes -= _recent.popleft().nbytes
    return weakref.ref(box)


def _size_of(source: Any) -> int:
    """About how many bytes ``source`` keeps alive."""
    if isinstance(source, (bytes, bytearray, memoryview, str)):
        return len(source)
    size = getattr(source, "size", None)
    bands = getattr(source, "getbands", None)
    if isinstance(size, tuple) and len(size) == 2 and callable(bands):  # a PIL image
        return int(size[0]) * int(size[1]) * max(1, len(bands()))
    url = getattr(source, "url", None)  # a PreparedImage
    return len(url) if isinstance(url, str) else 0


def _holds_pixels(source: Any) -> bool:
    """Whether ``source`` is an image in memory (rather than a path or URL, which hold no pixels)."""
    if isinstance(source, os.PathLike):
        return False
    if isinstance(source, str):
        return source.lstrip()[:5].lower() == "data:"
    return True


class _ImageRef:
    """A reference to the image a result was read from. Not part of the result's value: equal to any other reference
    and to ``None`` (so ``==`` between results ignores it), dropped when pickled, shared (not copied) by copies.

    A path or URL is held as it is. An image in memory is held weakly (alive while the caller holds it) and through
    the recent-images ring (alive while it is among the last :data:`RECENT_IMAGES`): never by the result alone."""

    __slots__ = ("_box", "_path", "_weak")

    def __init__(self, source: Any) -> None:
        self._path: Any = None
        self._weak: weakref.ref[Any] | None = None
        self._box: weakref.ref[_Kept] | None = None
        if not _holds_pixels(source):
            self._path = source
            return
        try:
            self._weak = weakref.ref(source)
        except TypeError:  # bytes, str: no weak references to them
            self._weak = None
        self._box = _keep_recent(source)

    @property
    def source(self) -> Any:
        """What the result was read from, or ``None`` when nobody holds it any more."""
        if self._path is not None:
            return self._path
        if self._weak is not None and (alive := self._weak()) is not None:
            return alive
        box = self._box() if self._box is not None else None
        return box.source if box is not None else None

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, _ImageRef)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<image>"

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_no_image, ())

    def __copy__(self) -> _ImageRef:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _ImageRef:
        return self


class OCRChunk(BaseModel):
    """One piece of a streamed reading.

    Attributes:
        text: the new text since the previous chunk (a delta).
        finish_reason: ``None`` until the last chunk, then ``"stop"`` or ``"length"``.
        usage: token usage so far (the service reports it cumulatively); final on the last chunk.
        request_id: the service's request id.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------------------------------------------
# Building a result from what a protocol returned (pure)

NORMALIZED_FRAME: tuple[float, float] = (1000.0, 1000.0)
"""The frame of boxes the Qwen3-VL-based models write in their text: 0..1000 on both axes."""


def build_result(
    raw_text: str,
    *,
    task: Task | None,
    model: str,
    request_id: str | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
    words_info: Any = None,
    kv_result: Any = None,
    scale: tuple[float, float] = (1.0, 1.0),
    image_size: tuple[int, int] | None = None,
    provider: str = "dashscope",
    metadata: Mapping[str, Any] | None = None,
    text_frame: tuple[float, float] | None = NORMALIZED_FRAME,
) -> OCRResult:
    """Turn a model reply into an :class:`OCRResult`, filling the views the task calls for.

    ``scale`` maps coordinates of the image that was sent back to the image the caller passed in (the client
    downscales large images before sending). Text boxes are clipped to ``image_size`` when it is known (to the
    0..1000 square of the compatible mode's normalised boxes when it is not); ``metadata["boxes_clipped"]`` counts
    the boxes that reached outside. ``words_info`` and ``kv_result`` are the native protocol's
    structured ``ocr_result`` (a line with a ``rotate_rect`` but no ``location``, as ``qwen3.5-ocr`` answers, gets
    its corners from the rectangle); without them (the OpenAI-compatible protocol) the views are parsed from the
    text, whose boxes are in ``text_frame``: ``(width, height)`` of their frame, :data:`NORMALIZED_FRAME` (0..1000,
    the Qwen3-VL-based 32-px models) or the size of the image as the model saw it (the 28-px snapshots, Qwen2.5-VL,
    which write pixels of their input); ``None`` when that frame is not known (the boxes are kept as written).
    """
    body = strip_fences(raw_text)
    problems: list[str] = []  # why a view that should have been filled was not (JSON nested too deeply)
    lines, clipped = _lines_from_words_info(words_info, scale, image_size)
    if task is Task.ADVANCED_RECOGNITION and not lines:
        parsed, problem = read_json(body)
        lines, clipped = _lines_from_text(parsed, image_size, text_frame)
        if problem:
            problems.append(f"lines: {problem}")

    fields: dict[str, Any] | list[Any] | None = None
    if isinstance(kv_result, (dict, list)) and kv_result:
        if value_depth(kv_result) > MAX_JSON_DEPTH:
            problems.append(f"fields: the service's kv_result is nested more than {MAX_JSON_DEPTH} levels deep")
        else:
            fields = _normalize_fields(kv_result)
    elif task is Task.KEY_INFORMATION_EXTRACTION:
        parsed, problem = read_json(raw_text)
        fields = parsed if isinstance(parsed, (dict, list)) else None
        if problem:
            problems.append(f"fields: {problem}")
    extra = dict(metadata or {})
    if problems:
        extra["parse_error"] = "; ".join(problems) + ". raw_text holds the model's output as written."
        logger.warning("qwen_ocr: a reply could not be parsed (%s); raw_text keeps it.", "; ".join(problems))

    tables = parse_tables(raw_text)
    latex = body if task is Task.DOCUMENT_PARSING else None
    formulas = extract_formulas(raw_text) if task in (Task.FORMULA_RECOGNITION, Task.DOCUMENT_PARSING) else []

    text = body
    if task is Task.ADVANCED_RECOGNITION and lines:
        text = "\n".join(line.text for line in lines)

    return OCRResult(
        text=text,
        raw_text=raw_text,
        task=task,
        model=model,
        request_id=request_id,
        finish_reason=finish_reason,
        usage=usage or Usage(),
        lines=lines,
        fields=fields,
        tables=tables,
        latex=latex,
        formulas=formulas,
        image_size=image_size,
        provider=provider,
        metadata={**extra, **({"boxes_clipped": clipped} if clipped else {})},
    )


def parse_tables(text: str) -> list[Table]:
    """The HTML tables in a model's output (``<table>`` elements, or bare ``<tr>`` rows), in order; a table cut off
    at the end of the output keeps its complete rows and is ``truncated``.

    >>> parse_tables("<table><tr><td>a</td></tr></table>")[0].rows[0][0].text
    'a'
    """
    return [
        Table(
            rows=[[TableCell(**cell) for cell in row] for row in raw["rows"]],
            caption=raw["caption"],
            truncated=raw["truncated"],
        )
        for raw in parse_html_tables(text)
    ]


def _normalize_fields(value: Any) -> Any:
    parsed = parse_json_tolerant(_dumps(value))
    return parsed if parsed is not None else value


def _dumps(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return ""


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            f = float(value)
        except OverflowError:  # an integer past the float range: no coordinate
            return None
        return f if f == f and abs(f) < 1e9 else None
    if isinstance(value, str):
        try:
            return _num(float(value))
        except ValueError:
            return None
    return None


def _clip_location(location: tuple[int, ...], frame: tuple[int, int] | None) -> tuple[tuple[int, ...], bool]:
    """The corners clipped to ``(0, 0)``-``frame`` (the image); whether that changed them. No frame, no clipping."""
    if frame is None or frame[0] <= 0 or frame[1] <= 0:
        return location, False
    width, height = frame
    clipped = tuple(max(0, min(width if i % 2 == 0 else height, v)) for i, v in enumerate(location))
    return clipped, clipped != location


def _lines_from_words_info(
    words_info: Any, scale: tuple[float, float], frame: tuple[int, int] | None = None
) -> tuple[list[TextLine], int]:
    """The native protocol's text lines, mapped by ``scale`` and clipped to ``frame``; and how many were clipped."""
    sx, sy = scale
    clipped = 0
    lines: list[TextLine] = []
    for item in words_info if isinstance(words_info, list) else []:
        if not isinstance(item, Mapping):
            continue
        text = item.get("text")
        loc = item.get("location")
        rect = item.get("rotate_rect")
        if not isinstance(text, str):
            continue
        rr = _rotate_rect(rect, sx, sy) if isinstance(rect, list) else None
        if isinstance(loc, list) and len(loc) == 8:
            nums = [_num(v) for v in loc]
            if any(n is None for n in nums):
                continue
            location = tuple(round(n * (sx if i % 2 == 0 else sy)) for i, n in enumerate(nums if nums else []))  # type: ignore[operator]
        elif loc is None and rr is not None:  # qwen3.5-ocr: a rotate_rect only; its corners are the location
            location = tuple(round(v) for point in rotate_rect_corners(rr) for v in point)
        else:
            continue
        location, was_clipped = _clip_location(location, frame)
        clipped += was_clipped
        if rr is None:
            rr = _rect_from_location(location)
        lines.append(TextLine(text=text, location=location, rotate_rect=rr))  # type: ignore[arg-type]
    return lines, clipped


def _entries(items: Any, key: str, count: int) -> Iterator[tuple[str, list[float], Mapping[str, Any]]]:
    """``(text, numbers, entry)`` of each entry of the list ``items`` that has a ``text`` and ``count`` numbers
    under ``key``; other entries are skipped."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("text"), str):
            nums = _numbers(item.get(key), count)
            if nums is not None:
                yield item["text"], nums, item


def _numbers(value: Any, count: int) -> list[float] | None:
    """``value`` as ``count`` finite numbers; ``None`` unless it is a list of that many numbers."""
    if not isinstance(value, list) or len(value) != count:
        return None
    nums = [_num(v) for v in value]
    return [n for n in nums if n is not None] if all(n is not None for n in nums) else None


def _rotate_rect(rect: Any, sx: float, sy: float) -> tuple[float, float, float, float, float] | None:
    nums = _numbers(rect, 5)
    if nums is None:
        return None
    return scale_rotate_rect(nums, sx, sy)


def scale_rotate_rect(rect: Sequence[float], sx: float, sy: float) -> tuple[float, float, float, float, float]:
    """A ``rotate_rect`` ``[cx, cy, width, height, angle]`` with x multiplied by ``sx`` and y by ``sy``.

    ``width`` lies along the angle's direction ``(cos a, sin a)`` and ``height`` across it (the service's
    convention: at 90 degrees ``width`` is a horizontal line's vertical extent), so each is scaled by the factor of
    the axis it lies along: at 0 and 90 degrees exactly (at 90 ``width`` takes ``sy`` and ``height`` ``sx``), in
    between the sides of the scaled parallelogram. The angle keeps its quadrant (within [-90, 90] as given).

    >>> scale_rotate_rect((10, 10, 4, 20, 90), 2.0, 0.5)
    (20.0, 5.0, 2.0, 40.0, 90.0)
    """
    cx, cy, w, h, angle = (float(v) for v in rect)
    if sx == sy:
        return (cx * sx, cy * sy, w * sx, h * sy, angle)
    theta = math.radians(angle)
    ux, uy = math.cos(theta) * sx, math.sin(theta) * sy
    vx, vy = -math.sin(theta) * sx, math.cos(theta) * sy
    # Exactly on an axis the angle stays as it was (no rounding noise).
    new_angle = angle if abs(angle) in (0.0, 90.0) else math.degrees(math.atan2(uy, ux))
    return (cx * sx, cy * sy, w * math.hypot(ux, uy), h * math.hypot(vx, vy), new_angle)


def rotate_rect_corners(rect: Sequence[float]) -> list[tuple[float, float]]:
    """The four corners of a ``rotate_rect``, clockwise from the top-left as the service orders ``location``.

    The rectangle's side nearer to horizontal is taken as the line's direction (left to right), so an upright line
    starts at its top-left corner whatever way round width and height are given.

    >>> [(round(x), round(y)) for x, y in rotate_rect_corners((150, 80, 49, 197, -89))]  # qwen3.5-ocr's docs
    [(52, 54), (249, 57), (248, 106), (51, 103)]
    """
    cx, cy, w, h, angle = (float(v) for v in rect)
    theta = math.radians(angle)
    # width along u = (cos, sin), height along v = (-sin, cos): take the axis nearer to horizontal as "along".
    ux, uy, vx, vy = math.cos(theta), math.sin(theta), -math.sin(theta), math.cos(theta)
    if abs(ux) >= abs(vx):
        dx, dy, along, across = ux, uy, w, h
    else:
        dx, dy, along, across = vx, vy, h, w
    if dx < 0 or (dx == 0 and dy < 0):
        dx, dy = -dx, -dy
    nx, ny = -dy, dx  # across the line, pointing down the page
    a, b = along / 2, across / 2
    return [
        (cx - a * dx - b * nx, cy - a * dy - b * ny),
        (cx + a * dx - b * nx, cy + a * dy - b * ny),
        (cx + a * dx + b * nx, cy + a * dy + b * ny),
        (cx - a * dx + b * nx, cy - a * dy + b * ny),
    ]


def min_area_rect(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float, float]:
    """The smallest rectangle around four corners, as a ``rotate_rect`` in the service's (OpenCV's) convention:
    ``angle`` in (0, 90] is the direction of ``width``; ``height`` lies across it.

    The smallest rectangle around a convex quadrilateral has a side on one of its edges, so each edge's
    direction is tried. This is what a box read from text becomes once its corners are in pixels: a
    rectangle of a normalised frame is a parallelogram in pixels when the image is not square.

    >>> min_area_rect([(0, 0), (100, 0), (100, 20), (0, 20)])
    (50.0, 10.0, 20.0, 100.0, 90.0)
    """
    best: tuple[float, float, float, float, float] | None = None
    best_area = math.inf
    count = len(points)
    for i in range(count):
        (x1, y1), (x2, y2) = points[i], points[(i + 1) % count]
        length = math.hypot(x2 - x1, y2 - y1)
        if length == 0 or not math.isfinite(length):
            continue
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        along = [x * ux + y * uy for x, y in points]
        across = [-x * uy + y * ux for x, y in points]
        w, h = max(along) - min(along), max(across) - min(across)
        if w * h < best_area:
            best_area = w * h
            ca, cb = (max(along) + min(along)) / 2, (max(across) + min(across)) / 2
            best = (ca * ux - cb * uy, ca * uy + cb * ux, w, h, math.degrees(math.atan2(uy, ux)))
    if best is None:  # all corners at one point
        x, y = points[0]
        return (float(x), float(y), 0.0, 0.0, 90.0)
    cx, cy, w, h, angle = best
    # Turn the direction by quarter turns into (0, 90]; each quarter turn swaps width and height.
    while angle <= 0.0:
        angle += 90.0
        w, h = h, w
    while angle > 90.0:
        angle -= 90.0
        w, h = h, w
    return (cx, cy, w, h, angle)


def _rect_from_location(loc: Sequence[int]) -> tuple[float, float, float, float, float]:
    """The ``rotate_rect`` of a line given by its corners only: their smallest rectangle, as the service gives it."""
    return min_area_rect([(float(loc[i]), float(loc[i + 1])) for i in range(0, 8, 2)])


def _lines_from_text(
    parsed: Any, image_size: tuple[int, int] | None, text_frame: tuple[float, float] | None
) -> tuple[list[TextLine], int]:
    """advanced_recognition without ``ocr_result`` (the OpenAI-compatible mode, self-hosted servers): boxes come only
    in the text (``parsed`` is its JSON), in ``text_frame`` (0..1000 or the model's input pixels; see
    :func:`build_result`).

    Each box's corners are mapped to the image's pixels axis by axis, and its ``rotate_rect`` is rebuilt as the
    smallest rectangle around them in pixels (a tilted rectangle of a 0..1000 frame is a parallelogram in the
    pixels of an image that is not square: its angle changes). Without the image size (or the frame) the lines keep
    the coordinates as written. Corners are clipped to the image (to the 0..1000 square without its size); also
    returns how many lines were clipped.
    """
    items: list[Any] = []
    if isinstance(parsed, list):
        for entry in parsed:
            if isinstance(entry, Mapping) and isinstance(entry.get("pos_list"), list):
                items.extend(entry["pos_list"])
            else:
                items.append(entry)
    if image_size is not None and text_frame is not None and text_frame[0] > 0 and text_frame[1] > 0:
        fx, fy = image_size[0] / text_frame[0], image_size[1] / text_frame[1]
        frame: tuple[int, int] | None = image_size
    else:
        fx = fy = 1.0
        frame = image_size if image_size is not None else (1000, 1000) if text_frame == NORMALIZED_FRAME else None
    clipped = 0
    lines: list[TextLine] = []
    for text, nums, _ in _entries(items, "rotate_rect", 5):
        written = tuple(nums)
        corners = [(x * fx, y * fy) for x, y in rotate_rect_corners(written)]
        location, was_clipped = _clip_location(tuple(round(v) for pt in corners for v in pt), frame)
        clipped += was_clipped
        rotate_rect = min_area_rect(corners) if (fx, fy) != (1.0, 1.0) else written
        lines.append(TextLine(text=text, location=location, rotate_rect=rotate_rect))  # type: ignore[arg-type]
    return lines, clipped
