"""PDF pages through PDFium (pypdfium2): open, measure, render, read text (I/O; every call under one lock).

PDFium is not thread-safe, not even across different documents, so every call into it here holds
:data:`PDFIUM_LOCK`. Pixel work that does not touch PDFium (colour check, encoding) runs outside the lock, so two
threads can render and encode pages in parallel.

Every PDFium object (page, text page, bitmap) is closed as soon as the call that opened it is done: nothing here
keeps a page's pixels or parsed content between calls, so memory stays flat over a document of any length.

PDFium also caches every font, image and colour space it parses until the document is closed, so the document is
closed and reopened now and then (:data:`RECYCLE_EVERY`). A reopen is not free: PDFium parses the file's
cross-reference table again and walks its page tree from the first page to the one being loaded, a cost that grows
with the page count and the page's index. So a reopen also waits until the page work done since the last one
outweighs what that one cost (:data:`RECYCLE_COST_SHARE`): reopening never takes more than about a tenth of the
time, and a document of 100,000 pages costs time linear in its pages. Pages heavy enough to fill the caches (fonts,
scans) are the ones whose work pays for a reopen every :data:`RECYCLE_EVERY` loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pypdfium2 as pdfium  # type: ignore[import-untyped,unused-ignore]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped,unused-ignore]
from PIL import Image

from .._png import unfiltered_rows
from ._analysis import PDFIUM_LOCK, PageAnalysis
from .errors import (
    CorruptDocumentError,
    DocumentReadError,
    EncryptedDocumentError,
    NoPagesError,
    PageRenderError,
    PasswordRequiredError,
    WrongPasswordError,
)
from .render import has_colour, thumbnail_has_colour
from .textlayer import clean_text_layer

__all__ = ["PDFIUM_LOCK", "RECYCLE_COST_SHARE", "RECYCLE_EVERY", "PageAnalysis", "PdfFile", "Rendered"]

_FORM_DEPTH = 4
RECYCLE_EVERY = 100
"""Page loads after which a document is closed and reopened, to drop PDFium's per-document caches (at the
earliest: see :data:`RECYCLE_COST_SHARE`)."""
RECYCLE_COST_SHARE = 0.1
"""The largest share of the page work that reopening may cost: a reopen waits until the time spent on pages since
the last one is at least ``1 / RECYCLE_COST_SHARE`` times what the last one took (reopening the file and finding
its page in the page tree again)."""
_REUSE_LIMIT = 40_000_000 * 3  # bytes: keep a bitmap buffer for renders up to 40 MP (budget renders are under 31)
_DPI_COVERAGE = 0.25  # an image covering less of the page does not decide its rendering resolution
_THUMBNAIL_MIN = 256  # the shorter side from which colour is judged on a quarter-size thumbnail (as has_colour does)


@dataclass(frozen=True)
class Rendered:
    """A rendered page: its pixels, and for a greyscale render the same pixels laid out as a PNG's unfiltered rows
    (:func:`qwen_ocr._png.unfiltered_rows`; the image is a read-only view of them), ready to deflate without a copy
    (:func:`qwen_ocr._png.encode_unfiltered_rows`)."""

    image: Image.Image
    rows: bytearray | None = None


class PdfFile:
    """An open PDF. Not for direct use: :func:`qwen_ocr.documents.open_document` wraps it."""

    def __init__(self, source: Path | bytes, *, password: str | None, name: str) -> None:
        self.name = name
        self._source: Path | bytes | None = source  # bytes: PDFium reads from them lazily, keep them alive
        self._password = password
        self._loads = 0  # page loads since the document was (re)opened
        self._work = 0.0  # seconds spent on those pages
        self._buffer: Any = None  # one reusable bitmap buffer: no 25 MB allocation per page
        with PDFIUM_LOCK:
            self._pdf: Any = None
            start = time.perf_counter()
            self.page_count = self._open()
            self._reopen_cost = time.perf_counter() - start  # seconds the last (re)open took

    def _open(self) -> int:
        """(Re)open the document; the number of pages. Caller holds the lock."""
        source = self._source
        assert source is not None
        pw = self._password.encode("utf-8") if self._password else None
        if isinstance(source, Path):
            raw = pdfium_c.FPDF_LoadDocument(os.fsencode(source), pw)
        else:
            raw = pdfium_c.FPDF_LoadMemDocument64(source, len(source), pw)
        if not raw:
            raise _load_error(int(pdfium_c.FPDF_GetLastError()), self.name, self._password)
        count = int(pdfium_c.FPDF_GetPageCount(raw))
        if count < 1:
            pdfium_c.FPDF_CloseDocument(raw)
            raise NoPagesError(f"{self.name} is a PDF with no pages; there is nothing to read.")
        self._pdf = pdfium.PdfDocument(raw)
        # Forms are a nicety: a document whose form environment fails still renders.
        with contextlib.suppress(Exception):
            self._pdf.init_forms()
        return count

    def _recycle_due(self) -> bool:
        """Whether to close and reopen the document before the next page load. PDFium keeps every font, image and
        colour space it has parsed until the document is closed; a PDF merged from many files carries its own fonts
        on every few pages, and that cache would otherwise grow with the page count. So: after
        :data:`RECYCLE_EVERY` loads, once the page work since the last reopen outweighs its cost (see the module
        doc). Caller holds the lock."""
        self._loads += 1
        return self._loads >= RECYCLE_EVERY and self._work * RECYCLE_COST_SHARE >= self._reopen_cost

    def _recycle(self) -> None:
        """Close and reopen the document. Caller holds the lock."""
        self._loads = 0
        self._work = 0.0
        try:
            old, self._pdf = self._pdf, None
            old.close()
            self._open()
        except Exception as exc:  # the file changed under us, or vanished
            raise PageRenderError(f"{self.name} cannot be read again ({type(exc).__name__}: {exc}).") from None

    # -- metadata (no page loading) -------------------------------------------------------------------------------

    def label(self, index: int) -> str:
        """The page's label (``"iv"``, ``"A-3"``) from the PDF's /PageLabels, or its number as a string."""
        with PDFIUM_LOCK:
            try:
                label = str(self._pdf.get_page_label(index))
            except Exception:
                label = ""
        return label or str(index + 1)

    def size(self, index: int) -> tuple[float, float]:
        """Width and height in points, as displayed (with /Rotate applied)."""
        with PDFIUM_LOCK:
            try:
                width, height = self._pdf.get_page_size(index)
            except Exception:
                raise PageRenderError(
                    f"page {index + 1} of {self.name} cannot be read (its size is missing or broken).",
                    page_index=index,
                ) from None
        return float(width), float(height)

    def rotation(self, index: int) -> int:
        """The page's /Rotate in degrees clockwise (0, 90, 180, 270)."""
        with PDFIUM_LOCK:
            page = self._load(index)
            started = time.perf_counter()
            try:
                return int(page.get_rotation())
            except Exception:
                return 0
            finally:
                page.close()
                self._work += time.perf_counter() - started

    # -- page content ---------------------------------------------------------------------------------------------

    def render(
        self,
        index: int,
        size: tuple[int, int],
        *,
        bilevel: bool = False,
        colour: Literal["RGB", "L", "auto"] = "RGB",
    ) -> Image.Image:
        """The page rendered into exactly ``size`` pixels on white, with /Rotate, annotations and forms.

        ``colour``: ``"RGB"``; ``"L"``, rendered by PDFium in greyscale (3-5x faster than RGB, and crisper than an
        RGB render converted); ``"auto"``: ``L`` when a quarter-size RGB thumbnail of the page shows no colour
        (:func:`~qwen_ocr.documents.render.thumbnail_has_colour`), else ``RGB``. Both renders share one page load,
        so the page's images are decoded once.

        ``bilevel=True`` (for a page of 1-bit scans) renders greyscale with images resampled without smoothing: the
        scan stays pure black and white, in a third of the memory and a fraction of the time.
        """
        return self.render_page(index, size, bilevel=bilevel, colour=colour).image

    def render_page(
        self,
        index: int,
        size: tuple[int, int],
        *,
        bilevel: bool = False,
        colour: Literal["RGB", "L", "auto"] = "RGB",
    ) -> Rendered:
        """:meth:`render`, with a greyscale render's pixels also as PNG rows (:class:`Rendered`)."""
        width, height = size
        with PDFIUM_LOCK:
            page = self._load(index)
            started = time.perf_counter()
            try:
                if bilevel:
                    return self._draw_grey(page, size, crisp=True, turn=_images_quarter_turned(page))
                grey = colour == "L"
                if colour == "auto":
                    if min(width, height) >= _THUMBNAIL_MIN:
                        thumb = self._draw(page, (max(1, width // 4), max(1, height // 4)), own=True)
                        grey = not thumbnail_has_colour(thumb)
                    else:  # a small page: every pixel of the render counts
                        im = self._draw(page, size)
                        return Rendered(im if has_colour(im) else im.convert("L"))
                return self._draw_grey(page, size) if grey else Rendered(self._draw(page, size))
            except MemoryError:
                raise PageRenderError(
                    f"page {index + 1} of {self.name}: not enough memory to render {width}x{height} px.",
                    page_index=index,
                ) from None
            except PageRenderError:
                raise
            except Exception as exc:
                raise PageRenderError(
                    f"page {index + 1} of {self.name} cannot be rendered ({type(exc).__name__}: {exc}).",
                    page_index=index,
                ) from None
            finally:
                page.close()
                self._work += time.perf_counter() - started

    def _draw(self, page: Any, size: tuple[int, int], *, own: bool = False) -> Image.Image:
        """One RGB render of a loaded page into a new image that owns its pixels (caller holds the lock). ``own``: in
        a bitmap of its own, not the reused buffer (a thumbnail). Greyscale renders: :meth:`_draw_grey`."""
        width, height = size
        flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
        bitmap = pdfium.PdfBitmap.new_native(
            width,
            height,
            pdfium_c.FPDFBitmap_BGR,
            rev_byteorder=True,
            buffer=None if own else self._bitmap_buffer(width * height * 3),
        )
        try:
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, flags)
            formenv = self._pdf.formenv
            if formenv:
                pdfium_c.FPDF_FFLDraw(formenv, bitmap, page, 0, 0, width, height, 0, flags)
            im: Image.Image = bitmap.to_pil()  # RGB: unpacked into Pillow's own storage (a copy of the buffer)
            if im.mode != "RGB":  # pragma: no cover - defensive
                im = im.convert("RGB")
            im.load()
            return im
        finally:
            bitmap.close()

    def _draw_grey(self, page: Any, size: tuple[int, int], *, crisp: bool = False, turn: bool = False) -> Rendered:
        """A greyscale render of a loaded page straight into PNG rows (caller holds the lock): PDFium draws each row
        after its filter byte (stride ``width + 1``) onto white, and the image is a view of those rows, so neither
        a copy out of PDFium's bitmap nor one into the encoder's canvas is made.

        ``turn`` (the page's images are drawn a quarter turn from upright, :func:`_images_quarter_turned`): PDFium
        draws the page a quarter turn clockwise, so that its images go through its fast axis-aligned path (half the
        time of a rotated image at the budget: ~5 ms instead of ~10 for a 2.5 MP scan), and Pillow turns the
        pixels back (~2 ms); the rows are then not kept."""
        width, height = (size[1], size[0]) if turn else size
        rows, first = unfiltered_rows(width, height)
        stride = width + 1
        pixels = (ctypes.c_ubyte * (stride * height)).from_buffer(rows, first)
        flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_GRAYSCALE
        if crisp:
            flags |= pdfium_c.FPDF_RENDER_NO_SMOOTHIMAGE
        bitmap = pdfium_c.FPDFBitmap_CreateEx(width, height, pdfium_c.FPDFBitmap_Gray, pixels, stride)
        if not bitmap:
            raise MemoryError
        try:
            rotate = 1 if turn else 0
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, rotate, flags)
            formenv = self._pdf.formenv
            if formenv:
                pdfium_c.FPDF_FFLDraw(formenv, bitmap, page, 0, 0, width, height, rotate, flags)
        finally:
            pdfium_c.FPDFBitmap_Destroy(bitmap)
        del pixels  # the ctypes view's export of ``rows`` ends here
        view = memoryview(rows)[first : first + stride * height]
        image = Image.frombuffer("L", (width, height), view, "raw", "L", stride, 1)  # type: ignore[arg-type]
        if turn:
            return Rendered(image.transpose(Image.Transpose.ROTATE_90))  # a quarter turn back, counter-clockwise
        return Rendered(image, rows)

    def _bitmap_buffer(self, nbytes: int) -> Any:
        """A buffer of at least ``nbytes`` for a bitmap: the last one when large enough (renders at the budget are
        all about the same size), a new one otherwise. ``None`` (let pypdfium2 allocate) for outsized renders."""
        if nbytes > _REUSE_LIMIT:
            return None
        if self._buffer is None or len(self._buffer) < nbytes:
            self._buffer = (ctypes.c_ubyte * nbytes)()
        return self._buffer

    def analyse(self, index: int) -> PageAnalysis:
        """The page's text layer, and how much of the page its largest image and its invisible text cover."""
        with PDFIUM_LOCK:
            page = self._load(index)
            started = time.perf_counter()
            textpage = None
            try:
                textpage = page.get_textpage()
                text = clean_text_layer(str(textpage.get_text_bounded(errors="replace")))
                left, bottom, right, top = (float(v) for v in page.get_bbox())
                area = max(0.0, right - left) * max(0.0, top - bottom)
                box = (left, bottom, right, top)
                coverage = 0.0
                image_dpi = 0.0
                text_objects = 0
                invisible = 0
                paths = 0
                images = bilevel = 0
                for obj in page.get_objects(max_depth=1):
                    kind = obj.type
                    if kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
                        text_objects += 1
                        invisible += _is_invisible(obj)
                    elif kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                        paths += 1
                    elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                        images += 1
                        bilevel += _is_bilevel(obj)
                        covered = _covered(obj, box, area)
                        coverage = max(coverage, covered)
                        if covered >= _DPI_COVERAGE:
                            image_dpi = max(image_dpi, _image_dpi(obj, _pixels(obj)))
                    elif kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                        images += 1  # images inside forms are not inspected: never called bilevel
                        image_px, n_text, n_invisible, n_paths = _walk_form(page, obj, 1)
                        text_objects += n_text
                        invisible += n_invisible
                        paths += n_paths
                        if image_px:
                            covered = _covered(obj, box, area)
                            coverage = max(coverage, covered)
                            if covered >= _DPI_COVERAGE:
                                image_dpi = max(image_dpi, _image_dpi(obj, image_px))
            except PageRenderError:
                raise
            except Exception as exc:
                raise PageRenderError(
                    f"the text layer of page {index + 1} of {self.name} cannot be read ({type(exc).__name__}: {exc}).",
                    page_index=index,
                ) from None
            finally:
                if textpage is not None:
                    textpage.close()
                page.close()
                self._work += time.perf_counter() - started
        share = invisible / text_objects if text_objects else 0.0
        return PageAnalysis(
            text=text,
            image_coverage=coverage,
            invisible_share=share,
            text_objects=text_objects,
            image_dpi=image_dpi,
            path_objects=paths,
            bilevel_images=images > 0 and bilevel == images,
        )

    def close(self) -> None:
        """Close the document and release PDFium's memory for it."""
        with PDFIUM_LOCK:
            if self._pdf is not None:
                self._pdf.close()
            self._pdf = None
        self._source = None
        self._buffer = None

    # -- helpers --------------------------------------------------------------------------------------------------

    def _load(self, index: int) -> Any:
        """The page, loaded (caller holds the lock and closes it); the document reopened first when that is due."""
        if self._pdf is None:
            raise PageRenderError(f"{self.name} could not be reopened; open it again.", page_index=index)
        if not self._recycle_due():
            return self._get_page(index)
        start = time.perf_counter()
        self._recycle()
        page = self._get_page(index)  # finding the page again walks the page tree: part of the reopen's cost
        self._reopen_cost = time.perf_counter() - start
        return page

    def _get_page(self, index: int) -> Any:
        try:
            return self._pdf.get_page(index)
        except Exception as exc:
            raise PageRenderError(
                f"page {index + 1} of {self.name} cannot be loaded: the page is corrupt ({exc}).", page_index=index
            ) from None


def _load_error(code: int, name: str, password: str | None) -> Exception:
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        if password:
            return WrongPasswordError(
                f"{name} is encrypted and the password given is wrong (it opens neither as user nor as owner password)."
            )
        return PasswordRequiredError(f"{name} is encrypted and needs a password: pass password='...'.")
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return EncryptedDocumentError(
            f"{name} is encrypted with a security handler PDFium does not support; decrypt it first (e.g. qpdf "
            "--decrypt)."
        )
    if code == pdfium_c.FPDF_ERR_FILE:
        return DocumentReadError(f"{name} cannot be opened for reading.", code="ReadError")
    if code == pdfium_c.FPDF_ERR_PAGE:
        return CorruptDocumentError(f"{name} is a PDF whose page tree is broken; it cannot be read.")
    return CorruptDocumentError(
        f"{name} starts like a PDF but cannot be read: the file is corrupt or truncated "
        f"(PDFium error {code}: {_ERROR_NAMES.get(code, 'unknown')})."
    )


_ERROR_NAMES = {0: "success", 1: "unknown", 2: "file", 3: "format", 4: "password", 5: "security", 6: "page"}


def _is_invisible(obj: Any) -> int:
    try:
        mode = int(pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw))
    except Exception:
        return 0
    return int(mode == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE)


