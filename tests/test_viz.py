"""qwen_ocr.viz: boxes drawn where they belong (pixel checks on synthetic images, scaled frames, PDF pages, the local
provider on the bundled sample), and the rich display of results (escaped, no request ids, plain-text fallback,
the image kept by reference and never serialised)."""

from __future__ import annotations

import base64
import copy
import io
import pickle
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from qwen_ocr import AsyncQwenOCR, OCRCache, OCRResult, QwenOCR, Table, TableCell, TextLine, open_document
from qwen_ocr.errors import InvalidImageError
from qwen_ocr.imaging import prepare_image
from qwen_ocr.tasks import Task
from qwen_ocr.testing import FakeTransport
from qwen_ocr.viz import as_image, draw_boxes, result_html, result_mimebundle, result_text, table_html

RED = (255, 0, 0)
WHITE = (255, 255, 255)
REQUEST_ID = "5a1b2c3d-0000-4e5f-8a9b-0123456789ab"


def line(text: str, box: tuple[int, int, int, int]) -> TextLine:
    left, top, right, bottom = box
    return TextLine(
        text=text,
        location=(left, top, right, top, right, bottom, left, bottom),
        rotate_rect=((left + right) / 2, (top + bottom) / 2, bottom - top, right - left, 90.0),
    )


def is_red(pixel: Any) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g < 80 and b < 80


def red_near(im: Image.Image, x: float, y: float, radius: int = 2) -> bool:
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            px, py = round(x) + dx, round(y) + dy
            if 0 <= px < im.width and 0 <= py < im.height and is_red(im.getpixel((px, py))):
                return True
    return False


def pixels(im: Image.Image) -> list[Any]:
    return [im.getpixel((x, y)) for y in range(im.height) for x in range(im.width)]


