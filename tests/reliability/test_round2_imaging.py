"""Reliability round 2, images and documents: pages prepared on threads, odd pixel modes, huge page counts, bad paths.

- **A page's pixels are its own frame.** The pages of a multi-page TIFF are prepared on worker threads while the
  iterating thread builds the next ``Page`` objects; both used to seek one shared ``PIL`` image, which is not
  thread-safe, so a page could come back with a neighbour's pixels (or fail as "corrupt"). Every frame carries a
  page number and a per-page pixel code here, and every page prepared concurrently must decode to exactly its frame.
- **16-bit big-endian TIFFs** (``I;16B``) are read like little-endian ones (``I;16``), and odd modes round-trip.
- **Counting is bounded.** Whether an image has more than one frame is an O(1) question; a TIFF's pages are counted
  in one pass over its directory chain, stopping past :data:`~qwen_ocr.documents.MAX_IMAGE_PAGES` with a typed
  error. PDFs of very many pages cost time linear in their pages (the periodic reopen no longer re-walks the page
  tree from the start every 100 pages).
- **Bad paths are typed.** A NUL byte, an empty or overly long name, a directory, a FIFO, an unreadable file: each is
  an :class:`~qwen_ocr.errors.InvalidImageError` (a ``DocumentError`` for documents) naming the problem.

Everything runs under a hang guard (``time_budget``).
"""

from __future__ import annotations

import base64
import io
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from qwen_ocr import InvalidImageError, QwenOCR, estimate_tokens, open_document, prepare_image
from qwen_ocr.documents import DocumentError, DocumentReadError
from qwen_ocr.imaging import PreparedImage
from qwen_ocr.reading import read_document
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest

from ._support import time_budget

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

BUDGET = 60.0  # seconds: a hang guard for each test (each takes well under a few seconds)


# --------------------------------------------------------------------------------------------------------------
# Builders


def coded_frame(index: int, size: tuple[int, int] = (96, 64), mode: str = "L") -> Image.Image:
    """A page with its number drawn on it and its index written as a row of black/white pixels in the last row."""
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).text((6, 6), f"p{index + 1}", fill=0)
    for bit in range(16):
        im.putpixel((bit, size[1] - 1), 0 if (index >> bit) & 1 else 255)
    im.putpixel((size[0] - 1, size[1] - 1), index % 251)
    return im.convert(mode) if mode != "L" else im


def coded_tiff(count: int, *, size: tuple[int, int] = (96, 64), compression: str = "tiff_deflate") -> bytes:
    """A ``count``-page TIFF of :func:`coded_frame` pages."""
    frames = [coded_frame(n, size) for n in range(count)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression=compression)
    return buf.getvalue()


def sent_pixels(prepared: PreparedImage) -> Image.Image:
    """The image a prepared page sends, decoded, in ``L``."""
    raw = base64.b64decode(prepared.url.split(",", 1)[1])
    return Image.open(io.BytesIO(raw)).convert("L")


