"""The offline ``local`` provider (``qwen_ocr.local``): accuracy, orientation, boxes, tasks, and no network.

The engine tests need the ``local`` extra (rapidocr + onnxruntime) and are skipped without it; the geometry and
metric tests are pure and always run. Reading ``linn.png`` (a dense two-column Letter page) takes about 3-4 s on
two cores, so its readings are shared by the tests that need them.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from qwen_ocr import OCRResult, QwenOCRError, Task, UnsupportedTaskError
from qwen_ocr.errors import InvalidImageError
from qwen_ocr.local import (
    UNSUPPORTED_TASKS,
    LocalEngine,
    LocalEngineUnavailableError,
    cer,
    get_engine,
    is_available,
)
from qwen_ocr.local.geometry import (
    location_from_points,
    reading_order,
    rotate_points_180,
    rotate_rect_from_points,
)
from qwen_ocr.local.metrics import levenshtein, normalize_text
from qwen_ocr.samples import SAMPLE_SCAN, known_text, read_sample

DATA = Path(__file__).parent / "data" / "local"
LINN = DATA / "linn.png"
LINN_SIZE = (2550, 3300)

LINN_MAX_CER = 0.025
"""Measured 0.0174 (rapidocr 3.10.0, onnxruntime 1.31, detector limit 960; see benchmarks/LOCAL.md). Most of it is
the reference's own slips (bullets transcribed as ``0``, ``EDI]`` for the logo); the margin absorbs onnxruntime
builds that round differently."""

needs_engine = pytest.mark.skipif(not is_available(), reason="needs the 'local' extra (rapidocr, onnxruntime)")


# --------------------------------------------------------------------------------------------------------------
# Shared readings


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine().load()


@pytest.fixture(scope="module")
def linn_reference() -> str:
    return (DATA / "linn.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def linn_reading(engine: LocalEngine) -> OCRResult:
    return engine.ocr(LINN, task="advanced_recognition")


@pytest.fixture(scope="module")
def scan_reading(engine: LocalEngine) -> OCRResult:
    return engine.ocr(read_sample(SAMPLE_SCAN))


def _small_scan() -> Image.Image:
    """The top of the sample scan: five lines, read in a fraction of a second."""
    with Image.open(io.BytesIO(read_sample(SAMPLE_SCAN))) as im:
        return im.crop((0, 0, 1275, 340)).convert("L")


# --------------------------------------------------------------------------------------------------------------
# Accuracy and the result's shape


@needs_engine
def test_linn_character_error_rate(linn_reading: OCRResult, linn_reference: str) -> None:
    assert cer(linn_reading.text, linn_reference) < LINN_MAX_CER


@needs_engine
def test_linn_is_read_column_by_column(linn_reading: OCRResult) -> None:
    text = linn_reading.text
    # The left column's paragraph comes whole before the right column's, not interleaved line by line.
    assert text.index("To record a sequence") < text.index("click track.") < text.index("simply use LOCATE")
    assert text.index("simply use LOCATE") < text.index("Additional Features")


@needs_engine
def test_result_looks_like_the_service(linn_reading: OCRResult) -> None:
    result = linn_reading
    assert result.provider == "local"
    assert result.model.startswith("rapidocr-")
    assert result.task is Task.ADVANCED_RECOGNITION
    assert result.finish_reason == "stop"
    assert not result.truncated
    assert result.usage.total_tokens == result.usage.input_tokens == result.usage.output_tokens == 0
    assert result.image_size == LINN_SIZE
    assert result.metadata["orientation"] == 0
    assert len(result.lines) > 60
    assert result.text == "\n".join(line.text for line in result.lines)
    assert result.raw_text == result.text
    for line in result.lines:
        assert len(line.location) == 8 and all(isinstance(v, int) for v in line.location)
        assert line.score is not None and 0.5 <= line.score <= 1.0
        left, top, right, bottom = line.bbox
        assert 0 <= left < right <= LINN_SIZE[0] + 5 and 0 <= top < bottom <= LINN_SIZE[1] + 5


@needs_engine
def test_upright_lines_have_the_services_rotate_rect(linn_reading: OCRResult) -> None:
    """Upright lines come out as the service gives them: angle 90, width = line height, height = line length."""
    heading = next(line for line in linn_reading.lines if line.text.startswith("The LinnSequencer is a state"))
    cx, cy, width, height, angle = heading.rotate_rect
    left, top, right, bottom = heading.bbox
    assert angle == 90
    assert width == pytest.approx(bottom - top, abs=3)
    assert height == pytest.approx(right - left, abs=3)
    assert (cx, cy) == pytest.approx(((left + right) / 2, (top + bottom) / 2), abs=2)
    upright = sum(1 for line in linn_reading.lines if line.rotate_rect[4] == 90)
    assert upright >= 0.9 * len(linn_reading.lines)


@needs_engine
def test_sample_scan_reads_almost_exactly(scan_reading: OCRResult) -> None:
    assert cer(scan_reading.text, known_text(SAMPLE_SCAN)) < 0.02
    assert scan_reading.task is None
    assert scan_reading.lines  # filled for every task


# --------------------------------------------------------------------------------------------------------------
# Orientation


@needs_engine
def test_upside_down_page_reads_the_same(engine: LocalEngine, linn_reading: OCRResult, linn_reference: str) -> None:
    with Image.open(LINN) as im:
        turned = im.rotate(180)
    result = engine.ocr(turned, task="advanced_recognition")
    assert result.metadata["orientation"] == 180
    assert cer(result.text, linn_reference) < LINN_MAX_CER
    assert cer(result.text, linn_reading.text) < 0.005
    # Boxes are in the pixels of the turned image: each line sits where the upright line lands after turning.
    width, height = LINN_SIZE
    upright = {line.text: line.bbox for line in linn_reading.lines}
    matched = 0
    for line in result.lines:
        if line.text in upright:
            left, top, right, bottom = upright[line.text]
            assert line.bbox == pytest.approx((width - right, height - bottom, width - left, height - top), abs=8)
            matched += 1
    assert matched > 0.8 * len(result.lines)
    # Corners still start at the line's own top-left, which is now at its lower right on the page.
    first = result.lines[0]
    assert first.location[0] > first.location[2] and first.location[1] > first.location[5]


@needs_engine
def test_upright_page_is_not_turned(scan_reading: OCRResult) -> None:
    assert scan_reading.metadata["orientation"] == 0


# --------------------------------------------------------------------------------------------------------------
# Boxes in the pixels of the image as passed in


def _by_text(result: OCRResult) -> dict[str, tuple[int, int, int, int]]:
    return {line.text: line.bbox for line in result.lines}


@needs_engine
def test_boxes_scale_with_the_image(engine: LocalEngine, scan_reading: OCRResult) -> None:
    with Image.open(io.BytesIO(read_sample(SAMPLE_SCAN))) as im:
        smaller = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.LANCZOS)
    result = engine.ocr(smaller)
    assert result.image_size == smaller.size
    full, small = _by_text(scan_reading), _by_text(result)
    common = [text for text in small if text in full and len(text) > 10]
    assert len(common) >= 8
    for text in common:
        expected = tuple(v * 0.75 for v in full[text])
        assert small[text] == pytest.approx(expected, abs=6)


@needs_engine
def test_max_pixels_reads_smaller_but_answers_in_original_pixels(engine: LocalEngine, scan_reading: OCRResult) -> None:
    result = engine.ocr(read_sample(SAMPLE_SCAN), max_pixels=600_000)
    assert result.image_size == (1275, 1200)
    full, capped = _by_text(scan_reading), _by_text(result)
    common = [text for text in capped if text in full and len(text) > 10]
    assert len(common) >= 8
    for text in common:
        assert capped[text] == pytest.approx(full[text], abs=8)


@needs_engine
def test_exif_orientation_is_applied(engine: LocalEngine) -> None:
    """A photo stored sideways with an EXIF turn is read upright, boxes in its upright pixels."""
    upright = _small_scan()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera would store for EXIF orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    result = engine.ocr(buf.getvalue())
    assert result.image_size == upright.size
    assert "NORTHWIND TRADING COMPANY" in result.text


# --------------------------------------------------------------------------------------------------------------
# Tasks


@pytest.mark.parametrize("task", sorted(UNSUPPORTED_TASKS, key=lambda t: t.value))
def test_unsupported_tasks_name_the_provider_that_can(task: Task) -> None:
    engine = LocalEngine()  # no models needed: the task is refused first
    with pytest.raises(UnsupportedTaskError) as info:
        engine.ocr(b"not even an image", task=task.value)
    message = str(info.value)
    assert task.value in message
    assert "provider='dashscope'" in message and "DASHSCOPE_API_KEY" in message
    assert engine._backend is None


def test_unknown_task_is_refused() -> None:
    with pytest.raises(QwenOCRError, match="Unknown task"):
        LocalEngine().ocr(b"", task="summarise")


@needs_engine
@pytest.mark.parametrize("task", [None, "text_recognition", "multi_lan", Task.ADVANCED_RECOGNITION])
def test_supported_tasks_give_text_and_lines(engine: LocalEngine, task: Task | str | None) -> None:
    result = engine.ocr(_small_scan(), task=task)
    assert result.task == (Task(task) if task else None)
    assert result.text.splitlines()[0] == "NORTHWIND TRADING COMPANY"
    assert len(result.lines) == len(result.text.splitlines())


@needs_engine
def test_blank_image_reads_as_nothing(engine: LocalEngine) -> None:
    result = engine.ocr(Image.new("RGB", (400, 300), "white"))
    assert result.text == "" and result.lines == [] and result.finish_reason == "stop"


# --------------------------------------------------------------------------------------------------------------
# Inputs


def test_urls_are_refused_without_network() -> None:
    for url in ("https://example.com/scan.png", "oss://bucket/scan.png", "file:///tmp/scan.png"):
        with pytest.raises(InvalidImageError, match="offline"):
            LocalEngine().ocr(url)


def test_bad_images_get_the_service_paths_errors(tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    with pytest.raises(InvalidImageError, match="PDF"):
        LocalEngine().ocr(pdf)
    with pytest.raises(InvalidImageError, match="no such file"):
        LocalEngine().ocr(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="at least 10 px"):
        LocalEngine().ocr(Image.new("L", (5, 40)))


@needs_engine
def test_inputs_of_every_kind(engine: LocalEngine, tmp_path: Path) -> None:
    import base64

    image = _small_scan()
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()
    texts = {engine.ocr(source).text for source in (image, data, bytearray(data), path, str(path), data_url)}
    assert len(texts) == 1


# --------------------------------------------------------------------------------------------------------------
# Offline, lazy, thread-safe


class _NetworkAttempt(RuntimeError):
    pass


@needs_engine
def test_no_network_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh engine loads its models and reads a page with every socket operation refused (even loopback)."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] if args else kwargs)
        raise _NetworkAttempt(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    result = LocalEngine().ocr(_small_scan(), task="advanced_recognition")
    assert "NORTHWIND" in result.text
    assert attempts == []


def test_importing_qwen_ocr_does_not_import_rapidocr() -> None:
    code = (
        "import sys, qwen_ocr, qwen_ocr.local, qwen_ocr.demo; "
        "qwen_ocr.local.get_engine(); qwen_ocr.local.is_available(); "
        "bad = [m for m in ('rapidocr', 'onnxruntime', 'cv2') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_extra_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "qwen_ocr.local._rapid", raising=False)
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # makes `import rapidocr` raise ImportError
    with pytest.raises(LocalEngineUnavailableError) as info:
        LocalEngine().load()
    assert isinstance(info.value, QwenOCRError)
    assert "pip install 'qwen-ocr[local]'" in str(info.value)
    assert info.value.code == "MissingDependency"


def test_get_engine_is_one_engine() -> None:
    assert get_engine() is get_engine()
    assert isinstance(is_available(), bool)


@needs_engine
def test_one_engine_serves_threads(engine: LocalEngine) -> None:
    image = _small_scan()
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(engine.ocr(image).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 3 and len(set(results)) == 1


# --------------------------------------------------------------------------------------------------------------
# Geometry (pure)

# The service's own advanced_recognition reply (recorded): location and rotate_rect of each line.
SERVICE_LINES = [
    ([1704, 390, 4314, 390, 4314, 675, 1704, 675], [3009, 532, 285, 2610, 90]),
    ([1368, 804, 4626, 804, 4626, 1089, 1368, 1089], [2997, 946, 285, 3258, 90]),
    ([2682, 1242, 3336, 1242, 3336, 1527, 2682, 1527], [3009, 1384, 285, 654, 90]),
    ([5058, 819, 5670, 633, 5928, 846, 5316, 1032], [5493, 832, 279, 825, 73]),
    ([24, 936, 198, 780, 930, 981, 756, 1137], [477, 959, 886, 197, 15]),
    ([720, 2016, 894, 1860, 1626, 2061, 1452, 2217], [1173, 2038, 886, 197, 15]),
    ([-30, 2244, 114, 2112, 846, 2313, 696, 2445], [408, 2279, 863, 167, 15]),
    ([1632, 2322, 2058, 2322, 2058, 2487, 1632, 2487], [1845, 2404, 165, 426, 90]),
    ([2514, 2196, 3312, 2196, 3312, 2445, 2514, 2445], [2913, 2320, 249, 798, 90]),
    ([3882, 2400, 4176, 2400, 4176, 2541, 3882, 2541], [4029, 2470, 141, 294, 90]),
    ([4218, 2103, 4884, 1851, 5064, 1974, 4398, 2226], [4641, 2039, 179, 837, 69]),
    ([5136, 2190, 5730, 2028, 5874, 2163, 5280, 2325], [5505, 2176, 168, 719, 75]),
]


@pytest.mark.parametrize(("location", "rotate_rect"), SERVICE_LINES)
def test_rotate_rect_follows_the_services_convention(location: list[int], rotate_rect: list[int]) -> None:
    points = list(zip(location[0::2], location[1::2], strict=True))
    assert rotate_rect_from_points(points) == pytest.approx([float(v) for v in rotate_rect], abs=1)


def test_rotate_rect_of_tilted_and_turned_lines() -> None:
    upright = [(100, 100), (500, 100), (500, 140), (100, 140)]
    assert rotate_rect_from_points(upright) == (300, 120, 40, 400, 90)
    # The same line read upside down (corners start at its own top-left, lower right on the page): same rectangle.
    assert rotate_rect_from_points(rotate_points_180(upright, 600, 240)) == (300, 120, 40, 400, 90)
    # A wobble of a pixel or two on a short box is level.
    assert rotate_rect_from_points([(0, 0), (150, 2), (150, 39), (0, 37)])[4] == 90
    assert location_from_points(upright) == (100, 100, 500, 100, 500, 140, 100, 140)


def _row(x: float, y: float, width: float, height: float = 20) -> list[tuple[float, float]]:
    return [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]


def test_reading_order_columns_and_rows() -> None:
    title = _row(0, 0, 620)
    left = [_row(0, 40 + 30 * i, 300) for i in range(4)]
    right = [_row(320, 40 + 30 * i, 300) for i in range(4)]
    footer = _row(0, 200, 620)
    quads = [footer, *right, title, *left]
    order = reading_order(quads)
    # title, the left column top to bottom, the right column, the footer
    assert order == [5, 6, 7, 8, 9, 1, 2, 3, 4, 0]


def test_reading_order_keeps_receipt_rows_together() -> None:
    items = [_row(0, 30 * i, 200) for i in range(3)]
    prices = [_row(400, 30 * i + 2, 50) for i in range(3)]
    assert reading_order(items + prices) == [0, 3, 1, 4, 2, 5]


def test_reading_order_of_nothing() -> None:
    assert reading_order([]) == []


# --------------------------------------------------------------------------------------------------------------
# Character error rate (pure)


def test_cer_and_levenshtein() -> None:
    assert levenshtein("", "abc") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert cer("same text", "same\n  text") == 0.0
    assert cer("", "") == 0.0
    assert cer("x", "") == 1.0
    assert cer("abcd", "abce") == 0.25
    assert normalize_text("“ﬁne” — ok") == '"fine" - ok'


def test_a_schema_asks_for_fields_which_need_the_service() -> None:
    with pytest.raises(UnsupportedTaskError, match="key_information_extraction"):
        LocalEngine().ocr(b"", schema={"Total": ""})


@needs_engine
def test_service_only_options_are_ignored(engine: LocalEngine) -> None:
    result = engine.ocr(_small_scan(), max_tokens=10, temperature=0.5, enable_rotate=True, prompt="read it")
    assert result.text.startswith("NORTHWIND")
