"""Issue 16, sections 2-4: the client by the vendor's book.

Prices per model and region (and Batch), the regions and hosts of the ``dashscope`` SDK 2.x, region-aware model
checks, ``qwen3.5-ocr``; the error mappings, image limits and box frames; the SDK's settings. The vendor's facts and
the replies used here are copied under ``tests/data/protocol/vendor/`` (see its ``SOURCES.md``).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from qwen_ocr import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidImageError,
    QuotaExceededError,
    QwenOCR,
    RetryPolicy,
    UnsupportedTaskError,
    prepare_image,
)
from qwen_ocr.config import SHARED_HOSTS, region_of_host, resolve_api_key, resolve_endpoint
from qwen_ocr.cost import estimate_document, price_usd
from qwen_ocr.errors import error_from_response, is_retryable
from qwen_ocr.imaging import MAX_ENCODED_BYTES, PreparedImage
from qwen_ocr.models import GUIDE_URL, model_price, model_spec
from qwen_ocr.protocols import compatible, native
from qwen_ocr.protocols.base import OCRCall
from qwen_ocr.results import min_area_rect, scale_rotate_rect
from qwen_ocr.tasks import Task
from qwen_ocr.testing import Emulator, FakeTransport
from tests.conftest import PROTOCOL
from tests.reliability._support import time_budget

VENDOR = PROTOCOL / "vendor"
RECORDED = PROTOCOL / "recorded" / "multimodal-generation-vl-ocr-advanced-recognition-nosse.response.body.txt"
NO_WAIT = RetryPolicy(max_retries=3, initial_delay=0.0, max_delay=0.0, jitter=0.0, max_retry_after=0.0)
BUDGET = 20.0
SECRET = "sk-VENDOR-TEST-SECRET-0123456789"


def _png(size: tuple[int, int] = (320, 96), fmt: str = "PNG", text: str = "Hello") -> bytes:
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((8, size[1] // 3), text, fill="black")
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _load(path: Path) -> Any:
    return json.loads(path.read_bytes().decode("utf-8-sig"))


# ----------------------------------------------------------------------------------------------------------------
# 2. Prices, regions and models


def test_list_prices_per_model_and_region_with_batch_at_half() -> None:
    # The "done when": 0.07 in and 0.16 out in Singapore (the default region); was a flat 0.72 / 0.72.
    assert price_usd(1_000_000, 0, model="qwen-vl-ocr") == 0.07
    assert price_usd(0, 1_000_000, model="qwen-vl-ocr") == 0.16
    for region in ("us", "us-east-1", "cn", "cn-beijing"):  # Virginia and Beijing, 2025-11-20 based
        assert price_usd(1_000_000, 0, model="qwen-vl-ocr", region=region) == 0.043
        assert price_usd(0, 1_000_000, model="qwen-vl-ocr", region=region) == 0.072
    assert price_usd(1_000_000, 0, model="qwen-vl-ocr-latest", region="cn") == 0.043
    for snapshot in ("qwen-vl-ocr-2025-08-28", "qwen-vl-ocr-2025-04-13", "qwen-vl-ocr-2024-10-28"):
        assert price_usd(1_000_000, 1_000_000, model=snapshot, region="cn") == pytest.approx(2 * 0.717)
    # Batch: half of real time.
    assert price_usd(1_000_000, 1_000_000, model="qwen-vl-ocr", batch=True) == pytest.approx(0.115)
    assert price_usd(2_000_000, 0, model="qwen-vl-ocr", region="cn", batch=True) == pytest.approx(0.043)
    # Each figure says when and where it was read.
    for model in ("qwen-vl-ocr", "qwen-vl-ocr-2025-11-20"):
        for region in ("intl", "us", "cn"):
            price = model_price(model, region)
            assert price is not None and price.as_of == "2026-02-04" and price.source.startswith(GUIDE_URL)


def test_no_price_where_the_model_is_not_sold_or_not_recorded() -> None:
    with pytest.raises(InvalidArgumentError, match="not offered in Singapore") as latest:
        price_usd(1, 1, model="qwen-vl-ocr-latest")  # Beijing only
    assert latest.value.code == "UnknownPrice"
    with pytest.raises(InvalidArgumentError, match=r"no list price of qwen3\.5-ocr"):
        price_usd(1, 1, model="qwen3.5-ocr", region="cn")
    assert model_price("qwen-vl-ocr-2025-08-28", "intl") is None


def test_estimates_take_the_clients_region_and_batch(tmp_path: Path) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(_png())
    client = QwenOCR(api_key="k", region="cn")
    assert client.region == "cn-beijing"
    singapore = estimate_document(page, text_layer="never")
    beijing = estimate_document(page, text_layer="never", region=client.region)
    batch = estimate_document(page, text_layer="never", region=client.region, batch=True)
    assert singapore.region == "ap-southeast-1" and beijing.region == "cn-beijing"
    tokens_in, tokens_out = beijing.input_tokens, beijing.output_tokens
    assert singapore.price_usd == pytest.approx((tokens_in * 0.07 + tokens_out * 0.16) / 1e6)
    assert beijing.price_usd == pytest.approx((tokens_in * 0.043 + tokens_out * 0.072) / 1e6)
    assert batch.price_usd == pytest.approx(beijing.price_usd / 2)
    assert beijing.price_source is not None and GUIDE_URL in beijing.price_source
    unknown = estimate_document(page, text_layer="never", model="qwen3.5-ocr", region="cn")
    assert unknown.price_usd is None and "no recorded price" in str(unknown)
    assert unknown.image_tokens == beijing.image_tokens  # same patch and budget: the tokens are still estimated


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("intl", "https://dashscope-intl.aliyuncs.com"),
        ("ap-southeast-1", "https://dashscope-intl.aliyuncs.com"),
        ("cn", "https://dashscope.aliyuncs.com"),
        ("cn-beijing", "https://dashscope.aliyuncs.com"),
        ("us", "https://dashscope-us.aliyuncs.com"),
        ("us-east-1", "https://dashscope-us.aliyuncs.com"),
    ],
)
def test_regions_and_their_aliases(region: str, host: str) -> None:
    client = QwenOCR(api_key="k", region=region)
    assert client.base_url == host
    assert client.region == region_of_host(host)


def test_workspace_hosts() -> None:
    # Singapore with a workspace id: the workspace's own host, as the SDK does (documented in config and README).
    assert resolve_endpoint(region="intl", workspace="ws-abc123").base_url == (
        "https://ws-abc123.ap-southeast-1.maas.aliyuncs.com"
    )
    client = QwenOCR(api_key="k", workspace="ws-abc123")  # the default region is Singapore
    assert client.base_url == "https://ws-abc123.ap-southeast-1.maas.aliyuncs.com"
    assert client.region == "ap-southeast-1" and not client._custom_host  # paced at the model's limits
    # Beijing keeps its shared host (the SDK keeps it too); the header still names the workspace.
    assert resolve_endpoint(region="cn", workspace="ws-abc123").base_url == SHARED_HOSTS["cn-beijing"]
    for region in ("cn-hongkong", "eu-central-1", "ap-northeast-1"):
        with pytest.raises(InvalidArgumentError, match="workspace") as info:
            QwenOCR(api_key="k", region=region)
        assert info.value.code == "WorkspaceRequired"
        with_ws = QwenOCR(api_key="k", region=region, workspace="llm-x1")
        assert with_ws.base_url == f"https://llm-x1.{region}.maas.aliyuncs.com"
        assert with_ws.region == region
    # A workspace id that cannot be a host name: the shared host where there is one (said in a log line).
    assert resolve_endpoint(region="intl", workspace="ws_x").base_url == SHARED_HOSTS["ap-southeast-1"]
    with pytest.raises(InvalidArgumentError, match="host name"):
        resolve_endpoint(region="eu-central-1", workspace="ws_x")
    # An explicit base_url keeps the shared host with a workspace.
    assert (
        QwenOCR(api_key="k", workspace="ws-1", base_url=SHARED_HOSTS["ap-southeast-1"]).base_url
        == (SHARED_HOSTS["ap-southeast-1"])
    )
    with pytest.raises(InvalidArgumentError, match="region"):
        QwenOCR(api_key="k", region="mars")


def test_model_checks_and_hints_know_the_region(caplog: pytest.LogCaptureFixture) -> None:
    image = _png()
    # A task on a model that cannot do it: the hint names a model offered in the client's region (it used to say
    # "-latest" to everyone, and -latest is Beijing only).
    with pytest.raises(UnsupportedTaskError) as intl:
        QwenOCR(api_key="k", region="intl", model="qwen-vl-ocr-2024-10-28").ocr(image, task="table_parsing")
    assert "'qwen-vl-ocr'" in intl.value.message and "latest" not in intl.value.message
    with pytest.raises(UnsupportedTaskError) as cn:
        QwenOCR(api_key="k", region="cn", model="qwen-vl-ocr-2025-04-13").ocr(image, task="advanced_recognition")
    assert "'qwen3.5-ocr'" in cn.value.message
    # A model the region does not offer: said once in the log; the call is still sent (the service decides).
    caplog.set_level(logging.WARNING, logger="qwen_ocr")
    transport = FakeTransport(["ok"])
    client = QwenOCR(
        api_key="k", region="us", model="qwen-vl-ocr-latest", http_client=httpx.Client(transport=transport)
    )
    assert client.ocr(image).text == "ok"
    assert any("qwen-vl-ocr-latest is not offered in Virginia" in r.getMessage() for r in caplog.records)
    assert model_spec("qwen-vl-ocr-latest").offered_in("intl") is False
    assert model_spec("qwen-vl-ocr").offered_in("us") is True
    assert model_spec("my-self-hosted-vl").offered_in("cn") is None  # not known: no check


def test_qwen35_ocr_spec() -> None:
    spec = model_spec("qwen3.5-ocr")
    assert (spec.rpm, spec.tpm) == (6000, 30_000_000)
    assert (spec.patch, spec.min_pixels, spec.max_pixels, spec.max_pixels_ceiling) == (32, 3072, 8_388_608, 30_720_000)
    assert spec.max_tokens == 32_768  # the API reference's figure (the console says 16,384)
    assert (spec.max_url_bytes, spec.max_inline_bytes) == (20_000_000, 10_000_000)
    assert spec.regions == frozenset({"cn-beijing"}) and spec.task_prompt_combines
    assert spec.supports_tasks and spec.supports_advanced_recognition
    paced = QwenOCR(api_key="k", region="cn", model="qwen3.5-ocr").pacer
    older = QwenOCR(api_key="k", region="cn", model="qwen-vl-ocr").pacer  # 600 RPM
    assert paced is not None and older is not None and paced.rpm == pytest.approx(10 * older.rpm)


def _qwen35_call(**kwargs: Any) -> OCRCall:
    image = PreparedImage(url="https://example.com/page.png", original_size=(1600, 1200), sent_size=(1600, 1200))
    return OCRCall(image=image, spec=model_spec("qwen3.5-ocr"), **kwargs)


def test_a_qwen35_reply_with_rotate_rect_only_parses_into_lines_with_boxes() -> None:
    reply = _load(VENDOR / "qwen35_ocr_advanced_recognition.response.json")
    locations = reply.pop("_locations")
    reply.pop("_source")
    words = reply["output"]["choices"][0]["message"]["content"][0]["ocr_result"]["words_info"]
    assert all("location" not in w and -90 <= w["rotate_rect"][4] <= 90 for w in words)
    result = native.parse_response(200, {}, json.dumps(reply).encode(), _qwen35_call(task=Task.ADVANCED_RECOGNITION))
    assert len(result.lines) == len(words) == len(locations)  # was: no line at all
    for line, word, documented in zip(result.lines, words, locations, strict=True):
        assert line.text == word["text"]
        # The corners derived from the rectangle are the ones the same guide documents for it, within the rounding
        # of its angle to whole degrees (its long lines slope 0.2-0.6 degrees where the rectangle says 1): about
        # 1% of the line's length at its ends.
        tolerance = 2 + 0.01 * max(word["rotate_rect"][2:4])
        assert all(abs(a - b) <= tolerance for a, b in zip(line.location, documented, strict=True)), (line, documented)
        assert line.rotate_rect == pytest.approx(word["rotate_rect"])
    assert result.text.splitlines()[0] == "Audience"


def test_a_qwen35_reply_through_the_client_with_processed_text() -> None:
    body = {
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": [
                            {
                                "text": "Total 12.50\nTotal 12.50",
                                "processed_text": "Total 12.50",
                                "ocr_result": {"words_info": [{"rotate_rect": [40, 20, 16, 64, 90], "text": "Total"}]},
                            }
                        ],
                    },
                }
            ]
        },
        "usage": {"input_tokens": 40, "output_tokens": 9, "image_tokens": 30},
        "request_id": "r35",
    }
    transport = FakeTransport([body])
    with QwenOCR(api_key="k", region="cn", model="qwen3.5-ocr", http_client=httpx.Client(transport=transport)) as c:
        result = c.ocr(_png((128, 64)), task="advanced_recognition", prompt="Only the totals")
    assert result.metadata["processed_text"] == "Total 12.50"
    (line,) = result.lines
    assert line.bbox == (8, 12, 72, 28)
    sent = transport.requests[0].json
    assert sent["parameters"]["ocr_options"] == {"task": "advanced_recognition"}
    assert {"text": "Only the totals"} in sent["input"]["messages"][0]["content"]  # the task combines with it


def test_task_and_prompt_combine_for_qwen35_and_are_warned_about_elsewhere(caplog: pytest.LogCaptureFixture) -> None:
    # Compatible mode: qwen3.5-ocr gets the task's prompt and the user's; other models only the task's.
    combined = compatible.build_request(_qwen35_call(task=Task.TABLE_PARSING, prompt="Only the second table"))
    texts = [p["text"] for p in combined.json["messages"][0]["content"] if p.get("type") == "text"]
    assert texts == [Task.TABLE_PARSING.prompt(), "Only the second table"]
    caplog.set_level(logging.WARNING, logger="qwen_ocr")
    transport = FakeTransport(["<table><tr><td>a</td></tr></table>"])
    with QwenOCR(api_key="k", region="cn", http_client=httpx.Client(transport=transport)) as client:
        client.ocr(_png(), task="table_parsing", prompt="Only the second table")
    warned = [r.getMessage() for r in caplog.records if "prompt= is ignored" in r.getMessage()]
    assert warned and "qwen3.5-ocr combines" in warned[0]


# ----------------------------------------------------------------------------------------------------------------
# 3. Errors, formats, boxes


ERROR_BODIES = _load(VENDOR / "error_bodies.json")["bodies"]


@pytest.mark.parametrize("case", ERROR_BODIES, ids=[c["name"] for c in ERROR_BODIES])
def test_error_mappings(case: dict[str, Any]) -> None:
    error = error_from_response(case["status"], case["body"], {})
    assert type(error).__name__ == case["expect"], error
    assert is_retryable(error) is case["retried"]
    if case["name"] == "native_403_free_tier_only":
        assert isinstance(error, QuotaExceededError) and "free tier only" in error.message
    if case["expect"] == "InvalidImageError":
        assert isinstance(error, InvalidImageError)
        assert "Check" in error.message or "check" in error.message  # with a hint


@pytest.mark.parametrize("protocol", ["openai", "dashscope"])
def test_insufficient_quota_is_retried_and_the_call_succeeds(protocol: str) -> None:
    with time_budget(BUDGET), Emulator() as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, protocol=protocol, retry=NO_WAIT)  # type: ignore[arg-type]
        client.pacer = None
        emu.inject("insufficient_quota")
        result = client.ocr(_png())
        assert result.text
        assert emu.stats.responses == {429: 1, 200: 1}
        assert emu.stats.faults == {"insufficient_quota": 1}
        client.close()


def test_image_limits() -> None:
    assert MAX_ENCODED_BYTES == 10_000_000  # "10 MB" is 10,000,000 bytes, not 10 MiB
    prepare_image(_png((10, 40)))  # a side of 10 px is accepted (was refused)
    with pytest.raises(InvalidImageError, match="at least 10 px"):
        prepare_image(_png((9, 40)))
    # Past 4K on a side only JPEG or PNG go: a WEBP is re-encoded (it used to go as it was).
    wide = prepare_image(_png((4000, 60), fmt="WEBP"))
    assert wide.mime in ("image/png", "image/jpeg") and wide.reencoded
    small = prepare_image(_png((1000, 60), fmt="WEBP"))
    assert small.mime == "image/webp" and not small.reencoded


def test_an_image_whose_base64_is_over_10_000_000_bytes_is_reencoded() -> None:
    side = 1600  # random pixels do not compress: the PNG is ~7.7 MB, its base64 ~10.25 MB, under 10 MiB
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    assert 10_000_000 < len(data) * 4 / 3 < 10 * 1024 * 1024
    with time_budget(BUDGET):
        prepared = prepare_image(data)
    assert prepared.reencoded
    assert len(prepared.url) - prepared.url.index(",") - 1 <= MAX_ENCODED_BYTES


def _recorded_text_and_words() -> tuple[str, list[dict[str, Any]]]:
    reply = _load(RECORDED)
    content = reply["output"]["choices"][0]["message"]["content"][0]
    return content["text"], content["ocr_result"]["words_info"]


def test_compatible_boxes_of_a_32px_model_match_the_services_own() -> None:
    """qwen-vl-ocr-latest, the recorded live reply: its text has the boxes in 0..1000, its words_info in pixels of
    the ~6000 x 3000 poster. Read from the text (as the compatible mode must), every line's rectangle is the
    service's: the tilted ones are the smallest rectangles in pixels (15 degrees, where the 0..1000 frame says 29)."""
    text, words = _recorded_text_and_words()
    poster = Image.new("RGB", (6000, 3000), "white")
    transport = FakeTransport([text])
    http = httpx.Client(transport=transport)
    with (
        time_budget(BUDGET),
        QwenOCR(api_key="k", protocol="openai", model="qwen-vl-ocr-latest", http_client=http) as c,
    ):
        result = c.ocr(poster, task="advanced_recognition")
    assert len(result.lines) == len(words) == 12
    for line, word in zip(result.lines, words, strict=True):
        cx, cy, w, h, angle = line.rotate_rect
        scx, scy, sw, sh, sangle = word["rotate_rect"]
        assert abs(cx - scx) <= 5 and abs(cy - scy) <= 5, (line, word)
        assert abs(w - sw) <= 0.02 * sw + 2 and abs(h - sh) <= 0.02 * sh + 2, (line, word)
        assert abs(angle - sangle) <= 1.0, (line, word)
        assert all(abs(a - b) <= 10 for a, b in zip(line.bbox, _bbox(word["location"]), strict=True))