def png(size: tuple[int, int] = (320, 160), color: Any = "white", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_client(*replies: Any, **kwargs: Any) -> QwenOCR:
    transport = FakeTransport(list(replies))
    return QwenOCR(api_key="sk-viz-test-secret", http_client=httpx.Client(transport=transport), max_retries=0, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# draw_boxes


def test_the_outline_is_drawn_on_the_box_edges_and_nowhere_else() -> None:
    image = Image.new("RGB", (200, 120), WHITE)
    drawn = draw_boxes(image, [line("a", (40, 30, 160, 80))], numbered=False, color=RED, width=2)
    assert drawn is not image and drawn.mode == "RGB" and drawn.size == image.size
    assert image.getpixel((40, 30)) == WHITE  # the input is untouched
    for x, y in [(40, 55), (160, 55), (100, 30), (100, 80), (40, 30), (160, 80)]:
        assert red_near(drawn, x, y, radius=1), (x, y)
    for x, y in [(100, 55), (20, 10), (180, 100), (70, 60)]:
        assert drawn.getpixel((x, y)) == WHITE, (x, y)


def test_boxes_may_be_corners_or_left_top_right_bottom() -> None:
    image = Image.new("L", (100, 100), 255)
    corners = draw_boxes(image, [(10, 10, 60, 10, 60, 40, 10, 40)], numbered=False, color=RED, width=1)
    rect = draw_boxes(image, [(10, 10, 60, 40)], numbered=False, color=RED, width=1)
    assert corners.tobytes() == rect.tobytes()
    assert red_near(rect, 10, 25, radius=0) and red_near(rect, 60, 25, radius=0)
    with pytest.raises(ValueError, match="8 numbers"):
        draw_boxes(image, [(1, 2, 3)])


def test_a_rotated_polygon_is_drawn_along_its_corners() -> None:
    image = Image.new("RGB", (200, 200), WHITE)
    diamond = (100, 20, 180, 100, 100, 180, 20, 100)
    drawn = draw_boxes(image, [diamond], numbered=False, color=RED, width=2)
    assert red_near(drawn, 140, 60) and red_near(drawn, 60, 140)  # the middle of two edges
    assert drawn.getpixel((30, 30)) == WHITE and drawn.getpixel((100, 100)) == WHITE


def test_boxes_in_another_frame_are_scaled_to_the_image() -> None:
    image = Image.new("RGB", (200, 100), WHITE)
    drawn = draw_boxes(image, [(100, 50, 300, 150)], image_size=(400, 200), numbered=False, color=RED, width=1)
    assert red_near(drawn, 50, 50, radius=0) and red_near(drawn, 150, 50, radius=0)
    assert red_near(drawn, 100, 25, radius=0) and red_near(drawn, 100, 75, radius=0)
    assert not red_near(drawn, 100, 50, radius=10)


def test_max_width_downscales_the_picture_and_its_boxes() -> None:
    image = Image.new("RGB", (2000, 1000), WHITE)
    drawn = draw_boxes(image, [(400, 200, 1600, 800)], numbered=False, color=RED, max_width=500)
    assert drawn.size == (500, 250)
    assert red_near(drawn, 100, 125) and red_near(drawn, 400, 125) and red_near(drawn, 250, 50)


def test_numbers_label_each_box_in_order() -> None:
    image = Image.new("RGB", (400, 200), WHITE)
    lines = [line("first", (80, 20, 380, 60)), line("second", (80, 120, 380, 160))]
    plain = draw_boxes(image, lines, numbered=False, color=RED, width=1)
    numbered = draw_boxes(image, lines, numbered=True, color=RED, width=1)
    # A filled tag left of each box's first corner: red pixels (the tag) and white ones (the digit) where the
    # unnumbered drawing is blank.
    for top in (20, 120):
        region = (40, top, 79, top + 30)
        tag = numbered.crop(region)
        assert sum(is_red(p) for p in pixels(tag)) > 30
        assert all(p == WHITE for p in pixels(plain.crop(region)))
    assert numbered.crop((40, 20, 79, 50)).tobytes() != numbered.crop((40, 120, 79, 150)).tobytes()  # "1" vs "2"


def test_images_from_paths_bytes_data_urls_and_prepared_images(tmp_path: Path) -> None:
    data = png((64, 48))
    path = tmp_path / "page.png"
    path.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    for source in (str(path), path, data, bytearray(data), memoryview(data), url, prepare_image(data)):
        assert draw_boxes(source, [(5, 5, 20, 20)]).size == (64, 48), type(source)


def test_a_prepared_image_draws_in_the_frame_of_the_original(tmp_path: Path) -> None:
    big = png((4000, 2000))
    prepared = prepare_image(big, model="qwen-vl-ocr", max_pixels=1_000_000)
    assert prepared.sent_size is not None and prepared.sent_size[0] < 4000
    drawn = draw_boxes(prepared, [(1000, 500, 3000, 1500)], numbered=False, color=RED)
    w, h = prepared.sent_size
    assert drawn.size == (w, h)
    assert red_near(drawn, w / 4, h / 2, radius=2) and red_near(drawn, 3 * w / 4, h / 2, radius=2)


def test_exif_orientation_is_applied_as_the_client_does() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (80, 40), WHITE).save(buffer, format="JPEG", exif=exif)
    assert as_image(buffer.getvalue()).size == (40, 80)


def test_remote_urls_and_unknown_inputs_are_refused_clearly() -> None:
    with pytest.raises(InvalidImageError, match="remote URL"):
        draw_boxes("https://example.com/a.png", [])
    with pytest.raises(InvalidImageError, match="does not know the image"):
        draw_boxes(OCRResult(text="x"))
    with pytest.raises(InvalidImageError, match="cannot draw on a int"):
        as_image(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# Results know their image


def test_a_result_remembers_its_input_by_reference_without_changing_its_value() -> None:
    image = Image.new("RGB", (320, 160), WHITE)
    words = [{"text": "Hi", "location": [32, 32, 160, 32, 160, 96, 32, 96], "rotate_rect": [96, 64, 64, 128, 90]}]
    client = fake_client({"text": "Hi", "words_info": words, "request_id": REQUEST_ID})
    result = client.ocr(image, task="advanced_recognition")
    assert result._image_source() is image  # no copy
    assert result.image() is image
    plain = OCRResult.model_validate_json(result.model_dump_json())
    assert plain == result and result == plain  # the reference is not part of the value
    assert plain.image() is None
    assert "image" not in result.model_dump() and "<image>" not in result.model_dump_json()
    assert repr(result) == repr(plain) and "data:" not in repr(result)
    assert pickle.loads(pickle.dumps(result)).image() is None  # never pickled
    assert copy.deepcopy(result)._image_source() is image  # shared, not copied
    assert result.model_copy()._image_source() is image


def test_a_cached_result_gets_the_image_of_the_call(tmp_path: Path) -> None:
    cache = OCRCache(tmp_path / "cache")
    data = png()
    client = fake_client("hello", cache=cache)
    first = client.ocr(data)
    again = client.ocr(data)
    assert again.metadata["cache"] == "hit" and again.image() is not None
    assert first.image() is not None
    stored = next((tmp_path / "cache").glob("??/*.json")).read_text()
    assert "base64" not in stored and "image" not in re.sub(r'"image_size"|"image_tokens"', "", stored)


async def test_the_async_client_attaches_the_image_too() -> None:
    data = png()
    transport = FakeTransport(["hello"])
    async with httpx.AsyncClient(transport=transport) as http:
        client = AsyncQwenOCR(api_key="k", http_client=http)
        result = await client.ocr(data)
    assert result._image_source() is data and result.image() is not None


def test_a_result_from_a_url_has_no_image_and_still_displays() -> None:
    result = fake_client("hello").ocr("https://example.com/scan.png")
    assert result.image() is None
    html = result._repr_html_()
    assert "<img" not in html and "hello" in html


def test_a_deleted_file_means_no_picture_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    path.write_bytes(png())
    result = fake_client("hello").ocr(str(path))
    assert result.image() is not None
    path.unlink()
    assert result.image() is None
    assert "<img" not in result.to_html()


def test_boxes_of_a_pdf_page_in_points_land_on_the_rendered_pixels(tmp_path: Path) -> None:
    page_image = Image.new("RGB", (850, 1100), WHITE)  # Letter at 100 dpi: 612 x 792 points
    pdf = tmp_path / "page.pdf"
    page_image.save(pdf, format="PDF", resolution=100.0)
    with open_document(pdf, max_pixels=400_000) as doc:
        prepared = next(iter(doc)).prepare()
    assert prepared.original_size == (612, 792)
    assert prepared.sent_size is not None
    w, h = prepared.sent_size
    # The service answers in pixels of the image sent: a box around the middle half.
    box = [w // 4, h // 4, 3 * w // 4, h // 4, 3 * w // 4, 3 * h // 4, w // 4, 3 * h // 4]
    words = [{"text": "middle", "location": box, "rotate_rect": [w / 2, h / 2, h / 2, w / 2, 90]}]
    result = fake_client({"text": "middle", "words_info": words}).ocr(prepared, task="advanced_recognition")
    assert result.image_size == (612, 792)
    left, top, right, _ = result.lines[0].bbox
    assert abs(left - 153) <= 2 and abs(right - 459) <= 2 and abs(top - 198) <= 2  # in points
    drawn = draw_boxes(result, numbered=False, color=RED)
    assert drawn.size == (w, h)
    assert red_near(drawn, w / 4, h / 2) and red_near(drawn, 3 * w / 4, h / 2) and red_near(drawn, w / 2, h / 4)
    assert not red_near(drawn, w / 2, h / 2, radius=20)


def test_local_provider_boxes_on_the_bundled_sample() -> None:
    pytest.importorskip("rapidocr")
    from qwen_ocr.samples import SAMPLE_SCAN, read_sample

    data = read_sample(SAMPLE_SCAN)
    result = QwenOCR(provider="local").ocr(data, task="advanced_recognition")
    assert result.lines and result.image_size == (1275, 1200)
    first = result.lines[0]
    assert "NORTHWIND" in first.text
    drawn = draw_boxes(result, color=RED, numbered=False)
    assert drawn.size == (1275, 1200)
    corners = list(zip(first.location[0::2], first.location[1::2], strict=True))
    for (x1, y1), (x2, y2) in zip(
        corners, corners[1:] + corners[:1], strict=True
    ):  # the middle of each edge of the polygon
        assert red_near(drawn, (x1 + x2) / 2, (y1 + y2) / 2), (x1, y1, x2, y2)
    left, top, right, bottom = first.bbox
    assert not red_near(drawn, (left + right) / 2, (top + bottom) / 2, radius=3)
    html = result.to_html()
    assert html.count("<li>") == len(result.lines) and '<img src="data:image/' in html


# --------------------------------------------------------------------------------------------------------------
# The rich display

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def unescaped_tags(html: str) -> list[str]:
    return re.findall(r"<(script|img src=x|iframe)", html, flags=re.IGNORECASE)


def test_model_output_is_escaped_everywhere() -> None:
    result = OCRResult(
        text=EVIL,
        raw_text=EVIL,
        task=Task.ADVANCED_RECOGNITION,
        lines=[line(EVIL, (0, 0, 10, 10))],
        tables=[Table(rows=[[TableCell(text=EVIL, header=True)], [TableCell(text=EVIL)]], caption=EVIL)],
        fields={EVIL: EVIL, "nested": {"list": [EVIL]}},
        formulas=[EVIL + "</div>"],
        request_id=REQUEST_ID,
    )
    bundle = result._repr_mimebundle_()
    assert not unescaped_tags(bundle["text/html"])
    assert "&lt;script&gt;" in bundle["text/html"]
    assert not unescaped_tags(table_html(result.tables[0])) and not unescaped_tags(result.tables[0]._repr_html_())
    parsing = OCRResult(text=EVIL, latex=r"\section{" + EVIL + "} $$" + EVIL + "$$", task=Task.DOCUMENT_PARSING)
    assert not unescaped_tags(parsing.to_html())


def test_no_request_id_path_or_key_in_any_view(tmp_path: Path) -> None:
    path = tmp_path / "secret-folder" / "scan.png"
    path.parent.mkdir()
    path.write_bytes(png())
    client = fake_client({"text": "hello", "request_id": REQUEST_ID})
    result = client.ocr(str(path))
    assert result.request_id == REQUEST_ID
    for view in (*result._repr_mimebundle_().values(), result_text(result)):
        assert REQUEST_ID not in view and "secret-folder" not in view and "sk-viz" not in view


def test_the_bundle_has_plain_text_html_and_latex_for_formulas() -> None:
    formula = OCRResult(text="$$E=mc^2$$", task=Task.FORMULA_RECOGNITION, formulas=["E=mc^2"])
    bundle = formula._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "text/latex"}
    assert bundle["text/latex"] == "$$E=mc^2$$"
    assert "$$E=mc^2$$" in bundle["text/html"] and "mathjax_process" in bundle["text/html"]
    assert result_mimebundle(formula, include={"text/plain"}) == {"text/plain": bundle["text/plain"]}
    assert "text/html" not in result_mimebundle(formula, exclude={"text/html"})
    plain = OCRResult(text="just text $5 and $6")
    assert set(plain._repr_mimebundle_()) == {"text/plain", "text/html"}
    assert "mathjax_ignore" in plain.to_html()  # dollar amounts are not typeset as math


def test_each_view_shows_up() -> None:
    table = Table(
        rows=[
            [TableCell(text="Item", header=True), TableCell(text="Qty", header=True)],
            [TableCell(text="Tea"), TableCell(text="8")],
        ]
    )
    result = OCRResult(
        text="",
        task=Task.TABLE_PARSING,
        model="qwen-vl-ocr",
        tables=[table],
        fields={"Total": 12.5, "Seller": {"Name": "ACME"}, "Items": ["pen"], "Empty": None},
        image_size=(640, 480),
    )
    html = result_html(result)
    assert "<th>Item</th>" in html and "<td>Tea</td>" in html
    assert "<th>Seller.Name</th><td>ACME</td>" in html and "<th>Items[0]</th><td>pen</td>" in html
    assert "<th>Total</th><td>12.5</td>" in html and "<th>Empty</th><td></td>" in html
    assert "table_parsing" in html and "640 x 480" in html
    text = result_text(result)
    assert text.startswith("OCRResult: table_parsing") and "| Tea | 8 |" in text and "Seller.Name: ACME" in text


def test_document_parsing_is_shown_as_its_structure_with_math_and_the_source() -> None:
    latex = r"""\documentclass{article}\begin{document}\section{Intro} Some text.
\subsection{Data} \begin{itemize}\item one\end{itemize}
$$a^2+b^2=c^2$$
\begin{tabular}{|c|c|}\hline x & y \\ \hline 1 & 2 \\ \hline\end{tabular}
\end{document}"""
    result = OCRResult(text=latex, latex=latex, task=Task.DOCUMENT_PARSING, formulas=["a^2+b^2=c^2"])
    html = result.to_html()
    assert "<h4>Intro</h4>" in html and "<h5>Data</h5>" in html and "<p>Some text.</p>" in html
    assert "&bull; one" in html and "$$a^2+b^2=c^2$$" in html and "<td>1</td>" in html
    assert "<summary>LaTeX source</summary>" in html and r"\documentclass{article}" in html


def test_truncation_is_said_and_long_outputs_are_clipped() -> None:
    result = OCRResult(text="x" * 50_000, finish_reason="length")
    assert "cut off" in result.to_html() and "more characters" in result.to_html()
    assert len(result_text(result)) < 3_000


def test_repr_stays_the_pydantic_one() -> None:
    result = OCRResult(text="hi", request_id=None)
    assert repr(result).startswith("OCRResult(text='hi', raw_text=''")
    assert str(result) == "hi"


# --------------------------------------------------------------------------------------------------------------
# the view at notebook width: reading first, a light preview, cells left-aligned under JupyterLab, no blank rows

JUPYTERLAB_RIGHT_ALIGN = ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td"
"""JupyterLab's rule that right-aligns every cell of HTML output."""


def specificity(selector: str) -> tuple[int, int, int]:
    """(ids, classes + attributes + pseudo-classes, elements) of a simple CSS selector (what the tests use)."""
    ids = len(re.findall(r"#[\w-]+", selector))
    classes = len(re.findall(r"\.[\w-]+", selector)) + len(re.findall(r"\[[^\]]*\]", selector))
    pseudo = len(re.findall(r"(?<!:):(?!not\()[\w-]+", selector))
    without = re.sub(r"[.#][\w-]+|\[[^\]]*\]|::?[\w-]+(\([^)]*\))?|:not\(|\)", " ", selector)
    elements = len(re.findall(r"[A-Za-z][\w-]*", without))
    return ids, classes + pseudo, elements


def css_rules(html: str) -> list[tuple[str, str]]:
    """(selector, declarations) of every rule in the fragment's <style> elements."""
    style = "".join(re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL))
    return [
        (selector.strip(), body)
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style)
        for selector in selectors.split(",")
    ]


