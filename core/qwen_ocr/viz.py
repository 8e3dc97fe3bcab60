"""Seeing results: text boxes drawn on the page, and the rich display of :class:`~qwen_ocr.OCRResult` in Jupyter.

:func:`draw_boxes` draws the 4-point boxes of text lines (``TextLine.location``) on an image and returns a new
``PIL.Image``, numbered in reading order: in a notebook, a script or a report alike. A result made by a client
remembers what it was read from (by reference, never serialised), so ``draw_boxes(result)`` needs nothing else.

In Jupyter an ``OCRResult`` shows itself as HTML (:func:`result_html`): the reading first (the lines, numbered,
tables as tables, fields as a two-column table, ``document_parsing`` LaTeX as headings, paragraphs, tables and
typeset formulas where the front end typesets math, formulas as math), and beside it a small preview of the page
with the same numbers on its boxes (at most :data:`PREVIEW_MAX_BYTES` embedded; a click opens it to the whole
width); and as plain text (:func:`result_text`) everywhere else. All text from the model is escaped: OCR output is
untrusted input.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.viz import draw_boxes

    result = QwenOCR(provider="local").ocr("scan.png", task="advanced_recognition")
    draw_boxes(result).save("scan-boxes.png")               # the page with numbered boxes
    draw_boxes("scan.png", result.lines[:3], color="blue")  # any image, any lines
    result                                                  # in a notebook: lines, tables, fields, the page
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import InvalidArgumentError, InvalidImageError
from .imaging import PreparedImage, _decode_data_url, _read_path, decode_checked, open_checked
from .rendering import field_rows
from .results import OCRResult, Table, TextLine
from .tasks import Task

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = [
    "DEFAULT_COLOR",
    "DISPLAY_MAX_WIDTH",
    "PREVIEW_HEIGHT",
    "PREVIEW_MAX_BYTES",
    "Box",
    "ImageSource",
    "as_image",
    "draw_boxes",
    "preview",
    "result_html",
    "result_image",
    "result_mimebundle",
    "result_text",
    "table_html",
]

ImageSource: TypeAlias = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, PreparedImage, OCRResult
]
"""What :func:`draw_boxes` draws on: a path, a ``data:`` URL, bytes, a ``PIL.Image``, a ``PreparedImage`` (e.g. a
document page's ``page.prepare()``), or a result made by a client (the image it was read from)."""

Box: TypeAlias = TextLine | Sequence[float]
"""A box: a :class:`~qwen_ocr.TextLine`, its 8-number ``location`` (four corners), or ``(left, top, right, bottom)``."""

DEFAULT_COLOR = "#e6194b"
"""The outline colour of :func:`draw_boxes` (a strong red)."""
DISPLAY_MAX_WIDTH = 1000
"""Widest page picture, in pixels, in the rich display (larger pages are shown downscaled)."""
PREVIEW_MAX_BYTES = 60_000
"""The largest page picture embedded in the rich display, in bytes: the picture is a JPEG (or PNG, when smaller)
made smaller until it fits. A notebook keeps every displayed result, so each one stays light."""
PREVIEW_HEIGHT = 360
"""The height, in CSS pixels, the page picture is shown at beside the reading, until it is clicked (then it takes
the whole width)."""
MAX_LISTED_LINES = 500
"""Lines listed in the rich display; the rest are counted."""
MAX_TEXT_CHARS = 20_000
"""Characters of text in the rich display (and a tenth of it in the plain-text view)."""

_MATH_OFF = "tex2jax_ignore mathjax_ignore"
_MATH_ON = "tex2jax_process mathjax_process"


# --------------------------------------------------------------------------------------------------------------
# Images and boxes


def as_image(image: ImageSource) -> Image.Image:
    """The pixels of ``image`` as a ``PIL.Image``, upright (files are turned by their EXIF orientation, as the
    client does before sending; a ``PIL.Image`` is taken as it is and returned as is).

    Raises:
        InvalidImageError: the image cannot be read (a remote URL, which would need a download; a corrupt file; a
            result that does not know its image).
    """
    if isinstance(image, OCRResult):
        found = result_image(image)
        if found is None:
            raise InvalidImageError(
                "this result does not know the image it was read from (results made by QwenOCR/AsyncQwenOCR do, "
                "unless the image was a URL; results from JSON or another process do not). Pass the image itself.",
                code="NoImage",
            )
        return found
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, PreparedImage):
        if image.is_remote:
            raise _remote_error()
        return _decode(_decode_data_url(image.url), "the prepared image")
    if isinstance(image, str):
        stripped = image.strip()
        lowered = stripped[:12].lower()
        if lowered.startswith(("http://", "https://", "oss://")):
            raise _remote_error()
        if lowered.startswith("data:"):
            return _decode(_decode_data_url(stripped), "data: URL")
        return _decode(_read_path(Path(stripped)), stripped)
    if isinstance(image, os.PathLike):
        return _decode(_read_path(Path(os.fspath(image))), os.fspath(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode(bytes(image), "bytes")
    raise InvalidImageError(
        f"cannot draw on a {type(image).__name__}; pass a path, bytes, a PIL.Image or an OCRResult.",
        code="UnsupportedInput",
    )


def result_image(result: OCRResult) -> Image.Image | None:
    """The image ``result`` was read from, decoded now, upright; ``None`` when it is not known or not readable."""
    source = result._image_source()
    if source is None:
        return None
    try:
        return as_image(source)
    except (InvalidImageError, OSError, ValueError):
        return None


def draw_boxes(
    image: ImageSource,
    lines: Iterable[Box] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    numbered: bool = True,
    color: str | tuple[int, int, int] = DEFAULT_COLOR,
    width: int | None = None,
    max_width: int | None = None,
) -> Image.Image:
    """Draw text boxes on a copy of ``image``; returns a new RGB ``PIL.Image`` (the input is never changed).

    Args:
        image: what to draw on (see :data:`ImageSource`). For an :class:`~qwen_ocr.OCRResult`, its own image, its
            ``lines`` and its ``image_size`` are the defaults.
        lines: the boxes (see :data:`Box`), in the pixels of ``image_size``; all of a result's lines by default.
            Boxes are clipped to the picture before they are drawn: any finite or infinite coordinate is fine (a
            box far outside is drawn up to the edge, or not at all); a box with a NaN coordinate is skipped with a
            warning (the others keep their numbers).
        image_size: ``(width, height)`` of the frame the boxes are in, when it is not the image's own size: boxes
            are scaled to the image. A result's ``image_size`` (for a PDF page, the page in points), or a
            ``PreparedImage``'s ``original_size``, is used by default.
        numbered: label each box with its 1-based number (the order of ``lines``: reading order for a result).
        color: the outline and label colour (any Pillow colour).
        width: outline width in pixels of the returned image (default: about 1/500 of its longer side).
        max_width: downscale the picture to at most this many pixels wide before drawing (for display).

    Example::

        draw_boxes(result)                                  # a result of advanced_recognition or the local provider
        draw_boxes("page.png", [(10, 10, 200, 40)], numbered=False)

    Raises:
        InvalidImageError: the image cannot be read (see :func:`as_image`).
        InvalidArgumentError: a box is not a TextLine, 8 numbers or 4 numbers.
    """
    frame = image_size
    if isinstance(image, OCRResult):
        if lines is None:
            lines = image.lines
        if frame is None:
            frame = image.image_size
    elif isinstance(image, PreparedImage) and frame is None:
        frame = image.original_size
    picture = as_image(image)
    boxes = [_corners(box) for box in (lines or [])]
    canvas = _display_copy(picture, max_width)
    fw, fh = frame if frame is not None else picture.size
    sx = canvas.width / fw if fw > 0 else 1.0
    sy = canvas.height / fh if fh > 0 else 1.0
    stroke = width if width is not None else max(1, round(max(canvas.size) / 500))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, round(max(canvas.size) / 70))) if numbered else None
    # Clip to the picture plus a margin wider than the outline: the edges clipping adds lie outside the picture.
    margin = stroke + 2
    bounds = (-margin, -margin, canvas.width - 1 + margin, canvas.height - 1 + margin)
    skipped = 0
    for number, corners in enumerate(boxes, start=1):
        points = [(_finite(x * sx), _finite(y * sy)) for x, y in corners]
        if any(math.isnan(v) for point in points for v in point):
            skipped += 1
            continue
        visible = _clip_polygon(points, bounds)
        if len(visible) >= 3:
            draw.polygon(visible, outline=color, width=stroke)
        elif len(visible) == 2:
            draw.line(visible, fill=color, width=stroke)
        if font is not None:
            _label(draw, str(number), [_clamp(points[0], bounds)], font, color, canvas.size)
    if skipped:
        warnings.warn(
            f"draw_boxes: {skipped} box{'es' if skipped != 1 else ''} with NaN coordinates not drawn (a box needs "
            "numbers; infinite and out-of-picture ones are clipped to the picture).",
            stacklevel=2,
        )
    return canvas