def _bbox(location: list[int]) -> tuple[int, int, int, int]:
    xs, ys = location[0::2], location[1::2]
    return (max(0, min(xs)), max(0, min(ys)), max(xs), max(ys))


def test_compatible_boxes_of_a_28px_model_are_in_the_models_input_pixels() -> None:
    """qwen-vl-ocr-2025-08-28 (and self-hosted Qwen2.5-VL) write pixels of the image as the model saw it: a
    2000 x 1000 image is read at 1988 x 1008 (each side rounded to 28-px patches). A line across the middle half of
    it is at x 500..1500 of the image (it was taken as 0..1000 and landed ~2x off, clipped at the edge)."""
    reply = '```json\n[{"rotate_rect": [994, 504, 56, 994, 90], "text": "MIDDLE"}]\n```'
    image = _png((2000, 1000))
    for model in ("qwen-vl-ocr-2025-08-28", "Qwen/Qwen2.5-VL-7B-Instruct"):
        transport = FakeTransport([reply])
        with QwenOCR(api_key="k", protocol="openai", model=model, http_client=httpx.Client(transport=transport)) as c:
            (line,) = c.ocr(image, task="advanced_recognition").lines
        left, top, right, bottom = line.bbox
        assert abs(left - 500) <= 2 and abs(right - 1500) <= 2, (model, line)
        assert abs(top - 472) <= 2 and abs(bottom - 528) <= 2, (model, line)
        assert line.rotate_rect == pytest.approx((1000.0, 500.0, 55.6, 1000.0, 90.0), abs=1.0)


