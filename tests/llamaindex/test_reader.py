"""QwenOCRReader on corpus files through the emulator: pages, metadata, ids, errors, secrets, async."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import Document, MetadataMode

from llamaindex_qwen_ocr import QwenOCRReader
from qwen_ocr import AuthenticationError, PasswordRequiredError, ServerError, WrongPasswordError
from qwen_ocr.testing import Emulator

from .conftest import CROM, ENCRYPTED, FOUR_PAGES, KEY, MULTIPAGE

Reader = Callable[..., QwenOCRReader]

RAW = ("latex", "tables_html", "fields", "lines", "formulas")


def test_one_document_per_page_in_order_with_page_facts(make_reader: Reader) -> None:
    docs = make_reader("text_recognition").load_data(MULTIPAGE)

    assert len(docs) == 6
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3", "4", "5", "6"]
    assert [d.metadata["page"] for d in docs] == [0, 1, 2, 3, 4, 5]
    first = docs[0].metadata
    assert first["file_name"] == "multipage.pdf"
    assert first["file_path"] == str(MULTIPAGE)
    assert first["total_pages"] == 6
    assert first["task"] == "text_recognition"
    assert first["model"] == "qwen-vl-ocr"
    assert first["text_source"] == "ocr"
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0 and first["total_tokens"] > 0
    assert docs[0].text.startswith("Audience")
    assert [d.id_ for d in docs] == [f"{MULTIPAGE}_part_{i}" for i in range(6)]


def test_ids_are_stable_across_reads_and_follow_the_page_index(make_reader: Reader) -> None:
    reader = make_reader("text_recognition", pages="2-3", text_layer="never")  # every page sent (no text layer)
    first = reader.load_data(FOUR_PAGES)
    again = reader.load_data(str(FOUR_PAGES))

    assert [d.metadata["page_label"] for d in first] == ["2", "3"]
    assert [d.id_ for d in first] == [f"{FOUR_PAGES}_part_1", f"{FOUR_PAGES}_part_2"]
    assert [d.id_ for d in again] == [d.id_ for d in first]
    # The request ids differ (a new request each time); the page documents are still recognised by id.
    assert first[0].metadata["request_id"] != again[0].metadata["request_id"]


def test_metadata_is_flat_and_raw_output_is_kept_but_hidden(make_reader: Reader) -> None:
    (doc,) = make_reader("document_parsing").load_data(CROM)

    for key, value in doc.metadata.items():
        assert isinstance(value, (str, int, float, bool)), key
    json.dumps(doc.metadata)
    assert doc.metadata["latex"].startswith("\\documentclass{article}")
    # The text is readable: LaTeX turned into plain text.
    assert "\\section" not in doc.text and "Abstract" in doc.text
    assert "visual encoder → cross-modal connector → LLM" in doc.text

    for excluded in (doc.excluded_embed_metadata_keys, doc.excluded_llm_metadata_keys):
        for key in ("latex", "request_id", "input_tokens", "output_tokens", "image_tokens", "total_tokens"):
            assert key in excluded
    for mode in (MetadataMode.EMBED, MetadataMode.LLM):
        content = doc.get_content(metadata_mode=mode)
        assert "\\documentclass" not in content
        assert doc.metadata["request_id"] not in content
        assert f"file_path: {CROM}" in content and "page_label: 1" in content
        assert "file_name" not in content


def test_table_parsing_gives_markdown_text_and_keeps_the_html(make_reader: Reader) -> None:
    (doc,) = make_reader("table_parsing").load_data(CROM)

    assert doc.text.startswith("Case nameTest No.3")  # a title row: the caption line, not the header
    assert "| T13 | WT5 | Live Load | 30.48 | 4.524 |" in doc.text
    (html,) = json.loads(doc.metadata["tables_html"])
    assert "<table>" in html and "<td>T13</td>" in html
    assert "tables_html" in doc.excluded_embed_metadata_keys and "tables_html" in doc.excluded_llm_metadata_keys
    # The recorded reply is cut off mid-table although its finish_reason is "stop".
    assert doc.metadata["finish_reason"] == "stop" and doc.metadata["truncated"] is True


def test_fields_and_boxes_are_kept_as_json_text(make_reader: Reader) -> None:
    (kie,) = make_reader("key_information_extraction").load_data(CROM)
    (adv,) = make_reader("advanced_recognition").load_data(CROM)

    assert json.loads(kie.metadata["fields"])["发票"]["发票号码"] == "10283819"
    assert "发票.发票号码: 10283819" in kie.text
    lines = json.loads(adv.metadata["lines"])
    assert lines[0]["text"] == "INTERNATIONAL" and len(lines[0]["bbox"]) == 4 and len(lines[0]["location"]) == 8
    assert adv.text.splitlines()[:3] == ["INTERNATIONAL", "MOTHER LANGUAGE", "DAY"]


def test_options_reach_the_request(emulator: Emulator, make_reader: Reader) -> None:
    emulator.reset()
    make_reader("key_information_extraction", schema={"Invoice Number": ""}, max_tokens=500).load_data(CROM)

    body = emulator.request_log[-1].json
    assert "Invoice Number" in json.dumps(body, ensure_ascii=False)
    assert body["parameters"]["max_tokens"] == 500


def test_encrypted_pdf_needs_its_password(make_reader: Reader) -> None:
    with pytest.raises(PasswordRequiredError):
        make_reader().load_data(ENCRYPTED)
    with pytest.raises(WrongPasswordError):
        make_reader(password="not-it").load_data(ENCRYPTED)

    docs = make_reader(password="openpassword").load_data(ENCRYPTED)
    assert len(docs) >= 1 and docs[0].metadata["file_name"] == "libreoffice-writer-password.pdf"


def test_a_failed_page_raises_is_skipped_or_is_marked(fake_reader: Reader) -> None:
    # Page 2's request gets an HTTP 500 (no retries); the other pages get "ok".
    with pytest.raises(ServerError):
        fake_reader("ok", errors=[None, 500]).load_data(FOUR_PAGES)

    skipped = fake_reader("ok", errors=[None, 500], on_error="skip").load_data(FOUR_PAGES)
    assert [d.metadata["page_label"] for d in skipped] == ["1", "3", "4"]

    marked = fake_reader("ok", errors=[None, 500], on_error="mark").load_data(FOUR_PAGES)
    assert [d.text for d in marked] == ["ok", "", "ok", "ok"]
    failed = marked[1].metadata
    assert failed["error_type"] == "ServerError" and failed["error"]
    assert failed["page_label"] == "2" and marked[1].id_ == f"{FOUR_PAGES}_part_1"
    assert "error" in marked[1].excluded_embed_metadata_keys


def test_bytes_and_file_objects(make_reader: Reader) -> None:
    data = CROM.read_bytes()
    (from_bytes,) = make_reader().load_data(data)
    assert from_bytes.id_.startswith("sha256:") and from_bytes.id_.endswith("_part_0")
    assert "file_name" not in from_bytes.metadata
    assert make_reader().load_data(data)[0].id_ == from_bytes.id_

    with CROM.open("rb") as handle:
        (from_file,) = make_reader().load_data(handle, extra_info={"source": "scanner-7"})
    assert from_file.id_ == f"{CROM}_part_0"
    assert from_file.metadata["file_name"] == "crom.png" and from_file.metadata["source"] == "scanner-7"
    # A key the reader does not know is the caller's: it stays visible to embeddings.
    assert "source" not in from_file.excluded_embed_metadata_keys


def test_the_key_and_password_are_never_serialised_or_shown(make_reader: Reader) -> None:
    reader = make_reader("table_parsing", password="pdf-secret-pw")

    for text in (repr(reader), str(reader), reader.to_json(), json.dumps(reader.to_dict(), default=str)):
        assert KEY not in text and "pdf-secret-pw" not in text
    data = reader.to_dict()
    assert "api_key" not in data and "password" not in data and "client" not in data
    assert data["class_name"] == QwenOCRReader.class_name() == "QwenOCRReader"
    assert data["is_remote"] is True

    again = QwenOCRReader.from_dict(data)
    assert again.task == reader.task and again.base_url == reader.base_url and again.api_key is None
    assert QwenOCRReader.from_json(reader.to_json()).task == reader.task
    # Pickling (SimpleDirectoryReader with num_workers) keeps the settings.
    assert pickle.loads(pickle.dumps(reader)).task == reader.task


def test_the_key_is_not_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Emulator(valid_keys={"another-key"}) as emu:
        reader = QwenOCRReader(api_key=KEY, base_url=emu.base_url, max_retries=0)
        with pytest.raises(AuthenticationError) as info:
            reader.load_data(CROM)
        # A wrong key fails every page alike: raised whatever on_error says, as in every integration.
        with pytest.raises(AuthenticationError) as marked:
            QwenOCRReader(api_key=KEY, base_url=emu.base_url, max_retries=0, on_error="mark").load_data(CROM)

    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in str(marked.value) and KEY not in repr(marked.value)
    assert all(KEY not in record.getMessage() for record in caplog.records)


def test_a_path_that_is_not_a_document_raises_a_typed_error(make_reader: Reader, tmp_path: Path) -> None:
    from qwen_ocr import DocumentError

    bogus = tmp_path / "notes.pdf"
    bogus.write_text("not a pdf at all")
    with pytest.raises(DocumentError):
        make_reader().load_data(bogus)


async def test_async_loading_is_native_and_matches_sync(make_reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = make_reader("table_parsing")
    expected = [(d.id_, d.text) for d in reader.load_data(MULTIPAGE)]

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path must not run the sync reader")

    monkeypatch.setattr(QwenOCRReader, "lazy_load_data", no_sync)
    monkeypatch.setattr(QwenOCRReader, "load_data", no_sync)
    assert inspect.iscoroutinefunction(QwenOCRReader.alazy_load_data)
    assert inspect.isasyncgenfunction(QwenOCRReader.aiter_data)

    docs = await reader.aload_data(MULTIPAGE)
    assert [(d.id_, d.text) for d in docs] == expected

    streamed: list[Document] = []
    async for doc in reader.aiter_data(str(MULTIPAGE), extra_info={"batch": "b1"}):
        streamed.append(doc)
    assert [d.id_ for d in await reader.alazy_load_data(str(MULTIPAGE))] == [d.id_ for d in streamed]
    assert [d.metadata["page_label"] for d in streamed] == ["1", "2", "3", "4", "5", "6"]
    assert streamed[0].metadata["batch"] == "b1"


async def test_async_failed_page_and_early_stop(fake_reader: Reader) -> None:
    marked = await fake_reader("ok", errors=[None, 500], on_error="mark").aload_data(FOUR_PAGES)
    assert [d.text for d in marked] == ["ok", "", "ok", "ok"]
    with pytest.raises(ServerError):
        await fake_reader("ok", errors=[None, 500]).aload_data(FOUR_PAGES)

    # Leaving the async iterator early closes the pages still in flight.
    reader = fake_reader("ok", max_concurrency=4)
    async for _ in reader.aiter_data(FOUR_PAGES):
        break
    await asyncio.sleep(0)


def test_text_layer_pages_cost_no_request_and_still_parse(emulator: Emulator, make_reader: Reader) -> None:
    from llamaindex_qwen_ocr import QwenOCRNodeParser

    emulator.reset()
    docs = make_reader("document_parsing", text_layer="only").load_data(FOUR_PAGES)

    assert emulator.stats.requests == 0
    assert [d.metadata["text_source"] for d in docs] == ["text_layer"] * 4
    assert "task" not in docs[0].metadata and docs[0].text.strip()
    nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)
    assert {n.metadata["node_kind"] for n in nodes} == {"text"}
    assert {n.metadata["page_label"] for n in nodes} == {"1", "2", "3", "4"}