def _remote_error() -> InvalidImageError:
    return InvalidImageError(
        "cannot draw on a remote URL without downloading it; pass the downloaded file, its bytes or a PIL.Image.",
        code="UnsupportedURL",
    )


def _decode(data: bytes, source: str) -> Image.Image:
    im, fmt = open_checked(data, source)
    decode_checked(im, source, fmt)
    return ImageOps.exif_transpose(im)


def _corners(box: Box) -> list[tuple[float, float]]:
    try:
        values = [_coordinate(v) for v in (box.location if isinstance(box, TextLine) else box)]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"a box is a TextLine, 8 numbers (four corners) or 4 (left, top, right, bottom); got {box!r} ({exc}).",
            code="InvalidBox",
        ) from None
    if len(values) == 8:
        return [(values[i], values[i + 1]) for i in range(0, 8, 2)]
    if len(values) == 4:
        left, top, right, bottom = values
        return [(left, top), (right, top), (right, bottom), (left, bottom)]
    raise InvalidArgumentError(
        f"a box is a TextLine, 8 numbers (four corners) or 4 (left, top, right, bottom); got {box!r}",
        code="InvalidBox",
    )


def _coordinate(value: Any) -> float:
    """A coordinate as a float; an integer too large for one is infinitely far (it is clipped anyway)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


_FAR = 1e100
"""Where infinite coordinates are put: far enough to be off any picture, finite so that clipping can compute."""


def _finite(value: float) -> float:
    return value if math.isnan(value) else max(-_FAR, min(_FAR, value))


def _clamp(point: tuple[float, float], bounds: tuple[float, float, float, float]) -> tuple[float, float]:
    left, top, right, bottom = bounds
    return (max(left, min(right, point[0])), max(top, min(bottom, point[1])))


def _clip_polygon(
    points: Sequence[tuple[float, float]], bounds: tuple[float, float, float, float]
) -> list[tuple[float, float]]:
    """The part of a polygon inside ``bounds`` (``left, top, right, bottom``), by Sutherland-Hodgman. Pillow wraps
    coordinates past 2**31 around (such a box is drawn in the wrong place); clipped first, every box is drawn
    within the picture and costs the same whatever its coordinates."""
    left, top, right, bottom = bounds

    def at_x(x: float) -> Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]]:
        return lambda p, q: (x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]))

    def at_y(y: float) -> Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]]:
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y)

    edges: list[tuple[Callable[[tuple[float, float]], bool], Callable[..., tuple[float, float]]]] = [
        (lambda p: p[0] >= left, at_x(left)),
        (lambda p: p[0] <= right, at_x(right)),
        (lambda p: p[1] >= top, at_y(top)),
        (lambda p: p[1] <= bottom, at_y(bottom)),
    ]
    out = list(points)
    for inside, cross in edges:
        if not out:
            break
        kept: list[tuple[float, float]] = []
        for i, current in enumerate(out):
            previous = out[i - 1]
            if inside(current):
                if not inside(previous):
                    kept.append(cross(previous, current))
                kept.append(current)
            elif inside(previous):
                kept.append(cross(previous, current))
        out = kept
    return out


def _display_copy(picture: Image.Image, max_width: int | None) -> Image.Image:
    """An RGB copy, downscaled to ``max_width`` when wider."""
    work = picture if picture.mode in ("RGB", "L") else picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    if work.mode == "RGBA":
        background = Image.new("RGB", work.size, (255, 255, 255))
        background.paste(work, mask=work.getchannel("A"))
        work = background
    if max_width is not None and work.width > max_width >= 1:
        height = max(1, round(work.height * max_width / work.width))
        work = work.resize((max_width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return work.convert("RGB") if work is picture or work.mode != "RGB" else work


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # pragma: no cover - Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _label(
    draw: ImageDraw.ImageDraw,
    text: str,
    points: Sequence[tuple[float, float]],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    color: str | tuple[int, int, int],
    size: tuple[int, int],
) -> None:
    """The number on a filled tag by the box's first corner: left of the box when there is room (where it covers
    no text), else above it, else inside it."""
    x, y = points[0]
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = max(1, th // 5)
    box_w, box_h = tw + 2 * pad, th + 2 * pad
    gap = max(1, th // 4)
    if x - gap - box_w >= 0:
        x0, y0 = x - gap - box_w, y
    elif y - gap - box_h >= 0:
        x0, y0 = x, y - gap - box_h
    else:
        x0, y0 = x, y
    x0 = min(max(0.0, x0), max(0.0, size[0] - box_w))
    y0 = min(max(0.0, y0), max(0.0, size[1] - box_h))
    draw.rectangle((x0, y0, x0 + box_w, y0 + box_h), fill=color)
    draw.text((x0 + pad - left, y0 + pad - top), text, fill="white", font=font)


def _encoded(picture: Image.Image, quality: int) -> tuple[bytes, str]:
    """The picture as PNG or JPEG, whichever is smaller (PNG for flat drawings, JPEG for scans and photos)."""
    png = io.BytesIO()
    picture.save(png, format="PNG", optimize=False)
    jpeg = io.BytesIO()
    picture.save(jpeg, format="JPEG", quality=quality, optimize=True)
    return (png.getvalue(), "image/png") if png.tell() <= jpeg.tell() else (jpeg.getvalue(), "image/jpeg")


def preview(picture: Image.Image, *, max_bytes: int = PREVIEW_MAX_BYTES) -> tuple[bytes, str, Image.Image]:
    """The picture encoded in at most ``max_bytes``: ``(data, mime type, the picture at the size encoded)``.

    JPEG at quality 75 (or PNG when smaller); when that is too large, quality 60, then the picture is scaled down
    step by step (never below 200 px wide: a picture that small is returned whatever its size).

    >>> data, mime, shown = preview(Image.new("RGB", (1000, 1400), "white"))
    >>> len(data) <= PREVIEW_MAX_BYTES, shown.size
    (True, (1000, 1400))
    """
    work = picture if picture.mode == "RGB" else picture.convert("RGB")
    while True:
        for quality in (75, 60):
            data, mime = _encoded(work, quality)
            if len(data) <= max_bytes:
                return data, mime, work
        if work.width <= 200:
            return data, mime, work
        scale = max(0.5, min(0.9, math.sqrt(max_bytes / len(data))))
        width = max(200, round(work.width * scale))
        height = max(1, round(work.height * width / work.width))
        work = work.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --------------------------------------------------------------------------------------------------------------
# HTML and text


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_VIEW = "qwen-ocr-view"
"""The class of every view's outermost element: the style rules below are scoped under it."""