def test_the_rebuilt_rotate_rect_is_the_min_area_rectangle_in_pixels() -> None:
    # "Привіт!" of the recorded reply: [80, 320, 139, 60, 29] in 0..1000 of a 6000 x 3000 image; the service's own
    # pixel rectangle for it is [477, 959, 886, 197, 15].
    text = '[{"rotate_rect": [80, 320, 139, 60, 29], "text": "x"}]'
    call = OCRCall(
        image=PreparedImage(url="https://e/x.png", original_size=(6000, 3000), sent_size=(6000, 3000)),
        spec=model_spec("qwen-vl-ocr-latest"),
        task=Task.ADVANCED_RECOGNITION,
    )
    body = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}).encode()
    (line,) = compatible.parse_response(200, {}, body, call).lines
    assert line.rotate_rect == pytest.approx((477, 959, 886, 197, 15), abs=4)  # was (480, 960, 235, 757, 29)
    assert min_area_rect([(0, 0), (100, 0), (100, 20), (0, 20)]) == (50.0, 10.0, 20.0, 100.0, 90.0)


def test_rescaling_a_rectangle_at_90_degrees_swaps_the_scale_factors() -> None:
    # At 90 degrees the width is the line's vertical extent: it scales with y, the height with x.
    assert scale_rotate_rect((100, 40, 20, 200, 90), 2.0, 0.5) == (200.0, 20.0, 10.0, 400.0, 90.0)
    assert scale_rotate_rect((100, 40, 200, 20, 0), 2.0, 0.5) == (200.0, 20.0, 400.0, 10.0, 0.0)
    from qwen_ocr._base import _in_original_frame  # the local provider's rescale to the caller's frame
    from qwen_ocr.results import OCRResult, TextLine

    line = TextLine(text="a", location=(0, 30, 200, 30, 200, 50, 0, 50), rotate_rect=(100, 40, 20, 200, 90))
    mapped = _in_original_frame(OCRResult(lines=[line]), (2.0, 0.5), (400, 50))
    assert mapped.lines[0].rotate_rect == (200.0, 20.0, 10.0, 400.0, 90.0)  # was (200, 20, 40, 100, 90)
    assert mapped.lines[0].bbox == (0, 15, 400, 25)


