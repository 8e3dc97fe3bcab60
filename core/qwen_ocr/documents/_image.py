"""Image pages through Pillow: a single image is a 1-page document, a multi-page TIFF one page per frame (I/O).

Frames are read lazily: opening reads the first frame's header and counts the frames (a TIFF's in one pass over
its chain of directories, never their pixels, stopping one past :data:`MAX_IMAGE_PAGES`); a frame's pixels are
decoded only when that page is rendered, and dropped after. A frame whose data is broken raises
:class:`~qwen_ocr.documents.errors.PageRenderError` for that page only.

**Threads.** A ``PIL`` image is one seekable object: seeking it to another frame while a thread decodes the
current one hands that thread the other frame's pixels (or a decoder error). Pages are prepared on worker threads
while the iterating thread measures the next ones, so every use of the shared image (seek, read its tags, decode,
copy) holds the file's lock; only the pixel work on the page's own copy (turning it upright, flattening, resizing,
encoding) runs outside it. A page's pixels are therefore always its own frame's.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .. import imaging
from ..errors import InvalidImageError
from ..imaging import MAX_ASPECT_RATIO, MAX_DECODED_PIXELS, MIN_SIDE, PreparedImage, prepare_image
from ..models import ModelSpec
from .errors import CorruptDocumentError, DocumentError, PageRenderError, PageSizeError, TooManyPagesError
from .render import to_upload_mode

if TYPE_CHECKING:  # Pillow is imported when an image file is opened (issue 17: a light import)
    from PIL import Image

__all__ = ["MAX_IMAGE_PAGES", "ImageFile"]

MAX_IMAGE_PAGES = 10_000
"""The most pages read from one image file (a multi-page TIFF); one with more raises
:class:`~qwen_ocr.documents.errors.TooManyPagesError` when opened. (Pillow finds a TIFF's frames by walking its
directories in time that grows with the square of their number: 10,000 pages cost it about a second in all.)"""

_ORIENTATION = 0x0112
_TRANSPOSE = {  # EXIF orientation -> the name of Pillow's Image.Transpose that makes the frame upright
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}
_SIZE_CODES = frozenset({"ImageTooSmall", "BadAspectRatio", "ImageTooLarge"})


class ImageFile:
    """An open image file. Not for direct use: :func:`qwen_ocr.documents.open_document` wraps it."""

    def __init__(self, *, data: bytes | None, path: Path | None, fmt: str, name: str) -> None:
        self.name = name
        self.format = fmt
        self._data = data
        self._path = path
        if fmt == "HEIC" and not imaging._register_heif():
            raise DocumentError(
                f"{name} is a HEIC image; reading it needs the 'heic' extra: pip install 'qwen-ocr[heic]'.",
                code="MissingDependency",
            )
        self._lock = threading.Lock()
        """Held around every use of the shared ``PIL`` image: seek, tags, decode, copy (see the module doc)."""
        self._fh: IO[bytes] = io.BytesIO(data) if data is not None else _open_file(path, name)
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                self._im = Image.open(self._fh)
        except Image.DecompressionBombError:
            self._fh.close()
            raise PageSizeError(
                f"{name} would decode to more than {MAX_DECODED_PIXELS:,} pixels; refused as a possible "
                "decompression bomb. Downscale it first.",
                code="ImageTooLarge",
                page_index=0,
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            self._fh.close()
            raise CorruptDocumentError(
                f"{name} looks like a {fmt} image but its header cannot be read: the file is corrupt or truncated "
                f"({type(exc).__name__}: {exc}).",
            ) from None
        try:
            self.page_count = self._count_frames()
        except TooManyPagesError:
            self.close()
            raise
        self._single = self.page_count == 1 and fmt != "TIFF"
        """A plain single image: prepared from its own bytes by prepare_image, which may send them untouched."""
        if self.page_count == 1:
            # A single image: everything is known from its header, so refuse an unusable one now.
            width, height = self.size(0)
            problem = _size_problem(int(width), int(height))
            if problem is not None:
                code, why = problem
                self.close()
                raise PageSizeError(f"{name} is {int(width)}x{int(height)} px: {why}", code=code, page_index=0)

    # -- metadata -------------------------------------------------------------------------------------------------

    def size(self, index: int) -> tuple[float, float]:
        """Width and height in pixels, upright (after the EXIF/TIFF orientation)."""
        with self._lock:
            self._seek(index)
            width, height = self._im.size
            orientation = _orientation(self._im)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return float(width), float(height)

    def rotation(self, index: int) -> int:
        """Clockwise degrees the EXIF/TIFF orientation turns the stored pixels by (0 when upright or mirrored)."""
        with self._lock:
            self._seek(index)
            orientation = _orientation(self._im)
        return {3: 180, 6: 90, 8: 270}.get(orientation, 0)

    # -- pixels ---------------------------------------------------------------------------------------------------

    def frame(self, index: int) -> Image.Image:
        """The page's pixels, decoded, upright, owned by the caller."""
        with self._lock:
            # Seek, decode and copy as one step: no other thread moves the image to another frame in between.
            self._seek(index)
            width, height = self._im.size
            if width * height > MAX_DECODED_PIXELS:
                raise PageSizeError(
                    f"page {index + 1} of {self.name} is {width}x{height} px, over {MAX_DECODED_PIXELS:,} pixels; "
                    "refused as a possible decompression bomb.",
                    code="ImageTooLarge",
                    page_index=index,
                )
            with self._decoding(index):
                orientation = _orientation(self._im)
                frame = self._im.copy()
                frame.load()
        with self._decoding(index):
            method = _TRANSPOSE.get(orientation)
            if method is None:
                return frame
            from PIL import Image

            return frame.transpose(Image.Transpose[method])

    @contextlib.contextmanager
    def _decoding(self, index: int) -> Iterator[None]:
        """Decoding page ``index``, warnings silenced: any failure is its :class:`PageRenderError`."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except Exception as exc:
            raise PageRenderError(
                f"page {index + 1} of {self.name} cannot be decoded: its data is corrupt or truncated "
                f"({type(exc).__name__}: {exc}).",
                page_index=index,
            ) from None

    def render(self, index: int, spec: ModelSpec, min_pixels: int | None, max_pixels: int | None) -> Image.Image:
        """The page as it will be sent: upright, flattened onto white, downscaled to the budget if over it (and for
        a page of a multi-page file, greyscale when it has no colour)."""
        frame = self.frame(index)
        try:
            if not self._single:
                frame = _upload_frame(frame)
            target = imaging._target_size(frame.width, frame.height, spec, min_pixels, max_pixels)
            flat = imaging._upload_pixels(frame, target)  # exactly what prepare_image sends
        except DocumentError:
            raise
        except Exception as exc:
            raise PageRenderError(
                f"page {index + 1} of {self.name} cannot be converted ({type(exc).__name__}: {exc}).",
                page_index=index,
            ) from None
        return flat

    def prepare(self, index: int, spec: ModelSpec, min_pixels: int | None, max_pixels: int | None) -> PreparedImage:
        """The page ready to send, through :func:`qwen_ocr.imaging.prepare_image`."""
        try:
            if self._single:
                # The file itself: a JPEG within budget goes byte for byte, after we checked that it decodes.
                source: bytes | Path = self._data if self._data is not None else _as_path(self._path)
                prepared = prepare_image(source, model=spec, min_pixels=min_pixels, max_pixels=max_pixels)
                if not prepared.reencoded:
                    self._check_decodes(index)
                return prepared
            frame = self.frame(index)
            width, height = frame.size
            problem = _size_problem(width, height)
            if problem is not None:
                code, why = problem
                raise PageSizeError(
                    f"page {index + 1} of {self.name} is {width}x{height} px: {why}", code=code, page_index=index
                )
            return prepare_image(_upload_frame(frame), model=spec, min_pixels=min_pixels, max_pixels=max_pixels)
        except DocumentError:
            raise
        except InvalidImageError as exc:
            raise _page_error(exc, index, self.name) from None

    def _check_decodes(self, index: int) -> None:
        """Decode the image once (a JPEG at 1/8 scale) so that a truncated file is caught before it is sent."""
        fh: IO[bytes] = io.BytesIO(self._data) if self._data is not None else _open_file(self._path, self.name)
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(fh) as im:
                    if im.format == "JPEG":
                        im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                    im.load()
        except Exception as exc:
            raise PageRenderError(
                f"page {index + 1} of {self.name} cannot be decoded: the file is corrupt or truncated "
                f"({type(exc).__name__}: {exc}).",
                page_index=index,
            ) from None
        finally:
            fh.close()

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            try:
                self._im.close()
            finally:
                self._fh.close()
                self._data = None

    # -- helpers --------------------------------------------------------------------------------------------------

    def _count_frames(self) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt metadata it skips; we report what breaks
            return self._count_frames_quietly()

    def _count_frames_quietly(self) -> int:
        limit = MAX_IMAGE_PAGES
        if self.format == "TIFF":
            n = imaging._count_tiff_pages(self._fh, limit)
        else:
            try:
                n = int(getattr(self._im, "n_frames", 1))  # read from the header (WEBP, PNG, HEIC)
            except Exception:
                n = 1  # a broken list of frames: the first one is still an image
        if n > limit:
            raise TooManyPagesError(
                f"{self.name} is a {self.format} with more than {limit:,} pages; at most {limit:,} pages are read "
                "from one image file. Split it into smaller files first."
            )
        with contextlib.suppress(Exception):
            self._im.seek(0)
        return max(1, n)

    def _seek(self, index: int) -> None:
        try:
            if self._im.tell() != index:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._im.seek(index)
        except Exception as exc:
            raise PageRenderError(
                f"page {index + 1} of {self.name} cannot be read: its directory is corrupt ({type(exc).__name__}: "
                f"{exc}).",
                page_index=index,
            ) from None


def _upload_frame(frame: Image.Image) -> Image.Image:
    """A TIFF page in the mode to send: a colourless colour page becomes greyscale; the rest goes to
    :func:`qwen_ocr.imaging._upload_pixels` as it is (bilevel stays bilevel, downscaled with NEAREST; palettes are
    read for what they hold; alpha is flattened onto white; 16-bit maps to 8-bit)."""
    if frame.mode in ("L", "1", "P") or imaging._has_alpha(frame) or frame.mode.startswith(("I", "F")):
        return frame
    return to_upload_mode(frame)


def _open_file(path: Path | None, name: str) -> IO[bytes]:
    assert path is not None
    try:
        return imaging._open_regular(path)
    except OSError as exc:
        raise CorruptDocumentError(f"{name} cannot be read ({exc.strerror or exc}).", code="ReadError") from None


def _as_path(path: Path | None) -> Path:
    assert path is not None
    return path


def _orientation(im: Image.Image) -> int:
    tags = getattr(im, "tag_v2", None)
    value = tags.get(_ORIENTATION, 1) if tags is not None else imaging._exif_orientation(im)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _size_problem(width: int, height: int) -> tuple[str, str] | None:
    if width * height > MAX_DECODED_PIXELS:
        return "ImageTooLarge", (
            f"over {MAX_DECODED_PIXELS:,} pixels, refused as a possible decompression bomb. Downscale it first."
        )
    if min(width, height) < MIN_SIDE:
        return "ImageTooSmall", "the service needs at least 10 px on each side. Upscale it or pass a larger image."
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        return "BadAspectRatio", (
            f"an aspect ratio of {ratio:.0f}:1; the service accepts at most {MAX_ASPECT_RATIO:.0f}:1. Split it."
        )
    return None


def _page_error(exc: InvalidImageError, index: int, name: str) -> DocumentError:
    message = f"page {index + 1} of {name}: {exc.message}"
    if exc.code in _SIZE_CODES:
        return PageSizeError(message, code=exc.code, page_index=index)
    if exc.code == "MissingDependency":
        return DocumentError(message, code=exc.code)
    return PageRenderError(message, code="CorruptPage", page_index=index)