# Specific enough to win over a notebook's own rules: JupyterLab right-aligns every cell of HTML output
# (":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td", one class and a :not() more than ".x td") and centres
# tables; ".qwen-ocr-view table.qwen-ocr-table td" outweighs both without !important.
_STYLE = (
    "<style>"
    f".{_VIEW} table.qwen-ocr-table{{border-collapse:collapse;margin:0.3em 0;table-layout:auto;width:auto;"
    "font-size:inherit}"
    f".{_VIEW} table.qwen-ocr-table td,.{_VIEW} table.qwen-ocr-table th{{border:1px solid #999;padding:2px 6px;"
    "vertical-align:top;text-align:left;white-space:normal;line-height:1.35}"
    f".{_VIEW} table.qwen-ocr-table th{{font-weight:bold}}"
    f".{_VIEW} details.qwen-ocr-page{{flex:0 1 340px;min-width:200px;margin:0}}"
    f".{_VIEW} details.qwen-ocr-page[open]{{flex-basis:100%}}"
    f".{_VIEW} details.qwen-ocr-page>summary{{list-style:none;cursor:zoom-in;display:block}}"
    f".{_VIEW} details.qwen-ocr-page>summary::-webkit-details-marker{{display:none}}"
    f".{_VIEW} details.qwen-ocr-page[open]>summary{{cursor:zoom-out}}"
    f".{_VIEW} details.qwen-ocr-page[open] img{{max-height:none!important}}"
    f".{_VIEW} .qwen-ocr-when-open{{display:none}}"
    f".{_VIEW} details[open] .qwen-ocr-when-open{{display:inline}}"
    f".{_VIEW} details[open] .qwen-ocr-when-closed{{display:none}}"
    "</style>"
)