def _covered(obj: Any, box: tuple[float, float, float, float], area: float) -> float:
    if area <= 0:
        return 0.0
    try:
        left, bottom, right, top = (float(v) for v in obj.get_bounds())
    except Exception:
        return 0.0
    w = min(right, box[2]) - max(left, box[0])
    h = min(top, box[3]) - max(bottom, box[1])
    return max(0.0, w) * max(0.0, h) / area


def _images_quarter_turned(page: Any) -> bool:
    """Whether the page has images and every one is drawn a quarter turn from upright (90 or 270 degrees, the
    page's /Rotate included), with no form XObject that could hold others: a scan stored sideways. ``False`` when
    anything cannot be read."""
    try:
        page_turned = (int(page.get_rotation()) // 90) % 2 == 1
        images = 0
        for obj in page.get_objects(max_depth=1):
            if obj.type == pdfium_c.FPDF_PAGEOBJ_FORM:
                return False
            if obj.type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
                continue
            a, b, c, d = (abs(float(v)) for v in obj.get_matrix().get()[:4])
            if b + c <= 1e-6 * (a + d):
                sideways = False
            elif a + d <= 1e-6 * (b + c):
                sideways = True
            else:
                return False  # at another angle: no faster path either way
            if sideways == page_turned:
                return False
            images += 1
    except Exception:
        return False
    return images > 0


def _is_bilevel(obj: Any) -> bool:
    try:
        return int(obj.get_metadata().bits_per_pixel) == 1
    except Exception:
        return False


def _pixels(obj: Any) -> int:
    try:
        width, height = obj.get_px_size()
    except Exception:
        return 0
    return max(0, int(width)) * max(0, int(height))


def _image_dpi(obj: Any, pixels: int) -> float:
    """Pixels per inch of an image as placed: its pixel count over the area it covers (rotation-agnostic)."""
    try:
        left, bottom, right, top = (float(v) for v in obj.get_bounds())
    except Exception:
        return 0.0
    square_inches = (right - left) * (top - bottom) / (72.0 * 72.0)
    if pixels <= 0 or square_inches <= 0:
        return 0.0
    return float((pixels / square_inches) ** 0.5)


def _walk_form(page: Any, form: Any, level: int) -> tuple[int, int, int, int]:
    """The pixel count of the largest image a form XObject holds (at any depth, 0 if none), and its text objects
    (all, invisible) and path objects."""
    image_px = 0
    n_text = 0
    n_invisible = 0
    n_paths = 0
    for obj in page.get_objects(form=form, level=level, max_depth=level + 1):
        if obj.level != level:
            continue
        kind = obj.type
        if kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
            n_text += 1
            n_invisible += _is_invisible(obj)
        elif kind == pdfium_c.FPDF_PAGEOBJ_PATH:
            n_paths += 1
        elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            image_px = max(image_px, _pixels(obj), 1)
        elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and level < _FORM_DEPTH:
            sub_px, sub_text, sub_invisible, sub_paths = _walk_form(page, obj, level + 1)
            image_px = max(image_px, sub_px)
            n_text += sub_text
            n_invisible += sub_invisible
            n_paths += sub_paths
    return image_px, n_text, n_invisible, n_paths