# ----------------------------------------------------------------------------------------------------------------
# 4. The SDK's settings


def test_sdk_http_base_url_alone_reaches_that_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / ".dashscope" / "api_key"
    key_file.parent.mkdir()
    key_file.write_text("sk-from-the-sdk-file\n")
    monkeypatch.setattr("qwen_ocr.config.SDK_KEY_PATH", key_file)  # where dashscope.save_api_key puts it
    with time_budget(BUDGET), Emulator(valid_keys={"sk-from-the-sdk-file"}) as emu:
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", emu.base_url + "/api/v1")
        with QwenOCR(retry=NO_WAIT) as client:
            assert client.base_url == emu.base_url
            assert client.ocr(_png()).text
        assert [r.path for r in emu.request_log] == [native.GENERATION_PATH]
        monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL")
        monkeypatch.setenv("DASHSCOPE_COMPATIBLE_BASE_URL", emu.base_url + "/compatible-mode/v1")
        with QwenOCR(protocol="openai", retry=NO_WAIT) as client:
            assert client.ocr(_png()).text
        assert emu.request_log[-1].path == compatible.COMPAT_PATH


def test_where_the_host_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_REGION", "cn-beijing")
    assert QwenOCR(api_key="k").base_url == SHARED_HOSTS["cn-beijing"]  # the SDK's region setting
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:9/api/v1")
    assert QwenOCR(api_key="k").base_url == "http://127.0.0.1:9"  # the SDK's URL beats its region
    assert QwenOCR(api_key="k", region="us").base_url == SHARED_HOSTS["us-east-1"]  # our arguments beat both
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:8")
    assert QwenOCR(api_key="k").base_url == "http://127.0.0.1:8"  # and our DASHSCOPE_BASE_URL too
    assert QwenOCR(api_key="k", base_url="http://127.0.0.1:7").base_url == "http://127.0.0.1:7"
    monkeypatch.delenv("DASHSCOPE_BASE_URL")
    monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL")
    monkeypatch.setenv("DASHSCOPE_API_REGION", "ap-southeast-1")
    monkeypatch.setenv("DASHSCOPE_WORKSPACE_ID", "ws-env1")
    client = QwenOCR(api_key="k")
    assert client.base_url == "https://ws-env1.ap-southeast-1.maas.aliyuncs.com" and client.workspace == "ws-env1"
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "https://{workspace_id}.ap-southeast-1.maas.aliyuncs.com/api/v1")
    assert QwenOCR(api_key="k").base_url == "https://ws-env1.ap-southeast-1.maas.aliyuncs.com"
    monkeypatch.setenv("DASHSCOPE_API_REGION", "moon-1")
    monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL")
    with pytest.raises(InvalidArgumentError, match="DASHSCOPE_API_REGION"):
        QwenOCR(api_key="k")


