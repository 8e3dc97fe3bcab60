"""Modes, tasks and metadata, text a splitter cannot break, pipelining, native async, progress, options."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter
from PIL import Image, ImageDraw, ImageFont

from langchain_qwen_ocr.document_loaders import QwenOCRLoader, page_for_offset
from qwen_ocr import InvalidArgumentError, QwenOCR
from qwen_ocr.documents import CorruptDocumentError
from qwen_ocr.testing import Emulator
from tests.conftest import make_image
from tests.langchain.test_loader_support import (
    BORN_DIGITAL,
    CARDINAL,
    INVALID,
    MULTIPAGE,
    SMALL,
    PageFaults,
    async_client,
    page_digest,
    sync_client,
)


def _json_safe(docs: list[Document]) -> list[Document]:
    for doc in docs:
        assert json.loads(json.dumps(doc.metadata)) == doc.metadata
    return docs


def _load(client: QwenOCR, source: Any = CARDINAL, **options: Any) -> list[Document]:
    return _json_safe(QwenOCRLoader(source, client=client, ocr_options=SMALL, **options).load())


# -- page mode, per task ----------------------------------------------------------------------------------------

FLAT = {
    "source",
    "page",
    "page_label",
    "total_pages",
    "text_source",
    "task",
    "model",
    "provider",
    "request_id",
    "finish_reason",
    "truncated",
    "input_tokens",
    "output_tokens",
    "image_tokens",
    "total_tokens",
    "page_width",
    "page_height",
}


def test_plain_pages_carry_the_standard_keys(client: QwenOCR) -> None:
    docs = _load(client)
    assert [set(d.metadata) for d in docs] == [FLAT] * 4
    assert [d.metadata["page"] for d in docs] == [0, 1, 2, 3]
    assert docs[0].metadata["task"] is None  # plain text: no task asked for


def test_table_parsing_puts_markdown_in_the_text_and_html_in_metadata(client: QwenOCR) -> None:
    doc = _load(client, task="table_parsing")[0]
    assert set(doc.metadata) == FLAT | {"tables_html", "tables_truncated"}  # the recorded table is cut off
    assert doc.metadata["task"] == "table_parsing"
    assert "<table" not in doc.page_content and "<td" not in doc.page_content
    assert "| V02 | V1 | Live Load | 147.95 | 0.815 |" in doc.page_content
    (html,) = doc.metadata["tables_html"]
    assert html.startswith("<table>") and "<td>147.95</td>" in html
    raw = _load(client, task="table_parsing", content_format="raw")[0]
    assert raw.page_content.lstrip().startswith("<table>")


def test_a_text_splitter_cuts_markdown_tables_between_rows(client: QwenOCR) -> None:
    docs = _load(client, task="table_parsing", pages="1")
    chunks = RecursiveCharacterTextSplitter(chunk_size=150, chunk_overlap=0).split_documents(docs)
    assert len(chunks) > 3
    title = docs[0].page_content.split("\n\n")[0]  # the table's title row, on a line above it
    for chunk in chunks:
        assert chunk.metadata["page"] == 0
        for line in chunk.page_content.splitlines():
            assert line == title or (line.startswith("| ") and line.endswith(" |")), line  # whole rows only


def test_document_parsing_reads_as_markdown_with_its_latex_kept(client: QwenOCR) -> None:
    doc = _load(client, task="document_parsing", pages="1")[0]
    assert doc.page_content.startswith("# Qwen2-VL")
    assert "\n## Abstract\n" in doc.page_content
    assert "\\section" not in doc.page_content
    assert str(doc.metadata["latex"]).startswith("\\documentclass")
    raw = _load(client, task="document_parsing", pages="1", content_format="raw")[0]
    assert raw.page_content.startswith("\\documentclass") and "latex" not in raw.metadata


def test_key_information_extraction_keeps_the_fields(client: QwenOCR) -> None:
    doc = _load(client, schema={"乘车日期": "", "发票": {"发票代码": "", "发票号码": ""}}, pages="2")[0]
    assert doc.metadata["task"] == "key_information_extraction"  # implied by the schema
    assert doc.metadata["page"] == 1
    invoice = {"发票代码": "221021325353", "发票号码": "10283819"}
    assert doc.metadata["fields"] == {"乘车日期": "2013-06-29", "发票": invoice}


def _lines_image() -> bytes:
    im = Image.new("L", (900, 400), 255)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=36)
    draw.text((40, 60), "Invoice number 4711", fill=0, font=font)
    draw.text((420, 260), "Total due 99 EUR", fill=0, font=font)
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def test_advanced_recognition_gives_line_boxes_in_the_page_frame() -> None:
    """With a real reader (the local engine behind the emulator), the boxes land where the text was drawn."""
    with Emulator(reader="local") as emu, sync_client(emu) as client:
        (doc,) = _json_safe(
            QwenOCRLoader(
                _lines_image(), name="lines.png", client=client, task="advanced_recognition", include_lines=True
            ).load()
        )
    assert (doc.metadata["page_width"], doc.metadata["page_height"]) == (900, 400)
    lines = {line["text"]: line for line in doc.metadata["lines"]}
    assert set(lines) == {"Invoice number 4711", "Total due 99 EUR"}
    left, top, right, bottom = lines["Total due 99 EUR"]["bbox"]
    assert 380 <= left < right <= 900 and 230 <= top < bottom <= 330
    assert len(lines["Invoice number 4711"]["location"]) == 8
    assert doc.page_content == "Invoice number 4711\nTotal due 99 EUR"


# -- single mode ------------------------------------------------------------------------------------------------


def test_single_mode_joins_pages_and_maps_offsets_back_to_pages(client: QwenOCR) -> None:
    pages = _load(client)
    (doc,) = _load(client, mode="single")
    texts = [p.page_content for p in pages]
    assert doc.page_content == "\n\n".join(texts)
    meta = doc.metadata
    assert meta["source"] == str(CARDINAL) and meta["total_pages"] == 4
    assert meta["pages"] == [0, 1, 2, 3] and meta["page_labels"] == ["1", "2", "3", "4"]
    starts = [0]
    for text in texts[:-1]:
        starts.append(starts[-1] + len(text) + 2)
    assert meta["page_offsets"] == [[start, page] for page, start in enumerate(starts)]
    assert meta["input_tokens"] == sum(p.metadata["input_tokens"] for p in pages)
    assert len(meta["request_ids"]) == 4 and meta["text_source"] == "ocr"
    assert meta["page_sizes"] == [[p.metadata["page_width"], p.metadata["page_height"]] for p in pages]
    chunks = RecursiveCharacterTextSplitter(chunk_size=200, chunk_overlap=0, add_start_index=True).split_documents(
        [doc]
    )
    for chunk in chunks:
        page = page_for_offset(chunk.metadata, chunk.metadata["start_index"])
        assert page is not None and chunk.page_content in texts[page]


def test_single_mode_separator_and_per_page_structure(client: QwenOCR) -> None:
    (doc,) = _load(
        client, mode="single", page_separator="\n\f\n", task="advanced_recognition", pages="2-3", include_lines=True
    )
    assert doc.page_content.count("\n\f\n") == 1
    assert doc.metadata["pages"] == [1, 2]
    assert {line["page"] for line in doc.metadata["lines"]} == {1, 2}


def test_single_mode_of_a_born_digital_pdf_uses_its_text_layer(emu: Emulator, client: QwenOCR) -> None:
    (doc,) = _load(client, BORN_DIGITAL, mode="single")
    assert doc.metadata["text_source"] == "text_layer" and doc.metadata["provider"] == "text_layer"
    assert doc.page_content.startswith("Hello, here is some text without a meaning.")
    assert emu.stats.requests == 0


# -- elements mode ----------------------------------------------------------------------------------------------


def test_elements_of_document_parsing_have_categories_and_heading_paths(client: QwenOCR) -> None:
    docs = _load(client, task="document_parsing", mode="elements", pages="1-2")
    categories = [d.metadata["block_kind"] for d in docs]
    assert categories[0] == "title" and "heading" in categories and "paragraph" in categories
    assert docs[0].metadata["category"] == "Title"
    heading = next(d for d in docs if d.metadata["block_kind"] == "heading")
    assert heading.page_content == "Abstract" and heading.metadata["heading_path"] == "Abstract"
    assert heading.metadata["level"] == 1
    following = docs[docs.index(heading) + 1]
    assert following.metadata["category"] == "NarrativeText" and following.metadata["heading_path"] == "Abstract"
    for page in (0, 1):
        on_page = [d for d in docs if d.metadata["page"] == page]
        assert [d.metadata["element_index"] for d in on_page] == list(range(len(on_page)))
    assert not any("lines" in d.metadata or "latex" in d.metadata for d in docs if d.metadata["category"] != "Formula")


def test_elements_of_lines_tables_and_fields(client: QwenOCR) -> None:
    lines = _load(client, task="advanced_recognition", mode="elements", pages="1")
    assert {d.metadata["block_kind"] for d in lines} == {"line"}
    assert all(len(d.metadata["bbox"]) == 4 for d in lines)
    assert lines[0].page_content == "INTERNATIONAL"
    (table,) = _load(client, task="table_parsing", mode="elements", pages="1")
    assert table.metadata["category"] == "Table"
    assert table.page_content.startswith("Case name")  # the title row, then the Markdown table
    assert "\n\n| " in table.page_content and str(table.metadata["text_as_html"]).startswith("<table>")
    (fields,) = _load(client, task="key_information_extraction", mode="elements", pages="1")
    assert fields.metadata["category"] == "FormKeysValues"
    assert fields.metadata["fields"]["乘车日期"] == "2013-06-29"
    assert "乘车日期: 2013-06-29" in fields.page_content


def test_elements_mode_marks_a_failed_page(emu: Emulator) -> None:
    digest = page_digest(CARDINAL, 1, **SMALL)
    with sync_client(emu, PageFaults({digest: [400]})) as client:
        docs = _load(client, task="advanced_recognition", mode="elements", on_error="mark")
    failed = [d for d in docs if "error" in d.metadata]
    assert [(d.metadata["page"], d.page_content) for d in failed] == [(1, "")]
    assert {d.metadata["page"] for d in docs} == {0, 1, 2, 3}


# -- pipelining, async, closing early ---------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 3])
async def test_pages_come_in_order_while_later_ones_are_in_flight(window: int) -> None:
    with Emulator(latency=0.15) as emu:
        transport = PageFaults()
        with sync_client(emu, transport) as client:
            docs = QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL, max_concurrency=window).load()
        assert [d.metadata["page"] for d in docs] == list(range(6))
        assert transport.peak == window
        atransport = PageFaults()
        async with async_client(emu, atransport) as aclient:
            adocs = await QwenOCRLoader(MULTIPAGE, aclient=aclient, ocr_options=SMALL, max_concurrency=window).aload()
        assert [d.metadata["page"] for d in adocs] == list(range(6))
        assert atransport.peak == window


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Six single-page images, each a different picture."""
    paths = []
    for n in range(6):
        path = tmp_path / f"scan-{n}.png"
        path.write_bytes(make_image(text=f"receipt {n}"))
        paths.append(path)
    return paths