def many_frame_tiff(count: int, size: tuple[int, int] = (16, 16)) -> bytes:
    """A little-endian TIFF of ``count`` grey frames built by hand (fast at any count): every directory points at
    the same strip of pixels."""
    width, height = size
    pixels = bytes((n * 7) % 256 for n in range(width * height))
    first = 8 + len(pixels) + (len(pixels) % 2)
    entries = [
        (256, 3, width),  # ImageWidth
        (257, 3, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: BlackIsZero
        (273, 4, 8),  # StripOffsets
        (277, 3, 1),  # SamplesPerPixel
        (278, 3, height),  # RowsPerStrip
        (279, 4, width * height),  # StripByteCounts
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    body = bytearray()
    for n in range(count):
        body += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            body += struct.pack("<HHI", tag, kind, 1) + packed
        body += struct.pack("<I", first + (n + 1) * ifd_size if n < count - 1 else 0)
    head = b"II*\x00" + struct.pack("<I", first) + pixels
    return head + b"\x00" * (first - len(head)) + bytes(body)


def blank_pdf(count: int) -> bytes:
    """A PDF of ``count`` empty Letter pages made by PDFium (one flat page tree, as many producers write it)."""
    pdf = pdfium.PdfDocument.new()
    for _ in range(count):
        pdf.new_page(612, 792).close()
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    with time_budget(BUDGET):
        yield


# --------------------------------------------------------------------------------------------------------------
# 1. Pages of one multi-page image prepared on several threads


def test_tiff_pages_prepared_on_threads_are_each_their_own_frame() -> None:
    # The shape of read_document: the iterating thread makes Page objects (measuring each page) while a pool
    # prepares the pages made before. 60 pages, 3 runs: the old code mixed up several pages in every run.
    count = 60
    data = coded_tiff(count)
    expected = [coded_frame(n).tobytes() for n in range(count)]
    for _ in range(3):
        with open_document(data) as doc, ThreadPoolExecutor(max_workers=4) as pool:
            futures = [(page.index, pool.submit(page.prepare)) for page in doc]
            wrong = [index for index, future in futures if sent_pixels(future.result()).tobytes() != expected[index]]
        assert wrong == []


def test_read_document_sends_each_tiff_page_once_from_bytes_and_from_a_path(tmp_path: Path) -> None:
    count = 40
    data = coded_tiff(count)
    path = tmp_path / "fax.tif"
    path.write_bytes(data)
    with open_document(data) as doc:
        wanted = {image_digest(page.prepare().url) for page in doc}
    assert len(wanted) == count  # every page sends different bytes
    for source in (data, path):
        with Emulator() as emu, QwenOCR(api_key="k", base_url=emu.base_url) as client:
            results = list(read_document(client, source, max_concurrency=8))
            assert [r.error for r in results] == [None] * count
            assert emu.stats.successes_by_image == dict.fromkeys(wanted, 1)


async def test_aread_document_sends_each_tiff_page_once() -> None:
    from qwen_ocr import AsyncQwenOCR, aread_document

    count = 40
    data = coded_tiff(count)
    with open_document(data) as doc:
        wanted = {image_digest(page.prepare().url) for page in doc}
    with Emulator() as emu:
        async with AsyncQwenOCR(api_key="k", base_url=emu.base_url) as client:
            results = [page async for page in aread_document(client, data, max_concurrency=8)]
        assert [r.error for r in results] == [None] * count
        assert emu.stats.successes_by_image == dict.fromkeys(wanted, 1)


def test_the_llamaindex_reader_sends_each_tiff_page_once(tmp_path: Path) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    count = 30
    path = tmp_path / "fax.tif"
    path.write_bytes(coded_tiff(count))
    with open_document(path) as doc:
        wanted = {image_digest(page.prepare().url) for page in doc}
    with Emulator() as emu:
        documents = QwenOCRReader(api_key="k", base_url=emu.base_url, max_concurrency=8).load_data(path)
        assert len(documents) == count
        assert emu.stats.successes_by_image == dict.fromkeys(wanted, 1)


def test_the_langchain_loader_sends_each_tiff_page_once() -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    count = 30
    data = coded_tiff(count)
    with open_document(data) as doc:
        wanted = {image_digest(page.prepare().url) for page in doc}
    with Emulator() as emu:
        loader = QwenOCRLoader(("fax.tif", data), api_key="k", base_url=emu.base_url, max_concurrency=8)
        documents = loader.load()
        assert len(documents) == count
        assert emu.stats.successes_by_image == dict.fromkeys(wanted, 1)


_OPS = ("prepare", "render", "size", "rotation")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    count=st.integers(2, 12),
    threads=st.integers(2, 6),
    ops=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(_OPS)), min_size=4, max_size=40),
    from_path=st.booleans(),
    compression=st.sampled_from(["raw", "tiff_deflate", "tiff_lzw", "packbits"]),
)
def test_concurrent_readers_of_one_multi_frame_image(
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    threads: int,
    ops: list[tuple[int, str]],
    from_path: bool,
    compression: str,
) -> None:
    # Many threads at once on one document's pages, in any order and mix of calls: each page's pixels (and size)
    # are always its own frame's.
    data = coded_tiff(count, compression=compression)
    source: bytes | Path = data
    if from_path:
        source = tmp_path_factory.mktemp("tiff") / "doc.tif"
        source.write_bytes(data)
    expected = [coded_frame(n).tobytes() for n in range(count)]
    start = threading.Barrier(threads)

    def work(share: list[tuple[int, str]]) -> list[str]:
        problems: list[str] = []
        start.wait(timeout=20)
        for raw_index, op in share:
            index = raw_index % count
            page = doc.page(index)
            if op == "prepare":
                got = sent_pixels(page.prepare()).tobytes()
            elif op == "render":
                got = page.render().convert("L").tobytes()
            elif op == "size":
                if page.size != (96.0, 64.0):
                    problems.append(f"page {index + 1}: size {page.size}")
                continue
            else:
                if page.rotation != 0:
                    problems.append(f"page {index + 1}: rotation {page.rotation}")
                continue
            if got != expected[index]:
                problems.append(f"page {index + 1}: {op} gave another frame's pixels")
        return problems

    with time_budget(BUDGET), open_document(source) as doc, ThreadPoolExecutor(max_workers=threads) as pool:
        shares = [ops[n::threads] for n in range(threads)]
        problems = [p for future in [pool.submit(work, share) for share in shares] for p in future.result()]
    assert problems == []