def test_where_the_key_comes_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sdk_default = tmp_path / "api_key"
    sdk_default.write_text("sk-default-file")
    monkeypatch.setattr("qwen_ocr.config.SDK_KEY_PATH", sdk_default)
    assert resolve_api_key(None).get_secret_value() == "sk-default-file"  # type: ignore[union-attr]
    named = tmp_path / "named"
    named.write_text("\n  sk-named-file  \n")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(named))
    assert resolve_api_key(None).get_secret_value() == "sk-named-file"  # type: ignore[union-attr]
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    assert resolve_api_key(None).get_secret_value() == "sk-env"  # type: ignore[union-attr]
    assert resolve_api_key("sk-arg").get_secret_value() == "sk-arg"
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(tmp_path / "missing"))
    assert resolve_api_key(None).get_secret_value() == "sk-default-file"  # type: ignore[union-attr]


def test_a_refused_key_names_the_region_and_how_to_change_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "InvalidApiKey", "message": "Invalid API-key provided."})

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with QwenOCR(api_key=SECRET, region="cn", retry=NO_WAIT, http_client=http) as client:
        with pytest.raises(AuthenticationError) as plain:
            client.ocr("https://example.com/a.png")
        with pytest.raises(AuthenticationError) as streamed:
            list(client.stream("https://example.com/a.png"))
    for error in (plain.value, streamed.value):
        assert "Beijing (cn-beijing" in error.message
        assert "region=" in error.message and "DASHSCOPE_API_REGION" in error.message
        assert SECRET not in str(error) and SECRET not in repr(error)
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    with (
        Emulator(valid_keys={"other"}) as emu,
        QwenOCR(api_key=SECRET, base_url=emu.base_url) as own,
        pytest.raises(AuthenticationError, match="base_url") as custom,
    ):
        own.ocr(_png())
    assert SECRET not in str(custom.value)
