"""``on_error`` per page and per file, retries per page, errors that stop everything, and the key kept secret."""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_qwen_ocr.document_loaders import QwenOCRLoader, page_for_offset
from qwen_ocr import AuthenticationError, BadRequestError, QwenOCR
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest, image_url_of
from tests.langchain.test_loader_support import (
    ENCRYPTED,
    ENCRYPTED_PASSWORD,
    MULTIPAGE,
    SMALL,
    PageFaults,
    async_client,
    page_digest,
    sync_client,
)

PAGES = 6


@pytest.fixture(scope="module")
def digests() -> list[str]:
    """The image each page of multipage.pdf is sent as."""
    return [page_digest(MULTIPAGE, index, **SMALL) for index in range(PAGES)]


def _load(emu: Emulator, transport: PageFaults, **options: Any) -> list[Document]:
    with sync_client(emu, transport) as client:
        return QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL, **options).load()


async def _aload(emu: Emulator, transport: PageFaults, **options: Any) -> list[Document]:
    async with async_client(emu, transport) as aclient:
        return await QwenOCRLoader(MULTIPAGE, aclient=aclient, ocr_options=SMALL, **options).aload()


# -- one page fails for good ------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_mark_keeps_every_other_page_when_one_page_fails_for_good(
    emu: Emulator, digests: list[str], use_async: bool
) -> None:
    transport = PageFaults({digests[2]: [400]})  # InvalidParameter: not retried
    docs = await _aload(emu, transport, on_error="mark") if use_async else _load(emu, transport, on_error="mark")
    assert [d.metadata["page"] for d in docs] == list(range(PAGES))
    bad = docs[2]
    assert bad.page_content == ""
    assert bad.metadata["error_type"] == "BadRequestError"
    assert bad.metadata["error_code"] == "InvalidParameter"
    assert "HTTP 400" in str(bad.metadata["error"])
    assert (bad.metadata["source"], bad.metadata["page_label"], bad.metadata["total_pages"]) == (str(MULTIPAGE), "3", 6)
    good = [d for d in docs if d is not bad]
    assert all(d.page_content and "error" not in d.metadata for d in good)
    assert transport.attempts[digests[2]] == 1  # a 400 is final
    assert emu.stats.successes_by_image == {digest: 1 for i, digest in enumerate(digests) if i != 2}
    for doc in docs:
        assert json.loads(json.dumps(doc.metadata)) == doc.metadata


async def test_skip_leaves_out_the_failed_page_and_logs_it(
    emu: Emulator, digests: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_qwen_ocr")
    docs = _load(emu, PageFaults({digests[4]: [400]}), on_error="skip")
    assert [d.metadata["page"] for d in docs] == [0, 1, 2, 3, 5]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"skipped page 5 of {MULTIPAGE}"]


async def test_raise_gives_the_pages_before_then_the_typed_error(emu: Emulator, digests: list[str]) -> None:
    with sync_client(emu, PageFaults({digests[2]: [400]})) as client:
        loader = QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL)  # on_error="raise" by default
        docs = loader.lazy_load()
        seen = [next(docs).metadata["page"], next(docs).metadata["page"]]
        with pytest.raises(BadRequestError) as info:
            next(docs)
    assert seen == [0, 1]
    assert info.value.code == "InvalidParameter"
    with pytest.raises(BadRequestError):
        await _aload(emu, PageFaults({digests[2]: [400]}))


async def test_single_mode_lists_the_failed_page_and_maps_the_others(emu: Emulator, digests: list[str]) -> None:
    (doc,) = _load(emu, PageFaults({digests[1]: [400]}), on_error="mark", mode="single")
    assert doc.metadata["pages"] == [0, 2, 3, 4, 5]
    assert [page for _, page in doc.metadata["page_offsets"]] == [0, 2, 3, 4, 5]
    (error,) = doc.metadata["errors"]
    assert error["page"] == 1 and error["error_type"] == "BadRequestError"
    start_of_page_3 = doc.metadata["page_offsets"][2][0]
    assert page_for_offset(doc.metadata, start_of_page_3 + 5) == 3
    assert json.loads(json.dumps(doc.metadata)) == doc.metadata