def _blank(row: Sequence[Any]) -> bool:
    return all(not cell.text.strip() for cell in row)


def _without_blank_rows(table: Table) -> tuple[Table, int]:
    """The table without its blank rows (no cell with text: a model cut off mid-table often writes a few), and how
    many were left out; a cell spanning down over a left-out row spans one row less."""
    from .results import _spans

    blank = [_blank(row) for row in table.rows]
    dropped = sum(blank)
    if not dropped:
        return table, 0
    spans = _spans(table.rows)
    rows = []
    for r, row in enumerate(table.rows):
        if blank[r]:
            continue
        cells = []
        for cell, (rowspan, colspan) in zip(row, spans[r], strict=True):
            covered = sum(blank[r + 1 : r + rowspan])
            cells.append(cell.model_copy(update={"rowspan": rowspan - covered, "colspan": colspan}))
        rows.append(cells)
    return table.model_copy(update={"rows": rows}), dropped


def _table_block(table: Table) -> str:
    """A table for the display: spans clamped to the table (a browser lays out what it is given), blank rows left
    out (as in :meth:`Table.to_markdown`); an oversized table's cells each once, under a note saying why."""
    table, dropped = _without_blank_rows(table)
    reason = table.oversized_reason
    body = table.to_html(spans="clamped" if reason is None else "none")
    body = body.replace("<table>", '<table class="qwen-ocr-table">', 1)
    if reason is not None:
        note = f"Table too large to lay out: {reason}. Its cells are shown once each, without their spans."
        body = f"<div><i>{_e(note)}</i></div>{body}"
    notes = []
    if table.truncated:
        notes.append(f"cut off at max_tokens: {table.n_rows} complete row{'s' if table.n_rows != 1 else ''} kept")
    if dropped:
        notes.append(f"{dropped} blank row{'s' if dropped != 1 else ''} left out")
    if notes:
        body += f"<div><i>{_e('; '.join(notes))}</i></div>"
    return body


