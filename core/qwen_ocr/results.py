"""Result types: ``OCRResult`` and its typed views (lines, fields, tables, LaTeX, formulas), and stream chunks.

Nothing the model said is ever lost: ``raw_text`` holds it verbatim; the views are best-effort readings of it.

Example::

    result = QwenOCR().ocr("table.png", task="table_parsing")
    result.tables[0].to_markdown()
    result.truncated                     # True when the output hit max_tokens
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .errors import TableTooLargeError
from .parsing import extract_formulas, parse_html_tables, parse_json_tolerant, strip_fences
from .tasks import Task

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MAX_TABLE_CELLS",
    "MAX_TABLE_CHARS",
    "OCRChunk",
    "OCRResult",
    "Table",
    "TableCell",
    "TextLine",
    "Usage",
    "build_result",
    "parse_tables",
]


class Usage(BaseModel):
    """Token usage of one request.

    ``image_tokens`` is part of ``input_tokens``. ``total_tokens`` is what the service reported, or the sum.
    """

    model_config = ConfigDict(frozen=True)

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

    model_config = ConfigDict(frozen=True)

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

    model_config = ConfigDict(frozen=True)

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
            text boxes reached outside the image and were clipped to it).
    """

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
        was passed in (a path is read again now); not for URLs, nor results from JSON, the cache's files or pickles.
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
        """Remember what this was read from (by reference; no pixels copied); returns ``self``."""
        self._image = _ImageRef(source) if source is not None else None
        return self

    def _image_source(self) -> Any:
        return self._image.source if self._image is not None else None


def _no_image() -> None:
    return None


class _ImageRef:
    """A reference to the image a result was read from. Not part of the result's value: equal to any other reference
    and to ``None`` (so ``==`` between results ignores it), dropped when pickled, shared (not copied) by copies."""

    __slots__ = ("source",)

    def __init__(self, source: Any) -> None:
        self.source = source

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

    model_config = ConfigDict(frozen=True)

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------------------------------------------
# Building a result from what a protocol returned (pure)


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
) -> OCRResult:
    """Turn a model reply into an :class:`OCRResult`, filling the views the task calls for.

    ``scale`` maps coordinates of the image that was sent back to the image the caller passed in (the client
    downscales large images before sending). Text boxes are clipped to ``image_size`` when it is known (to the
    0..1000 square of the compatible mode's normalised boxes when it is not); ``metadata["boxes_clipped"]`` counts
    the boxes that reached outside. ``words_info`` and ``kv_result`` are the native protocol's
    structured ``ocr_result``; without them (the OpenAI-compatible protocol) the views are parsed from the text.
    """
    body = strip_fences(raw_text)
    lines, clipped = _lines_from_words_info(words_info, scale, image_size)
    if task is Task.ADVANCED_RECOGNITION and not lines:
        lines, clipped = _lines_from_text(body, scale, image_size)

    fields: dict[str, Any] | list[Any] | None = None
    if isinstance(kv_result, (dict, list)) and kv_result:
        fields = _normalize_fields(kv_result)
    elif task is Task.KEY_INFORMATION_EXTRACTION:
        parsed = parse_json_tolerant(raw_text)
        fields = parsed if isinstance(parsed, (dict, list)) else None

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
        metadata={**(metadata or {}), **({"boxes_clipped": clipped} if clipped else {})},
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
    for text, nums, item in _entries(words_info, "location", 8):
        location = tuple(round(n * (sx if i % 2 == 0 else sy)) for i, n in enumerate(nums))
        location, was_clipped = _clip_location(location, frame)
        clipped += was_clipped
        rr = _rotate_rect(item.get("rotate_rect"), sx, sy)
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
    cx, cy, w, h, angle = nums
    # Width and height lie along the rotated axes; with unequal scales this is approximate, exact when sx == sy.
    return (cx * sx, cy * sy, w * (sx + sy) / 2, h * (sx + sy) / 2, angle)


def _rect_from_location(loc: Sequence[int]) -> tuple[float, float, float, float, float]:
    import math

    xs, ys = loc[0::2], loc[1::2]
    cx, cy = sum(xs) / 4, sum(ys) / 4
    w = math.hypot(loc[2] - loc[0], loc[3] - loc[1])
    h = math.hypot(loc[6] - loc[0], loc[7] - loc[1])
    angle = math.degrees(math.atan2(loc[3] - loc[1], loc[2] - loc[0]))
    return (cx, cy, w, h, max(-90.0, min(90.0, angle)))


def _lines_from_text(
    body: str, scale: tuple[float, float], image_size: tuple[int, int] | None
) -> tuple[list[TextLine], int]:
    """advanced_recognition through the OpenAI-compatible mode: boxes come only in the text, normalised to 0..1000.

    Without the image size they cannot be mapped to pixels; the lines keep the 0..1000 coordinates then. Corners
    are clipped to the image (the 0..1000 square without its size); also returns how many lines were clipped.
    """
    import math

    parsed = parse_json_tolerant(body)
    items: list[Any] = []
    if isinstance(parsed, list):
        for entry in parsed:
            if isinstance(entry, Mapping) and isinstance(entry.get("pos_list"), list):
                items.extend(entry["pos_list"])
            else:
                items.append(entry)
    if image_size is not None:
        fx, fy = image_size[0] / 1000.0, image_size[1] / 1000.0
    else:
        fx = fy = 1.0
    frame = image_size if image_size is not None else (1000, 1000)
    clipped = 0
    lines: list[TextLine] = []
    for text, nums, _ in _entries(items, "rotate_rect", 5):
        cx, cy, w, h, angle = nums
        # The service's convention: at angle 90 a horizontal line's "height" is its long side along x.
        # Work out the corners in the normalised square, then map each axis to pixels (an affine map).
        theta = math.radians((angle + 180.0 if angle <= 0 else angle) - 90.0)
        ux, uy = math.cos(theta), math.sin(theta)
        vx, vy = -uy, ux
        hx, hy = h / 2, w / 2
        corners = [
            ((cx - ux * hx - vx * hy) * fx, (cy - uy * hx - vy * hy) * fy),
            ((cx + ux * hx - vx * hy) * fx, (cy + uy * hx - vy * hy) * fy),
            ((cx + ux * hx + vx * hy) * fx, (cy + uy * hx + vy * hy) * fy),
            ((cx - ux * hx + vx * hy) * fx, (cy - uy * hx + vy * hy) * fy),
        ]
        location, was_clipped = _clip_location(tuple(round(v) for pt in corners for v in pt), frame)
        clipped += was_clipped
        (x1, y1), (x2, y2), _, (x4, y4) = corners
        along = math.hypot(x2 - x1, y2 - y1)
        across = math.hypot(x4 - x1, y4 - y1)
        lines.append(
            TextLine(
                text=text,
                location=location,  # type: ignore[arg-type]
                rotate_rect=(cx * fx, cy * fy, across, along, angle),
            )
        )
    del scale  # the normalised boxes refer to the image as passed in, not as sent
    return lines, clipped