async def test_one_window_spans_files_so_single_images_go_in_parallel(images: list[Path]) -> None:
    with Emulator(latency=0.15) as emu:
        transport = PageFaults()
        with sync_client(emu, transport) as client:
            docs = QwenOCRLoader(images[0].parent, client=client, max_concurrency=3).load()
        assert [d.metadata["source"] for d in docs] == [str(p) for p in images]
        assert transport.peak == 3
        atransport = PageFaults()
        async with async_client(emu, atransport) as aclient:
            adocs = await QwenOCRLoader(images, aclient=aclient, max_concurrency=3).aload()
        assert [d.metadata["source"] for d in adocs] == [str(p) for p in images]
        assert atransport.peak == 3


async def test_the_window_is_shared_by_a_long_pdf_and_the_files_after_it(images: list[Path]) -> None:
    sources = [MULTIPAGE, *images[:3], CARDINAL]
    expected = [(str(MULTIPAGE), p) for p in range(6)] + [(str(p), 0) for p in images[:3]]
    expected += [(str(CARDINAL), p) for p in range(4)]
    with Emulator(latency=0.1) as emu:
        transport = PageFaults()
        with sync_client(emu, transport) as client:
            docs = QwenOCRLoader(sources, client=client, max_concurrency=4, ocr_options=SMALL).load()
        assert [(d.metadata["source"], d.metadata["page"]) for d in docs] == expected
        assert transport.peak <= 4
        atransport = PageFaults()
        async with async_client(emu, atransport) as aclient:
            adocs = await QwenOCRLoader(sources, aclient=aclient, max_concurrency=4, ocr_options=SMALL).aload()
        assert [(d.metadata["source"], d.metadata["page"]) for d in adocs] == expected
        assert atransport.peak <= 4