# --------------------------------------------------------------------------------------------------------------
# 6. 16-bit big-endian images, and other odd modes


def _sixteen_bit(values: list[int], size: tuple[int, int], mode: str) -> Image.Image:
    order = ">" if mode == "I;16B" else "<"
    return Image.frombytes(mode, size, struct.pack(f"{order}{len(values)}H", *values))


def _tiff(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="TIFF")
    return buf.getvalue()


def test_a_16_bit_big_endian_tiff_is_read_like_a_little_endian_one() -> None:
    size = (40, 24)
    values = [(n * 997) % 65536 for n in range(size[0] * size[1])]
    little = _tiff(_sixteen_bit(values, size, "I;16"))
    big = _tiff(_sixteen_bit(values, size, "I;16B"))
    assert Image.open(io.BytesIO(big)).mode == "I;16B"  # a valid file Pillow reads as such
    want = sent_pixels(prepare_image(little)).tobytes()
    assert want == bytes(min(255, v // 256) for v in values)
    assert sent_pixels(prepare_image(big)).tobytes() == want
    for mode in ("I;16B", "I;16L", "I;16"):
        assert sent_pixels(prepare_image(_sixteen_bit(values, size, mode))).tobytes() == want, mode
    with open_document(big) as doc:
        page = doc.page(0)
        assert sent_pixels(page.prepare()).tobytes() == want
        assert page.render().convert("L").tobytes() == want
    two_pages = io.BytesIO()
    _sixteen_bit(values, size, "I;16B").save(
        two_pages, format="TIFF", save_all=True, append_images=[_sixteen_bit(values[::-1], size, "I;16B")]
    )
    with open_document(two_pages.getvalue()) as doc:
        assert [sent_pixels(page.prepare()).tobytes() for page in doc] == [want, want[::-1]]


_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;16", "I;16B", "I;16L", "I;16N",
          "LA", "PA", "La", "RGBa", "RGBX"]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mode=st.sampled_from(_MODES), width=st.integers(11, 40), height=st.integers(11, 40), data=st.data())
