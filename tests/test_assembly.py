"""What moved out of the adapters into core, tested without LangChain or LlamaIndex.

``qwen_ocr.assembly`` (page results grouped into documents by mode, the loader's argument checks),
``qwen_ocr.npy`` (LangChain's image arrays), ``qwen_ocr.sources`` (input naming, ``repr`` of sources),
``qwen_ocr.read_settings`` (the reading options as pydantic fields) and ``qwen_ocr.engine.ReadOptions`` (one
declaration of the reading options).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import SecretStr

from qwen_ocr import OCRResult, PageResult, Task
from qwen_ocr.assembly import (
    DEFAULT_PAGE_SEPARATOR,
    Collator,
    JoinedPages,
    configure,
    describe,
    element_records,
    error_record,
    page_for_offset,
)
from qwen_ocr.documents import CorruptDocumentError, UnsupportedDocumentError
from qwen_ocr.engine import OCR_OPTIONS, READ_OPTIONS, ReadOptions
from qwen_ocr.errors import InvalidArgumentError, QwenOCRError, RateLimitError
from qwen_ocr.npy import NPY_MIME_TYPE, image_from_npy, is_npy, npy_source
from qwen_ocr.read_settings import ReadSettings
from qwen_ocr.results import Usage
from qwen_ocr.settings import ClientSettings
from qwen_ocr.sources import content_key, describe_sources, named_sources

Record = tuple[str, dict[str, Any]]


def record(text: str, metadata: dict[str, Any]) -> Record:
    return text, metadata


def read(
    text: str, *, source: str = "a.pdf", index: int = 0, total: int = 1, file_index: int = 0, **fields: Any
) -> PageResult:
    result = OCRResult(text=text, raw_text=text, model="m", provider="dashscope", **fields)
    return PageResult(
        source=source, index=index, label=str(index + 1), total_pages=total, result=result, file_index=file_index
    )


def failed(
    error: QwenOCRError, *, source: str = "a.pdf", index: int = 0, total: int = 1, file_index: int = 0
) -> PageResult:
    return PageResult(
        source=source, index=index, label=str(index + 1), total_pages=total, error=error, file_index=file_index
    )


# -- Collator ---------------------------------------------------------------------------------------------------


def test_page_mode_gives_one_record_per_page_with_the_page_keys() -> None:
    collator = Collator(record)
    ((text, meta),) = collator.add(read("Hello", usage=Usage(input_tokens=3, output_tokens=1, total_tokens=4)))
    assert text == "Hello"
    assert meta["source"] == "a.pdf" and meta["page"] == 0 and meta["page_label"] == "1"
    assert meta["input_tokens"] == 3 and meta["model"] == "m"
    assert collator.finish() == []
    json.dumps(meta)


def test_single_mode_joins_a_files_pages_and_ends_it_with_its_last_page() -> None:
    collator = Collator(record, "single", separator="|")
    assert collator.add(read("one", total=3)) == []
    assert collator.add(failed(RateLimitError("slow down"), index=1, total=3)) == []
    ((text, meta),) = collator.add(read("three", index=2, total=3))
    assert text == "one|three"
    assert meta["pages"] == [0, 2] and meta["page_offsets"] == [[0, 0], [4, 2]]
    assert meta["errors"] == [
        {
            "page": 1,
            "error": str(RateLimitError("slow down")),
            "error_type": "RateLimitError",
            "error_code": "Throttling",
        }
    ]
    assert page_for_offset(meta, 5) == 2 and page_for_offset(meta, 0) == 0
    assert collator.finish() == []


def test_single_mode_ends_a_file_at_the_next_files_first_result_when_pages_were_skipped() -> None:
    collator = Collator(record, "single")
    assert collator.add(read("a", total=2)) == []  # its second page never comes (skipped)
    first, second = collator.add(read("b", source="b.png", file_index=1))  # b.png has one page: done at once
    assert (first[0], first[1]["source"]) == ("a", "a.pdf")
    assert (second[0], second[1]["source"]) == ("b", "b.png")
    assert collator.finish() == []


def test_a_file_that_failed_whole_gives_its_pages_so_far_then_its_error() -> None:
    collator = Collator(record, "single")
    collator.add(read("a", total=3))
    gone = PageResult(
        source="a.pdf", index=0, label="", total_pages=3, error=CorruptDocumentError("broken"), file_failed=True
    )
    (text, joined), (empty, error) = collator.add(gone)
    assert text == "a" and joined["pages"] == [0]
    assert empty == "" and error == {
        "source": "a.pdf",
        "error": str(CorruptDocumentError("broken")),
        "error_type": "CorruptDocumentError",
        "error_code": CorruptDocumentError("x").code,
    }


def test_a_marked_page_keeps_its_page_keys() -> None:
    meta = error_record("a.pdf", RateLimitError("slow"), page=failed(RateLimitError("slow"), index=2, total=5))
    assert meta["page"] == 2 and meta["total_pages"] == 5 and meta["error_type"] == "RateLimitError"


def test_elements_mode_reads_the_blocks_of_a_page() -> None:
    page = read("", task=Task.DOCUMENT_PARSING, latex="\\section{Intro} Some text. \\[ E = mc^2 \\]")
    records = element_records(page)
    kinds = [meta["block_kind"] for _, meta in records]
    assert kinds == ["heading", "paragraph", "formula"]
    assert [meta["category"] for _, meta in records] == ["Title", "NarrativeText", "Formula"]
    assert [meta["element_index"] for _, meta in records] == [0, 1, 2]
    assert records[1][1]["heading_path"] == "Intro" and records[0][1]["level"] == 1
    assert records[2][1]["latex"] and "latex" not in records[1][1]
    assert Collator(record, "elements").add(page) == records
    assert element_records(failed(RateLimitError("x"))) == []


def test_collect_closes_the_reading_when_the_caller_stops() -> None:
    closed: list[bool] = []

    def pages() -> Any:
        try:
            for index in range(5):
                yield read(str(index), index=index, total=5)
        finally:
            closed.append(True)

    docs = Collator(record).collect(pages())
    assert next(docs)[0] == "0"
    docs.close()
    assert closed == [True]


def test_joined_pages_sum_the_tokens_and_mark_mixed_text_sources() -> None:
    joined = JoinedPages("a.pdf")
    joined.add(read("x", usage=Usage(input_tokens=2, output_tokens=1, image_tokens=1, total_tokens=3)))
    layer = read("y", index=1, usage=Usage(input_tokens=5, total_tokens=5))
    layer.text_source = "text_layer"
    joined.add(layer)
    meta = joined.metadata()
    assert joined.text == "x" + DEFAULT_PAGE_SEPARATOR + "y"
    assert meta["input_tokens"] == 7 and meta["total_tokens"] == 8 and meta["image_tokens"] == 1
    assert meta["text_source"] == "mixed"
    assert JoinedPages("b.pdf").empty


# -- the loader's argument checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"mode": "pages"}, "mode='pages'"),
        ({"content_format": "html"}, "content_format='html'"),
        ({"ocr_options": {"task": "table_parsing"}}, "'task'"),
        ({"pagez": "1"}, "'pagez'"),
    ],
)
def test_configure_names_the_wrong_argument(arguments: dict[str, Any], named: str) -> None:
    given: dict[str, Any] = {"mode": "page", "content_format": "markdown", "ocr_options": None, **arguments}
    with pytest.raises(InvalidArgumentError, match=named):
        configure(**given)


def test_describe_shows_no_password_and_no_key() -> None:
    options, holder = configure(
        mode="single", content_format="text", ocr_options=None, password="hunter2", api_key="sk-secret-key"
    )
    text = describe("single", options, holder)
    assert "mode='single'" in text and "password='***'" in text
    assert "hunter2" not in text and "sk-secret-key" not in text


# -- ReadOptions: one declaration -----------------------------------------------------------------------------------


def test_read_options_are_declared_once_and_given_back_as_they_were_checked() -> None:
    options = ReadOptions.build(pages="1-2", on_error="mark", max_concurrency=3, task="table_parsing", model="m")
    arguments = options.arguments()
    assert list(arguments)[: len(READ_OPTIONS) - len(OCR_OPTIONS)] == list(READ_OPTIONS[: -len(OCR_OPTIONS)])
    assert arguments["pages"] == "1-2" and arguments["on_error"] == "mark" and arguments["text_layer"] == "never"
    assert arguments["task"] is Task.TABLE_PARSING and arguments["model"] == "m"
    assert ReadOptions.build(**arguments) == options


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"on_error": "ignore"}, "on_error"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_download_bytes": 0}, "max_download_bytes"),
        ({"download_timeout": 0}, "download_timeout"),
        ({"text_layer": "sometimes"}, "text_layer"),
        ({"taks": "table_parsing"}, "did you mean 'task'"),
    ],
)
def test_read_options_name_a_wrong_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        ReadOptions.build(**options)


# -- ReadSettings ------------------------------------------------------------------------------------------------


class Settings(ReadSettings, ClientSettings):
    pass


def test_read_settings_resolve_the_task_as_every_integration_does() -> None:
    assert ReadSettings().read_arguments()["task"] is Task.TEXT_RECOGNITION
    assert ReadSettings(schema={"Total": ""}).read_arguments()["task"] is Task.KEY_INFORMATION_EXTRACTION
    assert "task" not in ReadSettings(prompt="Read the stamp.").read_arguments()
    assert "task" not in ReadSettings(task=None).read_arguments()
    with pytest.raises(InvalidArgumentError):
        ReadSettings(task=Task.TABLE_PARSING, schema={"Total": ""}).read_arguments()


def test_read_settings_pass_the_password_and_max_concurrency_only_when_set() -> None:
    arguments = Settings(password=SecretStr("pw"), recursive=True, pages=[1, 3]).read_arguments()
    assert arguments["password"] == "pw" and arguments["recursive"] is True and arguments["pages"] == [1, 3]
    assert "max_concurrency" not in arguments  # the client's own limit
    assert Settings(max_concurrency=2).read_arguments()["max_concurrency"] == 2
    assert (
        "pw" not in repr(Settings(password=SecretStr("pw")))
        and "password" not in Settings(password=SecretStr("pw")).model_dump()
    )


# -- sources ------------------------------------------------------------------------------------------------------


class _Remote:
    protocol = ("s3", "s3a")

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def open(self, path: str, mode: str) -> io.BytesIO:
        return io.BytesIO(self.files[path])


def test_named_sources_name_every_entry() -> None:
    unnamed: set[str] = set()
    named_file = io.BytesIO(b"pdf")
    named_file.name = "scan.pdf"
    entries = list(named_sources([b"raw", named_file, "a.png", 42], unnamed=unnamed))
    assert entries == [(content_key(b"raw"), b"raw"), ("scan.pdf", b"pdf"), "a.png", 42]
    assert unnamed == {content_key(b"raw")} and content_key(b"raw").startswith("sha256:")
    assert list(named_sources("b.png")) == ["b.png"]


def test_named_sources_read_a_remote_filesystems_files_into_memory() -> None:
    assert list(named_sources(["bucket/a.pdf"], fs=_Remote({"bucket/a.pdf": b"%PDF"}))) == [("bucket/a.pdf", b"%PDF")]


def test_describe_sources_shows_no_credentials_and_no_bytes() -> None:
    text = describe_sources(["https://user:pw@example.com/a.pdf", b"12345", ("b.png", b"x"), io.BytesIO()])
    assert text == "['https://example.com/a.pdf', <5 bytes>, ('b.png', <bytes>), ... (4 in all)]"
    assert describe_sources(io.BytesIO()) == "<BytesIO>"


# -- npy ----------------------------------------------------------------------------------------------------------


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_npy_array_becomes_a_png_source() -> None:
    data = _npy(np.full((20, 30, 3), 200, dtype=np.uint8))
    assert is_npy(data) and is_npy(b"", mimetype=NPY_MIME_TYPE) and is_npy(None, path="x.npy")
    assert not is_npy(b"%PDF-1.7") and not is_npy("text") and not is_npy(None)
    item = npy_source("chart", data)
    assert item.label == "chart" and item.error is None and item.data is not None
    assert Image.open(io.BytesIO(item.data)).size == (30, 20)
    assert image_from_npy(data).mode == "RGB"


def test_an_array_that_is_not_an_image_becomes_a_source_with_its_error() -> None:
    item = npy_source("cube", _npy(np.zeros((2, 3, 4, 5), dtype=np.uint8)))
    assert isinstance(item.error, UnsupportedDocumentError) and "cube" in str(item.error) and item.data is None


# -- the adapters re-export what moved -----------------------------------------------------------------------------


def test_the_adapters_keep_the_names_that_moved() -> None:
    pytest.importorskip("langchain_core")
    from langchain_qwen_ocr.document_loaders import documents, loader, parser

    assert documents.page_for_offset is page_for_offset and loader.configure is configure
    assert parser.image_from_npy is image_from_npy and parser.NPY_MIME_TYPE == NPY_MIME_TYPE
    doc = documents.SingleDocumentBuilder("a.pdf")
    doc.add(read("x"))
    assert doc.build().page_content == "x"
    (built,) = loader.Assembler("page", "markdown", DEFAULT_PAGE_SEPARATOR, None).add(read("y"))
    assert built.page_content == "y"
