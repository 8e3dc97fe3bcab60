"""``QwenOCRLoader`` over the real-world corpus copies: the right number of Documents, or the right typed error.

Every file is read through the loopback emulator, synchronously and asynchronously; every Document's metadata must
survive ``json.dumps``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_qwen_ocr.document_loaders import QwenOCRLoader
from qwen_ocr import QwenOCRError
from qwen_ocr.documents import CorruptDocumentError, PasswordRequiredError, WrongPasswordError, open_document
from qwen_ocr.testing import Emulator
from tests.langchain.test_loader_support import (
    CARDINAL,
    ENCRYPTED,
    ENCRYPTED_PASSWORD,
    INVALID,
    MULTIPAGE,
    ROTATED_SKEW,
    SKEW,
    SMALL,
    VECTOR,
    async_client,
    sync_client,
)


def _load(emu: Emulator, source: Any, **options: Any) -> list[Document]:
    with sync_client(emu) as client:
        docs = QwenOCRLoader(source, client=client, ocr_options=SMALL, **options).load()
    _check_json(docs)
    return docs


async def _aload(emu: Emulator, source: Any, **options: Any) -> list[Document]:
    async with async_client(emu) as aclient:
        docs = await QwenOCRLoader(source, aclient=aclient, ocr_options=SMALL, **options).aload()
    _check_json(docs)
    return docs


def _check_json(docs: list[Document]) -> None:
    for doc in docs:
        assert json.loads(json.dumps(doc.metadata)) == doc.metadata


@pytest.mark.parametrize(
    ("path", "pages"),
    [(MULTIPAGE, 6), (CARDINAL, 4), (SKEW, 1), (ROTATED_SKEW, 1), (VECTOR, 1)],
    ids=["multipage", "cardinal", "skew", "rotated_skew", "vector"],
)
async def test_scanned_files_give_one_document_per_page(emu: Emulator, path: Path, pages: int) -> None:
    for docs in (_load(emu, path), await _aload(emu, path)):
        assert len(docs) == pages
        assert [d.metadata["page"] for d in docs] == list(range(pages))
        assert {d.metadata["total_pages"] for d in docs} == {pages}
        assert [d.metadata["page_label"] for d in docs] == [str(i + 1) for i in range(pages)]
        assert all(d.metadata["source"] == str(path) for d in docs)
        assert all(d.metadata["text_source"] == "ocr" for d in docs)  # scans, and vector.pdf has no text layer
        assert all(d.page_content for d in docs)
        assert all(d.metadata["model"] == "qwen-vl-ocr" and d.metadata["provider"] == "dashscope" for d in docs)
        assert all(d.metadata["request_id"] and d.metadata["input_tokens"] > 0 for d in docs)
    assert emu.stats.successes == 2 * pages


async def test_rotated_page_is_sent_as_displayed(emu: Emulator) -> None:
    """rotated_skew.pdf is a landscape MediaBox with /Rotate 90: the page is sent, and its size (the frame of any
    boxes) reported, upright as a reader sees it: portrait Letter."""
    with open_document(ROTATED_SKEW) as pdf:
        assert pdf.page(0).rotation == 90
    (doc,) = _load(emu, ROTATED_SKEW, task="advanced_recognition", include_lines=True)
    assert (doc.metadata["page_width"], doc.metadata["page_height"]) == (612, 792)
    assert doc.metadata["lines"]


@pytest.mark.parametrize("mode", ["page", "single"])
async def test_invalid_pdf_raises_its_typed_error(emu: Emulator, mode: str) -> None:
    with pytest.raises(CorruptDocumentError, match=r"invalid\.pdf"):
        _load(emu, INVALID, mode=mode)
    with pytest.raises(CorruptDocumentError, match=r"invalid\.pdf"):
        await _aload(emu, INVALID, mode=mode)
    assert emu.stats.requests == 0


async def test_encrypted_without_password_raises_password_required(emu: Emulator) -> None:
    with pytest.raises(PasswordRequiredError, match="password"):
        _load(emu, ENCRYPTED)
    with pytest.raises(PasswordRequiredError):
        await _aload(emu, ENCRYPTED)


async def test_encrypted_with_a_wrong_password_raises_wrong_password(emu: Emulator) -> None:
    with pytest.raises(WrongPasswordError):
        _load(emu, ENCRYPTED, password="letmein")
    with pytest.raises(WrongPasswordError):
        await _aload(emu, ENCRYPTED, password="letmein")


async def test_encrypted_with_its_password_gives_its_page(emu: Emulator) -> None:
    # Plain-text reading uses the born-digital text layer: no request.
    for docs in (
        _load(emu, ENCRYPTED, password=ENCRYPTED_PASSWORD),
        await _aload(emu, ENCRYPTED, password=ENCRYPTED_PASSWORD),
    ):
        assert len(docs) == 1
        assert docs[0].page_content.startswith("Lorem ipsum")
        assert docs[0].metadata["text_source"] == "text_layer"
        assert docs[0].metadata["provider"] == "text_layer"
    assert emu.stats.requests == 0
    # Asked to OCR every page, it sends the page.
    (doc,) = _load(emu, ENCRYPTED, password=ENCRYPTED_PASSWORD, text_layer="never")
    assert doc.metadata["text_source"] == "ocr"
    assert emu.stats.successes == 1


async def test_the_corpus_together_with_marks_keeps_every_readable_page(emu: Emulator) -> None:
    """All the cases in one load with on_error="mark": every page read, one marked Document per bad file."""
    sources = [MULTIPAGE, INVALID, ENCRYPTED, CARDINAL, SKEW, ROTATED_SKEW, VECTOR]
    for docs in (_load(emu, sources, on_error="mark"), await _aload(emu, sources, on_error="mark")):
        assert [(Path(str(d.metadata["source"])).name, d.metadata.get("error_type")) for d in docs] == [
            *[("multipage.pdf", None)] * 6,
            ("invalid.pdf", "CorruptDocumentError"),
            ("libreoffice-writer-password.pdf", "PasswordRequiredError"),
            *[("cardinal.pdf", None)] * 4,
            ("skew.pdf", None),
            ("rotated_skew.pdf", None),
            ("vector.pdf", None),
        ]
        failed = [d for d in docs if "error" in d.metadata]
        assert all(d.page_content == "" for d in failed)
        assert [d.metadata["error_code"] for d in failed] == ["CorruptDocument", "PasswordRequired"]
        assert "password=" in str(failed[1].metadata["error"])  # the message says how to fix it


async def test_skip_leaves_out_the_bad_files_and_logs_them(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="langchain_qwen_ocr")
    docs = _load(emu, [INVALID, SKEW, ENCRYPTED], on_error="skip")
    assert [Path(str(d.metadata["source"])).name for d in docs] == ["skew.pdf"]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"skipped {INVALID}", f"skipped {ENCRYPTED}"]


async def test_every_error_is_a_qwen_ocr_error(emu: Emulator) -> None:
    for source in (INVALID, ENCRYPTED, "no/such/file.pdf"):
        with pytest.raises(QwenOCRError):
            _load(emu, source)
