"""Issue 16, section 1: the pixel budget the service really uses.

Every request of both protocols states the budget its image was prepared for (``min_pixels``/``max_pixels`` on the
image part); the default is about 2.5 MP (2,560 tokens at 32-px patches); a caller's ``max_pixels`` is sent as
given; ``resolution="standard" | "high" | "max"`` asks for more; the estimates equal the prepared pixels / patch**2
+ 2; PDF scans are never rendered above their own resolution; a bill far from the estimate is logged once.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from qwen_ocr import (
    AsyncQwenOCR,
    InvalidArgumentError,
    QwenOCR,
    RetryPolicy,
    estimate_document,
    estimate_tokens,
    open_document,
    prepare_image,
    read_document,
    smart_resize,
)
from qwen_ocr.models import model_spec
from qwen_ocr.testing import Emulator, FakeTransport
from tests.reliability._support import time_budget

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
BORN_DIGITAL = CORPUS / "py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf"  # A4, vector text
SCAN_150 = CORPUS / "ocrmypdf/c02-22.pdf"  # one page, a 150-dpi greyscale scan (1600x1952 when upsampled)
NO_WAIT = RetryPolicy(max_retries=1, initial_delay=0.0, max_delay=0.0, jitter=0.0)
BUDGET = 30.0
STANDARD_32 = 2560 * 32 * 32  # 2,621,440 px: the default budget of the 32-px models
STANDARD_28 = 2560 * 28 * 28  # 2,007,040 px: the same 2,560 tokens for the 28-px snapshots


def _big_png(size: tuple[int, int] = (4000, 3000)) -> bytes:
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    for y in range(40, size[1] - 40, 120):
        draw.text((40, y), "The quick brown fox jumps over the lazy dog " * 8, fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return _big_png()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with time_budget(BUDGET), Emulator() as emulator:
        yield emulator


def _image_part(body: dict[str, Any]) -> dict[str, Any]:
    if "input" in body:  # native
        content = body["input"]["messages"][0]["content"]
        return next(part for part in content if "image" in part)
    content = body["messages"][0]["content"]
    return next(part for part in content if part.get("type") == "image_url")


def _budget_of(body: dict[str, Any]) -> tuple[int | None, int | None]:
    part = _image_part(body)
    return part.get("min_pixels"), part.get("max_pixels")


# ----------------------------------------------------------------------------------------------------------------
# Every request states its budget


@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
def test_every_request_of_both_protocols_states_the_budget_it_was_prepared_for(
    emu: Emulator, big_png: bytes, protocol: str
) -> None:
    with QwenOCR(api_key="k", base_url=emu.base_url, protocol=protocol, retry=NO_WAIT) as client:  # type: ignore[arg-type]
        client.ocr(big_png)
        list(client.stream(big_png))
        client.ocr_many([big_png, big_png], resolution="high")
        client.ocr(big_png, max_pixels=1_000_000)
        pages = list(read_document(client, BORN_DIGITAL, pages="1"))
    assert all(page.ok for page in pages)
    sent = [_budget_of(entry.json) for entry in emu.request_log if entry.method == "POST"]
    spec = model_spec("qwen-vl-ocr")
    assert sent == [
        (spec.min_pixels, STANDARD_32),  # ocr(): the default, about 2.5 MP
        (spec.min_pixels, STANDARD_32),  # stream()
        (spec.min_pixels, spec.max_pixels),  # ocr_many(resolution="high"): the documented default
        (spec.min_pixels, spec.max_pixels),
        (spec.min_pixels, 1_000_000),  # a caller's max_pixels, as given
        (spec.min_pixels, STANDARD_32),  # read_document: a PDF page
    ]
    # ...and each image was prepared within the budget its request states (the default about 2.5 MP).
    prepared = prepare_image(big_png)
    assert prepared.sent_size is not None
    width, height = prepared.sent_size
    assert 0.9 * STANDARD_32 <= width * height <= STANDARD_32
    assert (prepared.min_pixels, prepared.max_pixels) == (spec.min_pixels, STANDARD_32)


def test_async_client_states_the_budget_too(emu: Emulator, big_png: bytes) -> None:
    import asyncio

    async def run() -> None:
        async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_WAIT) as client:
            await client.ocr(big_png, resolution="max")
            async for _ in client.stream(big_png):
                pass

    asyncio.run(run())
    spec = model_spec("qwen-vl-ocr")
    sent = [_budget_of(entry.json) for entry in emu.request_log if entry.method == "POST"]
    assert sent == [(spec.min_pixels, spec.max_pixels_ceiling), (spec.min_pixels, STANDARD_32)]


def test_a_prepared_page_carries_its_budget_to_the_request(big_png: bytes) -> None:
    transport = FakeTransport("ok")
    client = QwenOCR(api_key="k", base_url="http://127.0.0.1:9", http_client=httpx.Client(transport=transport))
    with open_document(BORN_DIGITAL, pages="1", resolution="high") as doc:
        page = next(iter(doc))
        prepared = page.prepare()
        client.ocr(prepared)  # no option: the budget the page was rendered for
        client.ocr(prepared, max_pixels=4_000_000)  # a caller's max_pixels wins, as given
    spec = model_spec("qwen-vl-ocr")
    assert [_budget_of(r.json) for r in transport.requests] == [
        (spec.min_pixels, spec.max_pixels),
        (spec.min_pixels, 4_000_000),
    ]


def test_a_url_states_the_budget_so_the_service_reads_what_is_estimated() -> None:
    transport = FakeTransport("ok")
    client = QwenOCR(api_key="k", base_url="http://127.0.0.1:9", http_client=httpx.Client(transport=transport))
    client.ocr("https://example.com/poster.png")
    client.ocr("https://example.com/poster.png", resolution="high")
    assert [_budget_of(r.json) for r in transport.requests] == [(3072, STANDARD_32), (3072, 8_388_608)]


def test_28px_snapshots_get_the_same_tokens_with_their_own_patch(big_png: bytes) -> None:
    transport = FakeTransport("ok")
    client = QwenOCR(
        api_key="k",
        base_url="http://127.0.0.1:9",
        region="cn",
        model="qwen-vl-ocr-2025-08-28",
        http_client=httpx.Client(transport=transport),
    )
    client.ocr(big_png)
    assert _budget_of(transport.requests[0].json) == (3136, STANDARD_28)
    prepared = prepare_image(big_png, model="qwen-vl-ocr-2025-08-28")
    assert prepared.sent_size is not None
    w, h = prepared.sent_size
    assert w % 28 == 0 and h % 28 == 0 and w * h <= STANDARD_28
    assert estimate_tokens(big_png, model="qwen-vl-ocr-2025-08-28") == w * h // (28 * 28) + 2


# ----------------------------------------------------------------------------------------------------------------
# Levels and validation


def test_resolution_levels_and_their_budgets() -> None:
    from qwen_ocr.budget import pixel_budget

    for name in ("qwen-vl-ocr", "qwen-vl-ocr-latest", "qwen3.5-ocr", "qwen-vl-ocr-2025-08-28"):
        spec = model_spec(name)
        standard = pixel_budget(spec)
        assert standard == pixel_budget(spec, resolution="standard")
        assert standard.max_pixels == 2560 * spec.patch**2
        assert pixel_budget(spec, resolution="high").max_pixels == spec.max_pixels  # the documented default
        assert pixel_budget(spec, resolution="max").max_pixels == spec.max_pixels_ceiling
        assert standard.min_pixels == spec.min_pixels
        assert pixel_budget(spec, max_pixels=1_234_567).max_pixels == 1_234_567  # as given, not rounded


def test_bad_resolution_and_conflicting_options_are_clear_errors(big_png: bytes) -> None:
    client = QwenOCR(api_key="k", base_url="http://127.0.0.1:9", http_client=httpx.Client(transport=FakeTransport()))
    with pytest.raises(InvalidArgumentError, match=r"resolution='ultra'.*'standard', 'high' or 'max'"):
        client.ocr(big_png, resolution="ultra")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="resolution= or max_pixels="):
        client.ocr(big_png, resolution="high", max_pixels=1_000_000)
    with pytest.raises(InvalidArgumentError, match="resolution="):
        estimate_tokens((4000, 3000), resolution="huge")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="resolution="):
        open_document(BORN_DIGITAL, resolution=2)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------------
# Estimates equal what is prepared and billed


@pytest.mark.parametrize("model", ["qwen-vl-ocr", "qwen-vl-ocr-2025-08-28"])
@pytest.mark.parametrize("resolution", [None, "standard", "high", "max"])
def test_estimate_tokens_is_the_prepared_pixels_over_patch_squared_plus_two(
    big_png: bytes, model: str, resolution: str | None
) -> None:
    patch = model_spec(model).patch
    extra: dict[str, Any] = {} if resolution is None else {"resolution": resolution}
    prepared = prepare_image(big_png, model=model, **extra)
    assert prepared.sent_size is not None
    w, h = prepared.sent_size
    if (w, h) == (4000, 3000):
        # Within the budget: sent as it is (never upscaled, not resampled); the service rounds each side to the
        # patch itself, and the estimate follows that rounding.
        assert resolution == "max" or model_spec(model).patch == 28
        w, h = smart_resize(w, h, patch=patch, min_pixels=1, max_pixels=10**9)
    else:  # downscaled: to a multiple of the patch, exactly what the model reads
        assert w % patch == 0 and h % patch == 0
    assert estimate_tokens(big_png, model=model, **extra) == w * h // patch**2 + 2


def test_estimate_document_is_the_prepared_pages_and_defaults_to_about_2_5_mp() -> None:
    for resolution in (None, "high"):
        extra: dict[str, Any] = {} if resolution is None else {"resolution": resolution}
        estimate = estimate_document(BORN_DIGITAL, text_layer="never", pages="1-2", **extra)
        with open_document(BORN_DIGITAL, pages="1-2", **extra) as doc:
            prepared = [page.prepare() for page in doc]
        expected = [p.sent_size[0] * p.sent_size[1] // 1024 + 2 for p in prepared if p.sent_size]
        assert [p.image_tokens for p in estimate.per_page] == expected
    # The default: an A4 page at about 170 dpi (2,560 tokens at most), not 300 dpi (8,134 tokens).
    default = estimate_document(BORN_DIGITAL, text_layer="never", pages="1")
    assert 2300 <= default.image_tokens <= 2562


def test_a_scanned_page_is_never_rendered_above_its_own_resolution() -> None:
    with open_document(SCAN_150) as doc:
        page = doc.page(0)
        assert page.analysis().looks_scanned and 140 <= page.analysis().image_dpi <= 160
        width, height = page.sent_size  # the scan's own 150 dpi, was 300 dpi: 1600x1952, 4x the pixels
        native = (page.width / 72 * page.analysis().image_dpi, page.height / 72 * page.analysis().image_dpi)
        assert width <= native[0] + 32 and height <= native[1] + 32
        assert page.image_tokens == width * height // 1024 + 2
    with open_document(SCAN_150, resolution="max") as doc:  # more budget: still the scan's own pixels
        assert doc.page(0).sent_size == (width, height)


# ----------------------------------------------------------------------------------------------------------------
# Calibration: the bill against the estimate


def _native_reply(image_tokens: int) -> dict[str, Any]:
    return {
        "output": {"choices": [{"finish_reason": "stop", "message": {"content": [{"text": "ok"}]}}]},
        "usage": {"input_tokens": image_tokens + 30, "output_tokens": 2, "image_tokens": image_tokens},
        "request_id": "r1",
    }


def test_a_bill_far_from_the_estimate_is_logged_once(big_png: bytes, caplog: pytest.LogCaptureFixture) -> None:
    from qwen_ocr import budget

    budget._reset_calibration()
    expected = estimate_tokens(big_png)
    # The official host (the calibration is about the service's own budget), through a fake transport.
    transport = FakeTransport([_native_reply(expected), _native_reply(expected * 3), _native_reply(expected * 3)])
    client = QwenOCR(api_key="k", http_client=httpx.Client(transport=transport))
    with caplog.at_level(logging.WARNING, logger="qwen_ocr"):
        client.ocr(big_png)
        assert not [r for r in caplog.records if "image tokens" in r.getMessage()]  # the bill matched
        client.ocr(big_png)
        client.ocr(big_png)
    logged = [r.getMessage() for r in caplog.records if "image tokens" in r.getMessage()]
    assert len(logged) == 1, logged  # once, not per request
    assert f"{expected * 3:,}" in logged[0] and f"{expected:,}" in logged[0] and "qwen-vl-ocr" in logged[0]


def test_calibration_is_pure_and_tolerates_small_differences() -> None:
    from qwen_ocr.budget import image_tokens_mismatch

    assert image_tokens_mismatch(2562, 2562) is None
    assert image_tokens_mismatch(2562, 2500) is None  # a few percent: rounding, not a changed budget
    assert image_tokens_mismatch(8194, 1862) == pytest.approx(1862 / 8194)  # the recorded call of the issue
    assert image_tokens_mismatch(2562, 0) is None  # no usage reported: nothing to compare
    assert image_tokens_mismatch(6, 12) is None  # tiny images: a few tokens either way are not news


# ----------------------------------------------------------------------------------------------------------------
# The adapters pass resolution= wherever they pass max_pixels


def test_loader_parser_reader_and_image_reader_pass_resolution(emu: Emulator, big_png: bytes, tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.messages import HumanMessage

    from langchain_qwen_ocr.document_loaders import QwenOCRLoader
    from langchain_qwen_ocr.image_reader import ImageReader
    from langchain_qwen_ocr.tools import QwenOCRTool
    from llamaindex_qwen_ocr.readers import QwenOCRReader

    image = tmp_path / "page.png"
    image.write_bytes(big_png)
    client = QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_WAIT)
    QwenOCRLoader(str(image), client=client, ocr_options={"resolution": "high"}).load()
    QwenOCRReader(api_key="k", base_url=emu.base_url, resolution="max").load_data(str(image))
    data_url = "data:image/png;base64," + __import__("base64").b64encode(big_png).decode()
    reader = ImageReader(client=client, resolution="high")
    reader.invoke([HumanMessage(content=[{"type": "image_url", "image_url": {"url": data_url}}])])
    QwenOCRTool(client=client, resolution="max").invoke({"image": data_url})
    spec = model_spec("qwen-vl-ocr")
    sent = [_budget_of(entry.json)[1] for entry in emu.request_log if entry.method == "POST"]
    assert sent == [spec.max_pixels, spec.max_pixels_ceiling, spec.max_pixels, spec.max_pixels_ceiling]


def test_request_bodies_stay_json_serialisable_with_the_budget(big_png: bytes) -> None:
    transport = FakeTransport("ok")
    client = QwenOCR(
        api_key="k", base_url="http://127.0.0.1:9", protocol="openai", http_client=httpx.Client(transport=transport)
    )
    client.ocr(big_png, resolution="high")
    body = json.loads(transport.requests[0].content)
    assert _image_part(body)["max_pixels"] == 8_388_608 and isinstance(_image_part(body)["min_pixels"], int)


@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
def test_the_fake_transport_bills_what_the_request_states_so_no_false_alarm(
    big_png: bytes, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Users' unit tests talk to the official host through FakeTransport: its default usage must not set off the
    # calibration warning (it used to say 80 image tokens for any image).
    from qwen_ocr import budget

    budget._reset_calibration()
    transport = FakeTransport("hello")
    client = QwenOCR(api_key="k", protocol=protocol, http_client=httpx.Client(transport=transport))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="qwen_ocr"):
        plain = client.ocr(big_png)
        high = client.ocr(big_png, resolution="high")
    assert plain.usage.image_tokens == estimate_tokens(big_png)
    assert high.usage.image_tokens == estimate_tokens(big_png, resolution="high")
    assert not [r for r in caplog.records if "image tokens" in r.getMessage()]
