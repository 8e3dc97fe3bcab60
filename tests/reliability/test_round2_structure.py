"""Reliability round 2, result structure: tables whose spans would expand without bound, and boxes with extreme
coordinates.

- A staircase of ``rowspan=1000 colspan=1000`` cells (11 KB of model output) used to expand into a grid of
  62 million slots: 260 million characters of ``page_content`` and over 1 GB of memory, in the result's Markdown,
  the LaTeX reader, the LangChain documents and the LlamaIndex node parser. Past ``MAX_TABLE_CELLS`` slots (or
  ``MAX_TABLE_CHARS`` characters of Markdown) a table is not laid out: its text is a note and its HTML, and
  ``Table.oversized`` says so.
- Boxes with huge, negative, infinite or NaN coordinates are clipped to the image before they are drawn (Pillow wraps
  coordinates past 2**31 around, drawing the box in the wrong place), NaN boxes are skipped with a warning, and the
  results' box mapping clips boxes to the image they belong to.

Everything runs under a hang guard (``time_budget``: a SIGALRM that raises a ``BaseException``); no timing is
asserted. The hypothesis tests accept a result or a :class:`~qwen_ocr.QwenOCRError`, nothing else.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from qwen_ocr import OCRResult, QwenOCRError, Table, TableCell, TextLine
from qwen_ocr.reading import PageResult
from qwen_ocr.results import build_result
from qwen_ocr.structure import blocks_from_result, latex_to_blocks
from qwen_ocr.tasks import Task
from qwen_ocr.viz import draw_boxes, result_html, result_text, table_html

from ._support import time_budget

BUDGET = 15.0  # seconds: a hang guard only (the fixed code takes well under a second for each of these)
MB = 1_000_000
NOTE = "too large to lay out"

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def staircase_html(steps: int = 250, span: int = 1000) -> str:
    """Every row one cell spanning ``span`` rows and columns: each step starts right of the one above it."""
    rows = "".join(f'<tr><td rowspan="{span}" colspan="{span}">{i}</td></tr>' for i in range(steps))
    return f"<table>{rows}</table>"


def staircase_latex(steps: int = 250, span: int = 1000) -> str:
    rows = "".join(f"\\multicolumn{{{span}}}{{c}}{{\\multirow{{{span}}}{{*}}{{{i}}}}} \\\\\n" for i in range(steps))
    return "\\begin{tabular}{c}\n" + rows + "\\end{tabular}"


def page(result: OCRResult) -> PageResult:
    return PageResult(source="scan.png", index=0, label="1", total_pages=1, result=result)


def settings_for(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --------------------------------------------------------------------------------------------------------------
# 5. Table spans


def test_the_staircase_is_11_kb_of_output() -> None:
    assert 10_000 < len(staircase_html()) < 13_000
    assert 10_000 < len(staircase_latex()) < 13_000


def test_staircase_html_table_is_kept_as_html_with_a_note() -> None:
    raw = staircase_html()
    with time_budget(BUDGET):
        result = build_result(raw, task=Task.TABLE_PARSING, model="m")
        (table,) = result.tables
        markdown = table.to_markdown()
        blocks = blocks_from_result(result)
        shown = result_text(result, limit=10 * MB)
    assert len(markdown) < MB
    assert NOTE in markdown
    assert table.to_html() in markdown.replace("\n", "")  # every cell is still there, spans as written
    assert table.n_rows == 250
    assert [b.kind for b in blocks] == ["table"] and NOTE in blocks[0].text and len(blocks[0].text) < MB
    assert NOTE in shown and len(shown) < MB


def test_an_oversized_table_says_so_and_its_grid_is_a_typed_error() -> None:
    from qwen_ocr.errors import TableTooLargeError
    from qwen_ocr.results import MAX_TABLE_CELLS

    with time_budget(BUDGET):
        (table,) = build_result(staircase_html(), task=Task.TABLE_PARSING, model="m").tables
        assert table.oversized
        assert table.oversized_reason is not None and f"{MAX_TABLE_CELLS:,}" in table.oversized_reason
        with pytest.raises(TableTooLargeError, match="to_html") as caught:
            table.grid()
    assert isinstance(caught.value, QwenOCRError) and caught.value.code == "TableTooLarge"
    assert table.n_cols > 0  # an upper bound, computed without laying the table out


def test_staircase_latex_table_is_kept_with_its_source_and_a_note() -> None:
    latex = staircase_latex()
    with time_budget(BUDGET):
        blocks = latex_to_blocks(latex)
        result = build_result(latex, task=Task.DOCUMENT_PARSING, model="m")
        via_result = blocks_from_result(result)
    (block,) = [b for b in blocks if b.kind == "table"]
    assert block.table is not None and block.table.oversized
    assert len(block.text) < MB and NOTE in block.text
    assert block.latex is not None and block.latex.startswith("\\begin{tabular}")  # the LaTeX source is kept
    assert [b.text for b in via_result] == [b.text for b in blocks]


def test_spans_past_the_table_are_clamped_not_expanded() -> None:
    """A single huge span is clamped to the table's real extent: a title row across a three-column table is not
    1,000 columns wide, a row span past the last row ends there."""
    with time_budget(BUDGET):
        (table,) = build_result(
            '<table><tr><td colspan="1000">Title</td></tr><tr><td>a</td><td>b</td><td rowspan="1000">c</td></tr>'
            "<tr><td>d</td><td>e</td></tr></table>",
            task=Task.TABLE_PARSING,
            model="m",
        ).tables
        grid = table.grid()
    assert not table.oversized
    assert len(grid) == 3 and all(len(row) <= 6 for row in grid)  # not 1,000 columns
    assert grid[0][0] == "Title" and grid[1][:3] == ["a", "b", "c"] and grid[2][:3] == ["d", "e", "c"]


def test_staircase_langchain_documents_are_bounded() -> None:
    from langchain_qwen_ocr.document_loaders.documents import (
        SingleDocumentBuilder,
        element_documents,
        page_document,
    )

    for raw, task in [(staircase_html(), Task.TABLE_PARSING), (staircase_latex(), Task.DOCUMENT_PARSING)]:
        with time_budget(BUDGET):
            result = build_result(raw, task=task, model="m")
            doc = page_document(page(result))
            elements = element_documents(page(result))
            builder = SingleDocumentBuilder("scan.png")
            builder.add(page(result))
            single = builder.build()
        assert len(doc.page_content) < MB and NOTE in doc.page_content, task
        assert len(single.page_content) < MB and NOTE in single.page_content, task
        (table_doc,) = [d for d in elements if d.metadata["category"] == "Table"]
        assert len(table_doc.page_content) < MB and NOTE in table_doc.page_content
        assert table_doc.metadata["table_oversized"] is True
        json.dumps(doc.metadata)
        if task is Task.TABLE_PARSING:
            assert doc.metadata["tables_oversized"] == [0]
            assert single.metadata["tables_oversized"] == [[0, 0]]  # [page, table]


def test_staircase_llamaindex_node_parser_is_bounded() -> None:
    from llama_index.core.schema import Document

    from llamaindex_qwen_ocr import QwenOCRNodeParser
    from qwen_ocr.tables import TableLayout

    docs = [
        Document(id_="html", text="Before.\n\n" + staircase_html() + "\n\nAfter."),
        Document(id_="latex", text=staircase_latex(), metadata={"task": "document_parsing"}),
    ]
    for doc in docs:
        with time_budget(BUDGET):
            nodes = QwenOCRNodeParser().get_nodes_from_documents([doc])
        total = sum(len(n.get_content()) for n in nodes)
        assert total < MB, doc.id_
        tables = [n for n in nodes if n.metadata["node_kind"] == "table"]
        assert len(tables) == 1, doc.id_
        assert NOTE in tables[0].get_content()
        assert tables[0].metadata["table_oversized"] is True
        assert tables[0].metadata["n_rows"] == 249  # body rows: the first row is the header
        summaries = [n for n in nodes if n.metadata["node_kind"] == "table_summary"]
        assert len(summaries) == 1 and NOTE in summaries[0].get_content()
    with time_budget(BUDGET):
        (table,) = build_result(staircase_html(), task=Task.TABLE_PARSING, model="m").tables
        layout = TableLayout.of(table)
    assert layout.oversized and len(layout.body) == 249


def test_staircase_notebook_display_is_bounded_and_drops_the_spans() -> None:
    with time_budget(BUDGET):
        result = build_result(staircase_html(), task=Task.TABLE_PARSING, model="m")
        (table,) = result.tables
        shown = result_html(result)
        alone = table_html(table)
    for html in (shown, alone):
        assert len(html) < MB and NOTE in html
        assert "rowspan" not in html and "colspan" not in html  # a browser would lay the spans out


def test_a_moderate_table_keeps_its_spans_in_the_display_but_clamped() -> None:
    table = Table(rows=[[TableCell(text="T", colspan=1000, rowspan=1000)], [TableCell(text="a"), TableCell(text="b")]])
    html = table_html(table)
    assert 'colspan="1000"' not in html and 'rowspan="1000"' not in html
    assert "<td>a</td>" in html
    assert table.to_html().count('colspan="1000"') == 1  # the data keeps what the model wrote


# -- hypothesis over span-heavy tables

SPANS = st.one_of(
    st.sampled_from([1, 1, 1, 2, 3, 7, 50, 999, 1000]),
    st.integers(1, 10**9),
)
CELL_TEXT = st.lists(st.sampled_from(["a", "b", "7", "|", " ", "<br>", "x" * 40]), max_size=8).map("".join)


@st.composite
def html_tables(draw: st.DrawFn) -> str:
    rows = draw(
        st.lists(
            st.lists(st.tuples(CELL_TEXT, SPANS, SPANS, st.booleans()), min_size=1, max_size=6), min_size=1, max_size=25
        )
    )
    parts = ["<table>"]
    for row in rows:
        parts.append("<tr>")
        for text, rowspan, colspan, header in row:
            tag = "th" if header else "td"
            parts.append(f'<{tag} rowspan="{rowspan}" colspan="{colspan}">{text}</{tag}>')
        parts.append("</tr>")
    if draw(st.booleans()):
        parts.append("</table>")
    return "".join(parts)


@st.composite
def latex_tables(draw: st.DrawFn) -> str:
    rows = draw(
        st.lists(
            st.lists(st.tuples(CELL_TEXT, SPANS, SPANS, st.sampled_from(["plain", "col", "row", "both"])), max_size=6),
            min_size=1,
            max_size=25,
        )
    )
    lines = []
    for row in rows:
        cells = []
        for text, rowspan, colspan, kind in row:
            text = text.replace("<br>", " ").replace("|", "/")
            if kind == "row":
                text = f"\\multirow{{{rowspan}}}{{*}}{{{text}}}"
            elif kind in ("col", "both"):
                inner = f"\\multirow{{{rowspan}}}{{*}}{{{text}}}" if kind == "both" else text
                text = f"\\multicolumn{{{colspan}}}{{c}}{{{inner}}}"
            cells.append(text)
        lines.append(" & ".join(cells) + " \\\\")
    end = "\\end{tabular}" if draw(st.booleans()) else ""
    return "\\begin{tabular}{" + "c" * 6 + "}\n" + "\n".join(lines) + "\n" + end


def _check_tables(tables: list[Table]) -> None:
    for table in tables:
        markdown = table.to_markdown()
        assert len(markdown) < MB
        if table.oversized:
            assert NOTE in markdown
            with pytest.raises(QwenOCRError):
                table.grid()
        else:
            assert len(table.grid()) == table.n_rows
        assert len(table_html(table)) < MB


@settings_for(60)
@given(raw=html_tables())
@example(raw=staircase_html(40))
@example(raw=staircase_html(25, span=10**9))
def test_span_heavy_html_tables_stay_bounded(raw: str) -> None:
    from langchain_qwen_ocr.document_loaders.documents import page_text

    with time_budget(BUDGET):
        try:
            result = build_result(raw, task=Task.TABLE_PARSING, model="m")
            _check_tables(result.tables)
            text = page_text(result)
            blocks = blocks_from_result(result)
            shown = result_html(result)
        except QwenOCRError:
            return
    assert len(text) < MB + 10 * len(raw)
    assert all(len(b.text) < MB for b in blocks)
    assert len(shown) < 2 * MB


@settings_for(40)
@given(raw=latex_tables())
@example(raw=staircase_latex(40))
def test_span_heavy_latex_tables_stay_bounded(raw: str) -> None:
    from langchain_qwen_ocr.document_loaders.documents import page_text

    with time_budget(BUDGET):
        try:
            blocks = latex_to_blocks(raw)
            _check_tables([b.table for b in blocks if b.table is not None])
            text = page_text(build_result(raw, task=Task.DOCUMENT_PARSING, model="m"))
        except QwenOCRError:
            return
    assert all(len(b.text) < MB for b in blocks)
    assert len(text) < MB + 10 * len(raw)


@settings_for(15)
@given(raw=st.one_of(html_tables(), latex_tables()))
@example(raw=staircase_html(100))
def test_span_heavy_tables_through_the_node_parser_stay_bounded(raw: str) -> None:
    from llama_index.core.schema import Document

    from llamaindex_qwen_ocr import QwenOCRNodeParser

    meta = {"task": "document_parsing"} if raw.startswith("\\begin") else {}
    with time_budget(BUDGET):
        try:
            nodes = QwenOCRNodeParser().get_nodes_from_documents([Document(id_="d", text=raw, metadata=meta)])
        except QwenOCRError:
            return
    assert all(len(n.get_content()) < MB for n in nodes)


# --------------------------------------------------------------------------------------------------------------
# 14. Boxes with extreme coordinates


def _is_red(pixel: Any) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g < 80 and b < 80


def test_a_box_far_past_the_image_is_drawn_clipped_where_it_is() -> None:
    image = Image.new("RGB", (200, 100), WHITE)
    with time_budget(BUDGET):
        right = draw_boxes(image, [(10, 10, 1e12, 50)], numbered=False, color=RED, width=1)
        left = draw_boxes(image, [(-1e12, 10, 150, 50)], numbered=False, color=RED, width=1)
        huge_int = draw_boxes(image, [(10, 10, 10**400, 50)], numbered=False, color=RED, width=1)
    for drawn in (right, huge_int):
        assert drawn.size == image.size
        # the top and bottom edges run to the right border; the left edge is at x=10; nothing left of it
        assert _is_red(drawn.getpixel((150, 10))) and _is_red(drawn.getpixel((199, 50)))
        assert _is_red(drawn.getpixel((10, 30)))
        assert not _is_red(drawn.getpixel((5, 30))) and not _is_red(drawn.getpixel((100, 30)))
    assert _is_red(left.getpixel((0, 10))) and _is_red(left.getpixel((150, 30)))
    assert not _is_red(left.getpixel((170, 30)))


def test_extreme_coordinates_are_clipped_or_skipped_and_drawing_finishes() -> None:
    image = Image.new("RGB", (320, 240), WHITE)
    inf, nan = math.inf, math.nan
    boxes: list[Any] = [
        (1e9, 1e9, 2e9, 2e9),
        (-1e9, -1e9, 1e9, 1e9),
        (0, 0, inf, 50),
        (-inf, -inf, inf, inf),
        (5, 5, 1e9, -1e9, -1e9, 1e9, 7, 9),
        (10, 10, 60, 40),
    ]
    boxes += [(i % 300, -1e9, 1e9, i % 200) for i in range(2000)]  # many boxes
    with time_budget(BUDGET):
        drawn = draw_boxes(image, boxes)
        with pytest.warns(UserWarning, match="NaN"):
            with_nan = draw_boxes(image, [(nan, 0, 10, 10), (10, 10, 60, 40), (0, nan, 1e9, 5)], numbered=False)
    assert drawn.size == image.size and with_nan.size == image.size
    assert _is_red(with_nan.getpixel((10, 25)))  # the good box is drawn


def test_boxes_that_are_not_numbers_are_a_typed_error() -> None:
    from qwen_ocr.errors import InvalidArgumentError

    image = Image.new("RGB", (32, 32), WHITE)
    for bad in [("a", 0, 1, 1), (1, 2, 3), object()]:
        with pytest.raises(InvalidArgumentError):
            draw_boxes(image, [bad])


def test_result_boxes_are_clipped_to_the_image() -> None:
    words = [
        {"text": "far", "location": [10, 10, 5e8, 10, 5e8, 4e8, 10, 4e8], "rotate_rect": [2e8, 2e8, 4e8, 5e8, 0]},
        {"text": "near", "location": [-3, 2, 40, 2, 40, 20, -3, 20]},
        {"text": "in", "location": [1, 1, 9, 1, 9, 9, 1, 9]},
    ]
    result = build_result("x", task=Task.ADVANCED_RECOGNITION, model="m", words_info=words, image_size=(100, 50))
    assert [line.bbox for line in result.lines] == [(10, 10, 100, 50), (0, 2, 40, 20), (1, 1, 9, 9)]
    assert result.metadata["boxes_clipped"] == 2
    # the OpenAI-compatible mode: boxes in the text, normalised to 0..1000, huge ones clipped
    body = json.dumps([{"text": "wide", "rotate_rect": [500, 500, 9e8, 9e8, 0]}])
    compat = build_result(body, task=Task.ADVANCED_RECOGNITION, model="m", image_size=(100, 50))
    (line,) = compat.lines
    left, top, right, bottom = line.bbox
    assert 0 <= left <= right <= 100 and 0 <= top <= bottom <= 50
    assert compat.metadata["boxes_clipped"] == 1
    plain = build_result(body, task=Task.ADVANCED_RECOGNITION, model="m")  # no image size: the 0..1000 square
    assert all(0 <= v <= 1000 for v in plain.lines[0].bbox)


def test_the_rich_display_of_a_result_with_huge_boxes_finishes() -> None:
    big = 10**12
    lines = [
        TextLine(text=f"l{i}", location=(0, 0, big, 0, big, big, 0, big), rotate_rect=(0, 0, 1, 1, 0))
        for i in range(300)
    ]
    result = OCRResult(text="x", lines=lines, image_size=(640, 480))
    result._attach_image(Image.new("RGB", (640, 480), WHITE))
    with time_budget(BUDGET):
        html = result._repr_html_()
        drawn = draw_boxes(result)
    assert "<img" in html and drawn.size == (640, 480)


# -- hypothesis over extreme boxes

COORD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**400), 10**400),
    st.sampled_from([0, -1, 1e9, -1e9, 2**31, -(2**31) - 1, math.inf, -math.inf, math.nan]),
)
BOXES = st.lists(
    st.one_of(st.lists(COORD, min_size=4, max_size=4), st.lists(COORD, min_size=8, max_size=8)), max_size=40
)
FRAMES = st.one_of(st.none(), st.tuples(st.integers(-5, 10**7), st.integers(-5, 10**7)))


@settings_for(60)
@given(
    boxes=BOXES,
    size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    frame=FRAMES,
    width=st.one_of(st.none(), st.integers(1, 40)),
    numbered=st.booleans(),
)
@example(boxes=[[1e9, 1e9, -1e9, -1e9]] * 40, size=(300, 300), frame=None, width=40, numbered=True)
@example(boxes=[[0, 0, 10**400, 10**400]], size=(10, 10), frame=(1, 1), width=None, numbered=True)
def test_boxes_with_extreme_coordinates_are_drawn_fast(
    boxes: list[list[Any]], size: tuple[int, int], frame: tuple[int, int] | None, width: int | None, numbered: bool
) -> None:
    image = Image.new("RGB", size, WHITE)
    with time_budget(BUDGET), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            drawn = draw_boxes(image, boxes, image_size=frame, width=width, numbered=numbered)
        except QwenOCRError:
            return
    assert drawn.size == size and drawn.mode == "RGB"


@settings_for(60)
@given(
    corners=st.lists(st.lists(COORD, min_size=8, max_size=8), max_size=10),
    rects=st.lists(st.lists(COORD, min_size=5, max_size=5), max_size=10),
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
)
@example(corners=[[0] * 7 + [10**400]], rects=[[0, 0, 10**400, 1, 0]], size=(1, 1))  # float() overflowed: untyped
@example(corners=[[-5e8, -5e8, 5e8, -5e8, 5e8, 5e8, -5e8, 5e8]], rects=[[0, 0, 9e8, 9e8, 45]], size=(10, 10))
def test_result_boxes_stay_in_the_image_whatever_the_service_says(
    corners: list[list[Any]], rects: list[list[Any]], size: tuple[int, int]
) -> None:
    words = [{"text": f"w{i}", "location": loc} for i, loc in enumerate(corners)]
    body = json.dumps([{"text": f"r{i}", "rotate_rect": rect} for i, rect in enumerate(rects)], default=str)
    with time_budget(BUDGET):
        native = build_result("x", task=Task.ADVANCED_RECOGNITION, model="m", words_info=words, image_size=size)
        compat = build_result(body, task=Task.ADVANCED_RECOGNITION, model="m", image_size=size)
        for result in (native, compat):
            for line in result.lines:
                left, top, right, bottom = line.bbox
                assert 0 <= left <= right <= size[0] and 0 <= top <= bottom <= size[1]
            assert result.metadata.get("boxes_clipped", 0) <= len(result.lines)
            assert draw_boxes(Image.new("RGB", (64, 48), WHITE), result.lines, image_size=size).size == (64, 48)