# -- retries are per page ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_a_429_on_one_page_is_retried_for_that_page_only(
    emu: Emulator, digests: list[str], use_async: bool
) -> None:
    transport = PageFaults({digests[3]: [429]})
    docs = await _aload(emu, transport) if use_async else _load(emu, transport)
    assert [d.metadata["page"] for d in docs] == list(range(PAGES))
    assert all(d.page_content and "error" not in d.metadata for d in docs)
    assert [transport.attempts[d] for d in digests] == [1, 1, 1, 2, 1, 1]
    assert emu.stats.successes_by_image == dict.fromkeys(digests, 1)


async def test_an_emulator_429_is_retried_for_the_page_it_hit(emu: Emulator, digests: list[str]) -> None:
    """The emulator throttles the first request it receives (whichever page that is, 4 in flight)."""
    emu.inject("429")
    with sync_client(emu) as client:
        docs = QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL, max_concurrency=4).load()
    assert [d.metadata["page"] for d in docs] == list(range(PAGES))
    assert all("error" not in d.metadata for d in docs)
    per_image = collections.Counter(image_digest(image_url_of("dashscope", r.json)) for r in emu.request_log)
    assert set(per_image) == set(digests)
    assert sorted(per_image.values()) == [1, 1, 1, 1, 1, 2]
    assert emu.stats.responses == {429: 1, 200: PAGES}
    assert emu.stats.successes_by_image == dict.fromkeys(digests, 1)


# -- errors that would fail every page are raised whatever on_error says ----------------------------------------


@pytest.mark.parametrize("on_error", ["skip", "mark"])
async def test_a_wrong_key_is_raised_not_marked_on_every_page(on_error: str) -> None:
    with Emulator(valid_keys={"sk-the-right-one"}) as emu:
        client = QwenOCR(api_key="sk-very-secret-wrong-key", base_url=emu.base_url)
        with pytest.raises(AuthenticationError) as info:
            QwenOCRLoader(MULTIPAGE, client=client, ocr_options=SMALL, on_error=on_error).load()
        assert "sk-very-secret-wrong-key" not in str(info.value) + repr(info.value)
        aclient = async_client(emu)
        aclient.api_key = client.api_key
        with pytest.raises(AuthenticationError):
            await QwenOCRLoader(MULTIPAGE, aclient=aclient, ocr_options=SMALL, on_error=on_error).aload()
        await aclient.aclose()


# -- the key and the password stay secret -----------------------------------------------------------------------


async def test_key_and_password_appear_in_no_repr_log_message_or_metadata(
    emu: Emulator, digests: list[str], captured_logs: pytest.LogCaptureFixture
) -> None:
    key = "sk-do-not-leak-0123456789"
    loader = QwenOCRLoader(
        [ENCRYPTED, MULTIPAGE],
        api_key=key,
        base_url=emu.base_url,
        password=ENCRYPTED_PASSWORD,
        text_layer="never",
        on_error="mark",
        ocr_options=SMALL,
        max_retries=0,
    )
    shown = repr(loader)
    assert key not in shown and ENCRYPTED_PASSWORD not in shown
    assert "password='***'" in shown
    emu.inject("500")  # the first page (alone in flight) fails: its error goes into metadata
    docs = loader.load()
    assert sum("error" in d.metadata for d in docs) == 1
    for doc in docs:
        dumped = json.dumps(doc.metadata)
        assert key not in dumped and ENCRYPTED_PASSWORD not in dumped
    for record in captured_logs.records:
        assert key not in record.getMessage() and ENCRYPTED_PASSWORD not in record.getMessage()
    parser_repr = repr(QwenOCRLoader(MULTIPAGE, api_key=key).__dict__)
    assert key not in parser_repr