async def test_a_bad_file_among_parallel_ones_is_raised_in_its_turn(emu: Emulator, images: list[Path]) -> None:
    sources = [images[0], images[1], INVALID, images[2], images[3]]
    with sync_client(emu) as client:
        docs = QwenOCRLoader(sources, client=client, max_concurrency=4).lazy_load()
        assert [next(docs).metadata["source"], next(docs).metadata["source"]] == [str(images[0]), str(images[1])]
        with pytest.raises(CorruptDocumentError):
            next(docs)
    async with async_client(emu) as aclient:
        adocs = QwenOCRLoader(sources, aclient=aclient, max_concurrency=4).alazy_load()
        assert (await adocs.__anext__()).metadata["source"] == str(images[0])
        assert (await adocs.__anext__()).metadata["source"] == str(images[1])
        with pytest.raises(CorruptDocumentError):
            await adocs.__anext__()


async def test_stopping_early_over_many_files_stops_reading_them(images: list[Path]) -> None:
    many = images * 4  # 24 files
    with Emulator(latency=0.2) as emu:
        with sync_client(emu) as client:
            docs = QwenOCRLoader(many, client=client, max_concurrency=2).lazy_load()
            next(docs)
            docs.close()  # type: ignore[attr-defined]
        assert emu.stats.requests < 8
        async with async_client(emu) as aclient:
            adocs = QwenOCRLoader(many, aclient=aclient, max_concurrency=2).alazy_load()
            await adocs.__anext__()
            await adocs.aclose()  # type: ignore[attr-defined]
        assert emu.stats.requests < 16