def table_html(table: Table) -> str:
    """A table as self-contained HTML: cells escaped, spans kept (clamped to the table's extent), a note when the
    output was cut off inside it; a table too large to lay out (:attr:`Table.oversized`) is shown cell by cell
    without its spans, under a note."""
    return f'<div class="{_VIEW} {_MATH_OFF}">{_STYLE}{_table_block(table)}</div>'


def _summary(result: OCRResult) -> list[str]:
    facts = [result.task.value if result.task is not None else "plain text / custom prompt"]
    if result.model:
        facts.append(result.model)
    if result.provider:
        facts.append(f"provider {result.provider}")
    if result.image_size is not None:
        facts.append(f"{result.image_size[0]} x {result.image_size[1]}")
    counts = [
        (len(result.lines), "line"),
        (len(result.tables), "table"),
        (len(result.formulas), "formula"),
    ]
    facts.extend(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n)
    if result.fields:
        facts.append(f"{len(field_rows(result.fields))} fields")
    usage = result.usage
    if usage.input_tokens or usage.output_tokens:
        facts.append(f"{usage.input_tokens:,} tokens in, {usage.output_tokens:,} out")
    if result.metadata.get("cache") == "hit":
        facts.append("from the cache")
    return facts


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit:,} more characters)"


def _math(latex: str) -> str:
    """A display formula for MathJax/KaTeX: ``$$...$$`` in an element marked for math, the source escaped."""
    return f'<div class="{_MATH_ON}">$${_e(latex.strip())}$$</div>'