def test_the_specificity_helper_counts_as_browsers_do() -> None:
    assert specificity(JUPYTERLAB_RIGHT_ALIGN) == (0, 2, 1)  # the :not() counts its argument
    assert specificity(".qwen-ocr-table td") == (0, 1, 1)
    assert specificity(".a table.b td") == (0, 2, 2)


@pytest.mark.parametrize("view", ["result", "table"])
def test_table_cells_are_left_aligned_even_under_jupyterlabs_right_align_rule(view: str) -> None:
    table = Table(rows=[[TableCell(text="Item", header=True)], [TableCell(text="Tea")]])
    html = result_html(OCRResult(task=Task.TABLE_PARSING, tables=[table])) if view == "result" else table_html(table)
    assert '<table class="qwen-ocr-table">' in html
    assert html.startswith(
        '<div class="qwen-ocr-result qwen-ocr-view' if view == "result" else '<div class="qwen-ocr-view'
    )
    left = [selector for selector, body in css_rules(html) if "text-align:left" in body]
    cells = [s for s in left if s.endswith(" td")]
    assert cells, left
    for selector in cells:  # wins over JupyterLab's rule whatever the order of the style sheets
        assert specificity(selector) > specificity(JUPYTERLAB_RIGHT_ALIGN), selector
        assert selector.startswith(".qwen-ocr-view ")  # scoped: nothing else on the page is touched
    assert all(s.startswith(".qwen-ocr-view") for s, _ in css_rules(html))
    # JupyterLab centres tables (".jp-RenderedHTMLCommon table", 0-1-1): ours stay at the left
    margins = [s for s, body in css_rules(html) if s.endswith("table.qwen-ocr-table") and "margin:" in body]
    assert margins and all(specificity(s) > (0, 1, 1) for s in margins)