async def test_alazy_load_is_natively_async(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import qwen_ocr.engine as engine

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sync path was used")

    monkeypatch.setattr(QwenOCRLoader, "lazy_load", refuse)
    monkeypatch.setattr(engine, "read_document", refuse)
    transport = PageFaults()
    async with async_client(emu, transport) as aclient:
        docs = [doc async for doc in QwenOCRLoader(CARDINAL, aclient=aclient, ocr_options=SMALL).alazy_load()]
    assert len(docs) == 4 and sum(transport.attempts.values()) == 4


async def test_alazy_load_makes_its_async_client_from_the_sync_one(emu: Emulator) -> None:
    with sync_client(emu, max_concurrency=2) as client:
        docs = await QwenOCRLoader(CARDINAL, client=client, ocr_options=SMALL).aload()
    assert len(docs) == 4 and emu.stats.successes == 4


def test_the_loader_builds_its_client_from_settings(emu: Emulator) -> None:
    loader = QwenOCRLoader(CARDINAL, api_key="sk-x", base_url=emu.base_url, max_concurrency=2, ocr_options=SMALL)
    assert len(loader.load()) == 4
    assert {r.headers.get("Authorization") for r in emu.request_log} == {"<redacted>"}


def test_model_overrides_the_clients_for_every_request(emu: Emulator, client: QwenOCR) -> None:
    docs = _load(client, model="qwen-vl-ocr-latest", pages="1")
    assert emu.request_log[-1].json["model"] == "qwen-vl-ocr-latest"
    assert "qwen-vl-ocr-latest" in repr(QwenOCRLoader(CARDINAL, client=client, model="qwen-vl-ocr-latest"))
    assert docs[0].metadata["page"] == 0


async def test_stopping_early_sends_no_more_pages() -> None:
    with Emulator(latency=0.2) as emu:
        with sync_client(emu) as client:
            docs = QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL, max_concurrency=2).lazy_load()
            first = next(docs)
            docs.close()  # type: ignore[attr-defined]
        sent = emu.stats.requests
        assert first.metadata["page"] == 0 and sent < 6
        async with async_client(emu) as aclient:
            adocs = QwenOCRLoader(MULTIPAGE, aclient=aclient, ocr_options=SMALL, max_concurrency=2).alazy_load()
            afirst = await adocs.__anext__()
            await adocs.aclose()  # type: ignore[attr-defined]
        assert afirst.metadata["page"] == 0 and emu.stats.requests - sent < 6


# -- text layer default, progress, options ----------------------------------------------------------------------


def test_text_layer_is_used_for_plain_text_only(emu: Emulator, client: QwenOCR) -> None:
    plain = _load(client, BORN_DIGITAL)
    assert [d.metadata["text_source"] for d in plain] == ["text_layer"] * 4 and emu.stats.requests == 0
    tables = _load(client, BORN_DIGITAL, task="table_parsing")
    assert [d.metadata["text_source"] for d in tables] == ["ocr"] * 4 and emu.stats.requests == 4
    forced = _load(client, BORN_DIGITAL, task="table_parsing", text_layer="auto")
    assert [d.metadata["text_source"] for d in forced] == ["text_layer"] * 4


def test_show_progress_counts_pages(client: QwenOCR, capsys: pytest.CaptureFixture[str]) -> None:
    _load(client, [CARDINAL, BORN_DIGITAL], show_progress=True, pages="1-3")
    err = capsys.readouterr().err
    assert "6/6" in err and "page" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pages"}, "mode='pages'"),
        ({"on_error": "ignore"}, "on_error='ignore'"),
        ({"content_format": "html"}, "content_format='html'"),
        ({"ocr_options": {"task": "x"}}, "ocr_options has 'task'"),
        ({"max_concurrency": 0}, "max_concurrency=0"),
        ({"text_layer": "sometimes"}, "sometimes"),
        ({"task": "poetry"}, "poetry"),
    ],
)
def test_wrong_options_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        QwenOCRLoader(CARDINAL, **options)


def test_wrong_client_settings_say_which_and_never_echo_the_value() -> None:
    with pytest.raises(InvalidArgumentError, match="provider: Input should be 'auto'"):
        QwenOCRLoader(CARDINAL, provider="nope")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="api_key") as info:
        QwenOCRLoader(CARDINAL, api_key=123456789)  # type: ignore[arg-type]
    assert "123456789" not in str(info.value)
