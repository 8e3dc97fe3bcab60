"""The typed views: tolerant JSON fields, HTML tables with spans and truncation, LaTeX, formulas, streamed results."""

from __future__ import annotations

from qwen_ocr import Table, TableCell, Task
from qwen_ocr.parsing import extract_formulas, parse_html_tables, parse_json_tolerant, strip_fences
from qwen_ocr.results import build_result


def test_fields_are_read_tolerantly() -> None:
    assert parse_json_tolerant('```json\n{"a": "1"}\n```') == {"a": "1"}
    assert parse_json_tolerant("{'Total': '12.50', 'Tip': 'null'}") == {"Total": "12.50", "Tip": None}
    assert parse_json_tolerant('Here you go: {"a": [1, 2') == {"a": [1, 2]}  # cut off at max_tokens
    assert parse_json_tolerant("no json here") is None
    assert parse_json_tolerant("") is None
    result = build_result("```json\n{'Seller': 'ACME', 'Items': [{'name': 'pen', 'price': 'null'}]}\n```",
                          task=Task.KEY_INFORMATION_EXTRACTION, model="m")  # fmt: skip
    assert result.fields == {"Seller": "ACME", "Items": [{"name": "pen", "price": None}]}
    assert result.raw_text.startswith("```json")


def test_fences_are_stripped_closed_or_not() -> None:
    assert strip_fences("```latex\n\\section{A}\n```") == "\\section{A}"
    assert strip_fences("```html\n<table>") == "<table>"
    assert strip_fences("plain") == "plain"


def test_tables_with_spans_headers_and_captions() -> None:
    html = """```html
<table><caption>Sales</caption>
<tr><th rowspan="2">Region</th><th colspan="2">Quarter</th></tr>
<tr><th>Q1</th><th>Q2</th></tr>
<tr><td>North</td><td>1 | 2</td><td>3<br>4</td></tr>
</table>
```"""
    (raw,) = parse_html_tables(html)
    assert not raw["truncated"]
    table = Table(rows=[[TableCell(**c) for c in row] for row in raw["rows"]], caption=raw["caption"])
    assert table.caption == "Sales"
    assert table.grid() == [["Region", "Quarter", "Quarter"], ["Region", "Q1", "Q2"], ["North", "1 | 2", "3\n4"]]
    assert table.n_rows == 3
    assert table.n_cols == 3
    assert table.to_markdown().splitlines() == [  # the caption above, the two <th> rows merged into one header
        "Sales",
        "",
        "| Region | Quarter / Q1 | Quarter / Q2 |",
        "| --- | --- | --- |",
        "| North | 1 \\| 2 | 3<br>4 |",
    ]
    assert '<th rowspan="2">Region</th>' in table.to_html()
    assert "<caption>Sales</caption>" in table.html


def test_a_table_cut_off_at_max_tokens_keeps_its_complete_rows() -> None:
    rows = "".join(f"<tr><td>{i}</td><td>v{i}</td></tr>" for i in range(30))
    cut = f"```html\n<table>{rows}<tr><td>30</td><td>v3"
    result = build_result(cut, task=Task.TABLE_PARSING, model="m", finish_reason="length")
    assert result.truncated
    (table,) = result.tables
    assert table.truncated
    assert table.n_rows == 30
    assert table.rows[-1][1].text == "v29"
    assert table.html.endswith("</table>")
    whole = build_result(f"<table>{rows}</table>", task=Task.TABLE_PARSING, model="m")
    assert not whole.tables[0].truncated
    assert whole.tables[0].n_rows == 30


def test_several_tables_and_rows_without_a_table_tag() -> None:
    assert len(parse_html_tables("<table><tr><td>a</td></tr></table> text <table><tr><td>b</td></tr></table>")) == 2
    (bare,) = parse_html_tables("<tr><td>a</td><td>b</td></tr>")
    assert [c["text"] for c in bare["rows"][0]] == ["a", "b"]
    assert parse_html_tables("no tables") == []


def test_latex_and_formulas() -> None:
    doc = "```latex\n\\section{Intro}\nText $x$.\n\\begin{equation}E=mc^2\\end{equation}\n$$a+b$$\n\\[c\\]\n```"
    result = build_result(doc, task=Task.DOCUMENT_PARSING, model="m")
    assert result.latex is not None
    assert result.latex.startswith("\\section{Intro}")
    assert result.formulas == ["\\begin{equation}E=mc^2\\end{equation}", "a+b", "c"]
    assert extract_formulas("$$\\frac{1}{2}$$") == ["\\frac{1}{2}"]
    assert extract_formulas("```latex\n\\begin{align*}a&=b\\end{align*}\n```") == ["\\begin{align*}a&=b\\end{align*}"]
    assert extract_formulas("$x$") == ["x"]


def test_advanced_recognition_from_text_only_replies() -> None:
    """The OpenAI-compatible mode has no ocr_result: boxes are read from the text, normalised to 0..1000."""
    text = '```json\n[{"rotate_rect": [502, 178, 95, 435, 90], "text": "INTERNATIONAL"}]\n```'
    result = build_result(text, task=Task.ADVANCED_RECOGNITION, model="m", image_size=(5994, 2989))
    (line,) = result.lines
    assert line.text == "INTERNATIONAL"
    left, top, right, bottom = line.bbox
    # The recorded pixel box of the same line is [1704, 390, 4314, 675].
    assert abs(left - 1704) < 10
    assert abs(right - 4314) < 10
    assert abs(top - 390) < 10
    assert abs(bottom - 675) < 10
    assert result.text == "INTERNATIONAL"


def test_words_info_with_junk_entries_is_skipped_not_fatal() -> None:
    words = [
        {"text": "ok", "location": [0, 0, 10, 0, 10, 5, 0, 5], "rotate_rect": [5, 2, 5, 10, 90]},
        {"text": "bad", "location": [0, 0]},
        "nonsense",
        {"text": "no-rect", "location": [0, 0, 10, 0, 10, 5, 0, 5]},
    ]
    result = build_result("x", task=Task.ADVANCED_RECOGNITION, model="m", words_info=words)
    assert [line.text for line in result.lines] == ["ok", "no-rect"]
    assert result.lines[1].rotate_rect[2] > 0