def test_a_truncated_table_shows_no_blank_rows() -> None:
    text = (
        "<table><tr><th>Channel</th><th>Load</th></tr><tr><td rowspan='3'>V02</td><td>0.815</td></tr>"
        "<tr><td></td><td> </td></tr><tr><td>0.615</td></tr>"
        "<tr><td></td><td></td></tr><tr><td></td><td></td></tr><tr><td></td><td></td></tr><tr><td>T0"
    )
    from qwen_ocr.results import parse_tables

    (table,) = parse_tables(text)
    assert table.truncated
    html = result_html(OCRResult(text=text, task=Task.TABLE_PARSING, tables=[table]))
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 3
    assert all(re.search(r"<t[dh][^>]*>[^<\s]", row) for row in rows), rows  # each row has a cell with text
    assert '<td rowspan="2">V02</td>' in html  # spanned over the blank row: one row less
    assert "3 complete rows kept; 4 blank rows left out" in html


def test_the_reading_comes_first_and_the_page_is_a_light_collapsible_preview() -> None:
    from qwen_ocr.viz import PREVIEW_HEIGHT, PREVIEW_MAX_BYTES

    noise = Image.effect_noise((2400, 3200), 80).convert("RGB")  # a grainy scan: the hardest case for JPEG
    lines = [line(f"line {i}", (100, 100 + 120 * i, 1800, 180 + 120 * i)) for i in range(20)]
    result = OCRResult(text="...", task=Task.ADVANCED_RECOGNITION, lines=lines, image_size=noise.size)
    html = result_html(result._attach_image(noise))
    (data,) = re.findall(r'<img src="data:image/(?:jpeg|png);base64,([A-Za-z0-9+/=]+)"', html)
    size = len(base64.b64decode(data))
    assert size <= PREVIEW_MAX_BYTES, size
    assert len(html) < PREVIEW_MAX_BYTES * 4 / 3 + 20_000  # the whole view stays light too
    assert html.index("<ol") < html.index("<img")  # the reading first
    assert '<details class="qwen-ocr-page"><summary' in html  # a click enlarges it
    assert f"max-height:{PREVIEW_HEIGHT}px" in html
    assert any("[open] img" in s and "max-height:none" in b for s, b in css_rules(html))
    assert "20 numbered boxes" in html
    # a small flat picture is kept as it is (PNG, full size)
    small = OCRResult(text="hi")._attach_image(Image.new("RGB", (300, 100), "white"))
    assert 'width="300" height="100"' in small.to_html() and "image/png" in small.to_html()