def _structure_html(result: OCRResult) -> str:
    """``document_parsing`` LaTeX as headings, paragraphs, lists, tables and typeset formulas; the source below."""
    from .structure import blocks_from_result

    parts: list[str] = []
    for block in blocks_from_result(result):
        if block.kind == "title":
            parts.append(f"<h3>{_e(block.text)}</h3>")
        elif block.kind == "heading":
            level = min(6, 3 + max(1, block.level))
            parts.append(f"<h{level}>{_e(block.text)}</h{level}>")
        elif block.kind == "list_item":
            parts.append(f'<div style="margin-left:{1.2 * max(1, block.level):.1f}em">&bull; {_e(block.text)}</div>')
        elif block.kind == "table" and block.table is not None:
            parts.append(_table_block(block.table))
        elif block.kind == "formula":
            parts.append(_math(block.latex or block.text))
        elif block.kind == "caption":
            parts.append(f"<p><i>{_e(block.text)}</i></p>")
        elif block.text:
            parts.append(f"<p>{_e(block.text)}</p>")
    source = _clip(result.latex or result.text, MAX_TEXT_CHARS)
    parts.append(f"<details><summary>LaTeX source</summary><pre>{_e(source)}</pre></details>")
    return "".join(parts)


def _cut_off(result: OCRResult) -> str:
    if result.finish_reason == "length":
        return "The output was cut off at max_tokens (finish_reason='length')."
    return "The output ends inside a table: it was cut off."


def _content_html(result: OCRResult) -> str:
    parts: list[str] = []
    if result.truncated:
        parts.append(f"<div><b>{_e(_cut_off(result))}</b></div>")
    if result.task is Task.DOCUMENT_PARSING and (result.latex or result.text):
        parts.append(_structure_html(result))
        return "".join(parts)
    if result.lines:
        shown = result.lines[:MAX_LISTED_LINES]
        items = "".join(f"<li>{_e(line.text)}</li>" for line in shown)
        more = len(result.lines) - len(shown)
        parts.append(f'<ol style="margin:0;padding-left:2.5em">{items}</ol>')
        if more:
            parts.append(f"<div><i>... and {more:,} more lines</i></div>")
    parts.extend(_table_block(table) for table in result.tables)
    if result.fields:
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in field_rows(result.fields))
        parts.append(f'<table class="qwen-ocr-table"><tr><th>field</th><th>value</th></tr>{rows}</table>')
    for formula in result.formulas:
        parts.append(_math(formula))
        parts.append(f'<pre style="font-size:85%;margin:0 0 0.6em 0">{_e(formula)}</pre>')
    if not (result.lines or result.tables or result.fields or result.formulas):
        parts.append(f'<pre style="white-space:pre-wrap;margin:0">{_e(_clip(result.text, MAX_TEXT_CHARS))}</pre>')
    return "".join(parts)


def _figure(result: OCRResult, max_width: int) -> str:
    """The page picture (with numbered boxes when the result has lines), small: at most :data:`PREVIEW_MAX_BYTES`
    embedded, shown :data:`PREVIEW_HEIGHT` px high beside the reading; a click opens it to the whole width."""
    picture = result_image(result)
    if picture is None:
        return ""
    try:
        drawn = draw_boxes(picture, result.lines, image_size=result.image_size, max_width=max_width)
        data, mime, shown = preview(drawn)
    except (OSError, ValueError):
        return ""
    boxes = f", {len(result.lines)} numbered box{'es' if len(result.lines) != 1 else ''}" if result.lines else ""
    caption = (
        f'<div style="font:12px sans-serif;color:#666;margin-top:2px">the page{_e(boxes)} &middot; '
        '<span class="qwen-ocr-when-closed">click to enlarge</span>'
        '<span class="qwen-ocr-when-open">click to shrink</span></div>'
    )
    return (
        '<details class="qwen-ocr-page"><summary title="click to enlarge or shrink">'
        f'<img src="{_data_uri(data, mime)}" width="{shown.width}" height="{shown.height}" '
        f'style="max-width:100%;max-height:{PREVIEW_HEIGHT}px;width:auto;height:auto;border:1px solid #ccc" '
        f'alt="the page{_e(boxes)}"/>{caption}</summary></details>'
    )