def test_odd_modes_round_trip(mode: str, width: int, height: int, data: st.DataObject) -> None:
    if mode == "F":
        floats = data.draw(st.lists(st.floats(-10, 300, width=32), min_size=width * height, max_size=width * height))
        raw = struct.pack(f"={len(floats)}f", *floats)
    elif mode == "I":
        ints = data.draw(st.lists(st.integers(0, 70_000), min_size=width * height, max_size=width * height))
        raw = struct.pack(f"={len(ints)}i", *ints)
    else:
        length = len(Image.new(mode, (width, height)).tobytes())
        raw = data.draw(st.binary(min_size=length, max_size=length))
    im = Image.frombytes(mode, (width, height), raw)
    if mode in ("P", "PA"):
        im.putpalette(bytes(range(256)) * 3)
    with time_budget(BUDGET):
        prepared = prepare_image(im)
        assert prepared.sent_size == (width, height)
        sent = sent_pixels(prepared)
        assert sent.size == (width, height)
        if mode.startswith("I;16"):
            order = ">" if mode == "I;16B" else "<" if mode in ("I;16", "I;16L") else "="
            values = struct.unpack(f"{order}{width * height}H", raw)
            assert sent.tobytes() == bytes(v // 256 for v in values)
        try:
            encoded = _tiff(im)
        except (OSError, ValueError, KeyError):
            return  # not a mode TIFF can hold
        from_file = prepare_image(encoded)
        assert from_file.sent_size == (width, height)
        with open_document(encoded) as doc:
            page = doc.page(0)
            assert page.prepare().sent_size == (width, height)
            assert page.render().size == (width, height)
        if mode.startswith("I;16") or mode in ("L", "1"):
            assert sent_pixels(from_file).tobytes() == sent.tobytes()


# --------------------------------------------------------------------------------------------------------------
# 8. Counting the frames of a TIFF


def test_a_tiff_of_many_frames_is_refused_as_multi_page_without_counting_them() -> None:
    data = many_frame_tiff(40_000)
    start = time.perf_counter()
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(data)
    elapsed = time.perf_counter() - start
    assert caught.value.code == "MultiPageImage"
    assert "more than 1,000 pages" in caught.value.message and "qwen_ocr.documents" in caught.value.message
    assert elapsed < 1.5, f"{elapsed:.2f} s to tell that a TIFF has more than one page (was 7 s)"


def test_a_tiff_of_more_pages_than_the_cap_is_refused_typed_and_at_once() -> None:
    from qwen_ocr import documents

    cap = getattr(documents, "MAX_IMAGE_PAGES", None)
    assert cap is not None and cap < 40_000
    data = many_frame_tiff(40_000)
    start = time.perf_counter()
    with pytest.raises(DocumentError) as caught:
        open_document(data).close()
    elapsed = time.perf_counter() - start
    assert caught.value.code == "TooManyPages"
    assert type(caught.value).__name__ == "TooManyPagesError"
    assert f"{cap:,}" in caught.value.message
    assert elapsed < 1.5, f"{elapsed:.2f} s to refuse a 40,000-page TIFF (was 7 s, and then it was accepted)"


def test_the_tiff_page_cap_counts_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    import qwen_ocr.documents._image as image_module

    monkeypatch.setattr(image_module, "MAX_IMAGE_PAGES", 50, raising=False)
    with open_document(many_frame_tiff(50)) as doc:
        assert doc.page_count == 50
        assert doc.page(49).render().size == (16, 16)
    with pytest.raises(DocumentError) as caught:
        open_document(many_frame_tiff(51)).close()
    assert caught.value.code == "TooManyPages"


def test_a_tiff_directory_chain_with_a_loop_or_a_dangling_link_is_counted_to_its_end() -> None:
    data = bytearray(many_frame_tiff(5))
    first = struct.unpack("<I", data[4:8])[0]
    ifd_size = 2 + 12 * 9 + 4
    last_next = first + 5 * ifd_size - 4
    looped = bytearray(data)
    looped[last_next : last_next + 4] = struct.pack("<I", first + ifd_size)  # page 5 links back to page 2
    with open_document(bytes(looped)) as doc:
        assert doc.page_count == 5
        assert [page.render().size for page in doc] == [(16, 16)] * 5
    dangling = bytearray(data)
    dangling[last_next : last_next + 4] = struct.pack("<I", len(data) + 1000)  # past the end of the file
    with open_document(bytes(dangling)) as doc:
        assert doc.page_count == 5


# --------------------------------------------------------------------------------------------------------------
# 13. PDFs of very many pages


def test_a_pdf_of_many_pages_costs_time_linear_in_its_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reopening the document to drop PDFium's caches costs a walk of the page tree up to the page being loaded.
    # It used to happen every 100 page loads: 10,000 pages made 100 reopens at ever later pages, a cost that grows
    # with the square of the page count. Now a reopen waits until the page work done since the last one outweighs
    # it: the page indices reopened at add up to about the page count, not to its square / 200.
    from qwen_ocr.documents._pdf import PdfFile

    count = 10_000
    data = blank_pdf(count)
    at = [0]  # the page being read
    reopened_at: list[int] = []
    original = PdfFile._open

    def spy(self: PdfFile) -> int:
        reopened_at.append(at[0])
        return original(self)

    monkeypatch.setattr(PdfFile, "_open", spy)
    start = time.perf_counter()
    with open_document(data) as doc:
        for page in doc:
            at[0] = page.index
            page.needs_ocr("auto")
    elapsed = time.perf_counter() - start
    walked = sum(reopened_at)
    assert walked <= 2 * count, f"reopened {len(reopened_at)} times, at pages adding up to {walked:,}"
    assert elapsed < 15, f"{elapsed:.1f} s for {count:,} blank pages"


# --------------------------------------------------------------------------------------------------------------
# 7. Bad paths: typed errors naming the problem


def _unreadable_path(tmp_path: Path) -> Path:
    path = tmp_path / "locked.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return path


_READERS: dict[str, Callable[[Any], Any]] = {
    "prepare_image": prepare_image,
    "estimate_tokens": estimate_tokens,
    "open_document": lambda source: open_document(source).close(),
}


def _bad_paths(tmp_path: Path) -> dict[str, tuple[Any, str]]:
    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    loop = tmp_path / "loop.png"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    cases: dict[str, tuple[Any, str]] = {
        "NUL in a str": ("scan\x00.png", "NUL"),
        "NUL in a Path": (Path("scan\x00.png"), "NUL"),
        "empty": ("", "empty"),
        "a name over the system's limit": ("x" * 300 + ".png", "too long"),
        "a path over the system's limit": ("/".join(["y" * 200] * 30) + ".png", "too long"),
        "a directory": (str(folder), "directory"),
        "a directory, as a Path": (folder, "directory"),
        "a symlink loop": (str(loop), "symbolic links"),
        "a file used as a folder": (str(Path(__file__) / "x.png"), "Not a directory"),
    }
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.png"
        if not fifo.exists():
            os.mkfifo(fifo)
        cases["a FIFO (reading it would block)"] = (str(fifo), "FIFO")
    if sys.platform.startswith("linux"):
        cases["a character device"] = ("/dev/zero", "character device")
    return cases


@pytest.mark.parametrize("reader", list(_READERS))
def test_bad_paths_are_typed_errors_naming_the_problem(tmp_path: Path, reader: str) -> None:
    for label, (source, says) in _bad_paths(tmp_path).items():
        error: Exception | None = None
        with time_budget(10):
            try:
                _READERS[reader](source)
            except Exception as exc:  # the point: nothing but the typed error may come out
                error = exc
        assert isinstance(error, InvalidImageError), f"{reader}({label}) raised {error!r}"
        assert says.lower() in error.message.lower(), (label, error.message)
        if reader == "open_document":
            assert isinstance(error, DocumentReadError), (label, type(error))


def test_an_unreadable_file_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _unreadable_path(tmp_path)
    real_open = os.open

    def refuse(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, flags, *args, **kwargs)

    real_path_open = Path.open

    def refuse_path(self: Path, *args: Any, **kwargs: Any) -> Any:  # the old code opened files through Path
        if str(self) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(Path, "open", refuse_path)
    for reader in _READERS.values():
        with pytest.raises(InvalidImageError) as caught:
            reader(str(path))
        assert caught.value.code == "PermissionDenied" and "permission" in caught.value.message.lower()


def test_the_loader_resolves_bad_paths_into_typed_errors(tmp_path: Path) -> None:
    from langchain_qwen_ocr.document_loaders.sources import expand_sources

    for label, (source, says) in _bad_paths(tmp_path).items():
        with time_budget(10):
            try:
                items = list(expand_sources(source))
            except Exception as exc:
                pytest.fail(f"expand_sources({label}) raised {type(exc).__name__}: {exc}")
            for item in items:
                if item.error is not None:
                    error = item.error
                else:
                    with pytest.raises(DocumentError) as caught:
                        open_document(item.document_source()).close()
                    error = caught.value
                assert isinstance(error, DocumentReadError), (label, error)
                assert says.lower() in error.message.lower(), (label, error.message)