def _reading_width(result: OCRResult) -> int:
    """The width the reading asks for before the page picture goes beside it: tables and LaTeX structure want more
    (at notebook width, about 900 px, the picture then goes below them rather than squeeze their columns)."""
    wide = result.tables or (result.task is Task.DOCUMENT_PARSING and (result.latex or result.text))
    return 560 if wide else 380


def result_html(result: OCRResult, *, max_width: int = DISPLAY_MAX_WIDTH) -> str:
    """The rich view of a result as an HTML fragment (what Jupyter shows): everything from the model is escaped.

    The reading comes first (lines, tables, fields, formulas, text; on the left), the page picture beside it (below
    it when the output is narrow): a small preview (at most :data:`PREVIEW_MAX_BYTES`, downscaled from at most
    ``max_width`` pixels wide, with numbered boxes when the result has lines), :data:`PREVIEW_HEIGHT` px high until
    clicked. It is included when the result knows its image and it can be read; nothing else of the result's
    origin (no request id, no path). Table cells are left-aligned, also under JupyterLab's right-aligning rule.
    """
    header = " &middot; ".join(_e(fact) for fact in _summary(result))
    return (
        f'<div class="qwen-ocr-result {_VIEW} {_MATH_OFF}">{_STYLE}'
        f'<div style="font-family:sans-serif;margin-bottom:0.4em"><b>OCRResult</b> &middot; {header}</div>'
        '<div style="display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start">'
        f'<div style="flex:1 1 {_reading_width(result)}px;min-width:240px;overflow-x:auto">'
        f"{_content_html(result)}</div>"
        f"{_figure(result, max_width)}</div></div>"
    )


def result_text(result: OCRResult, *, limit: int = MAX_TEXT_CHARS // 10) -> str:
    """A plain-text view of a result: a one-line summary, then its lines, tables, fields, formulas or text."""
    out = ["OCRResult: " + ", ".join(_summary(result))]
    if result.truncated:
        out.append(f"({_cut_off(result)})")
    if result.task is Task.DOCUMENT_PARSING:
        out.append(result.latex or result.text)
    else:
        if result.lines:
            out.extend(f"{i:>3}. {line.text}" for i, line in enumerate(result.lines, start=1))
        out.extend(table.to_markdown() for table in result.tables)
        if result.fields:
            out.extend(f"{k}: {v}" for k, v in field_rows(result.fields))
        out.extend(f"$$ {formula} $$" for formula in result.formulas)
        if not (result.lines or result.tables or result.fields or result.formulas):
            out.append(result.text)
    return _clip("\n".join(out), limit)


def result_mimebundle(
    result: OCRResult, include: Collection[str] | None = None, exclude: Collection[str] | None = None
) -> dict[str, str]:
    """The MIME bundle of a result for IPython: ``text/plain`` always, ``text/html``, and ``text/latex`` for
    formulas (front ends that prefer LaTeX to HTML, e.g. nbconvert to PDF)."""

    def wanted(mime: str) -> bool:
        return (include is None or mime in include) and (exclude is None or mime not in exclude)

    bundle: dict[str, str] = {}
    if wanted("text/plain"):
        bundle["text/plain"] = result_text(result)
    if wanted("text/html"):
        bundle["text/html"] = result_html(result)
    if result.formulas and result.task is Task.FORMULA_RECOGNITION and wanted("text/latex"):
        bundle["text/latex"] = "\n".join(f"$${formula.strip()}$$" for formula in result.formulas)
    return bundle
