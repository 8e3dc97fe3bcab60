"""Documents in: a PDF, a multi-page TIFF or any single image, opened and read page by page.

:func:`open_document` recognises the input by its bytes (never by its name), checks it, and returns a
:class:`Document`: a context manager whose iteration yields :class:`Page` objects lazily, one at a time. A page
knows its index, label, size and rotation without rendering anything; it renders only when asked
(:meth:`Page.render`, :meth:`Page.prepare`), straight at the pixel budget (:mod:`qwen_ocr.budget`: 2,560 tokens
by default, ``resolution="high"`` or ``"max"`` for more), and keeps no pixels afterwards.
So a 1,000-page PDF goes through in the memory of one page.

Example::

    from qwen_ocr.documents import open_document

    with open_document("report.pdf", pages="1-3,7") as doc:
        print(doc.page_count, len(doc))                 # pages in the file, pages selected
        for page in doc:
            if page.has_good_text_layer:                # born-digital: the text is already there
                text = page.text_layer()
            else:
                image = page.prepare()                  # a PreparedImage: data: URL, sizes, scale
                ...                                     # send image.url to the model
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Union

from .._closing import Closing
from ..budget import Resolution, pixel_budget
from ..errors import InvalidArgumentError
from ..imaging import (
    PreparedImage,
    _data_url,
    _open_regular,
    _path_problem,
    _read_regular,
    _target_size,
    describe_bytes,
    sniff_format,
    tokens_for_size,
)
from ..models import ModelSpec, model_spec
from ._analysis import PageAnalysis
from ._image import ImageFile
from .errors import (
    DocumentClosedError,
    DocumentReadError,
    EmptyDocumentError,
    PageRenderError,
    PageSelectionError,
    PageSizeError,
    UnsupportedDocumentError,
)
from .render import (
    DEFAULT_DPI,
    MAX_DPI,
    aspect_ratio_problem,
    encode_page,
    pdf_render_size,
    render_pixels_ok,
)
from .selection import PageSpec, parse_pages
from .textlayer import TextLayerMode, TextLayerVerdict, check_text_layer_mode, judge_text_layer

if TYPE_CHECKING:
    from typing import TypeAlias

    from PIL import Image

    from ._pdf import PdfFile, Rendered

__all__ = [
    "SUPPORTED_DOCUMENT_FORMATS",
    "Document",
    "DocumentSource",
    "Page",
    "open_document",
]

DocumentSource: TypeAlias = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
"""What :func:`open_document` reads: a path, the file's bytes, or a binary file object."""

SUPPORTED_DOCUMENT_FORMATS = ("PDF", "BMP", "JPEG", "PNG", "TIFF", "WEBP", "HEIC")
"""Formats :func:`open_document` reads, recognised by their bytes."""

_HEAD = 4096
_DRAWN_COVERAGE = 0.25
"""A page whose largest image covers less than this share is a drawn page (text, vector graphics): encoded with
unfiltered rows (:func:`~qwen_ocr.documents.render.encode_page`)."""


def open_document(
    source: DocumentSource,
    *,
    password: str | None = None,
    pages: PageSpec = None,
    model: str | ModelSpec = "qwen-vl-ocr",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    dpi: float = DEFAULT_DPI,
    resolution: Resolution | None = None,
) -> Document:
    """Open a PDF, a multi-page TIFF or a single image as a :class:`Document` of pages.

    Args:
        source: a path (``str`` or ``Path``), the file's bytes, or a binary file object (read whole into memory;
            pass a path for very large PDFs, which PDFium then reads lazily from disk).
        password: the password of an encrypted PDF (user or owner password).
        pages: which pages to iterate, 1-based as people say it: ``"1-3,7"``, ``5``, ``[1, 3]``, ``range(1, 11)``;
            ``None`` for all (see :func:`~qwen_ocr.documents.selection.parse_pages`).
        model: the model the pages are for; its patch size and the pixel budget decide the render size.
        min_pixels: the lower pixel budget (default: the model's documented minimum).
        max_pixels: the upper pixel budget, as given (default: the ``resolution`` level's).
        dpi: the resolution PDF pages are rendered at (300 by default), within the budget. A page that is a scan
            (a picture of a page) is rendered at the scan's own resolution instead, never above it; a page with a
            finer scan among its text at the scan's resolution. The pixel budget caps all of them.
        resolution: the budget as a level: ``"standard"`` (default, 2,560 image tokens: about 170 dpi on a Letter
            or A4 page), ``"high"`` (the documented default, 8,192 tokens: 300 dpi) or ``"max"`` (the model's
            ceiling, 30,000 tokens: pages larger than A4); see :mod:`qwen_ocr.budget`. Not with ``max_pixels``.

    Raises:
        DocumentError: (a subclass of it) the file cannot be used; the message says why. See
            :mod:`qwen_ocr.documents.errors` for the cases.
        PageSelectionError: ``pages`` is malformed or names a page the document does not have.

    Example::

        >>> with open_document("tests/data/corpus/py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf", pages="2-") as doc:
        ...     [page.label for page in doc]
        ['2', '3', '4']
    """
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    if isinstance(dpi, bool) or not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and 1 <= dpi <= MAX_DPI):
        raise InvalidArgumentError(f"dpi={dpi!r} is not a resolution between 1 and {MAX_DPI:g}.")
    for label, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"{label}={value!r} must be a positive number of pixels.")
    budget = pixel_budget(spec, resolution=resolution, min_pixels=min_pixels, max_pixels=max_pixels)
    name, path, data, head = _read_source(source)
    kind, fmt = _detect(head, name)
    backend: PdfFile | ImageFile
    if kind == "pdf":
        from ._pdf import PdfFile  # pypdfium2: imported when the first PDF is opened

        backend = PdfFile(path if path is not None else _bytes(data), password=password, name=name)
    else:
        # A TIFF from disk is read lazily, frame by frame; any other image is one page, read whole.
        if path is not None and fmt != "TIFF":
            data = _read_all(path, name)
        backend = ImageFile(data=data, path=path if data is None else None, fmt=fmt, name=name)
    try:
        selected = parse_pages(pages, backend.page_count)
    except PageSelectionError:
        backend.close()
        raise
    return Document(
        backend,
        name=name,
        kind=kind,
        format=fmt,
        spec=spec,
        selected=selected,
        min_pixels=budget.min_pixels,
        max_pixels=budget.max_pixels,
        dpi=float(dpi),
    )


class Document(Closing):
    """An open document: iterate it for its selected pages; use it in ``with`` so that it is closed.

    Attributes:
        name: how the document is named in messages (its path, or ``"bytes"``).
        kind: ``"pdf"`` or ``"image"`` (a single image or a multi-page TIFF).
        format: ``"PDF"``, ``"TIFF"``, ``"PNG"``, ...
        page_count: pages in the file.
        selected: the 0-based indices of the pages iteration yields, in order.
        spec: the model the pages are prepared for.
        min_pixels: the lower pixel budget of every page (:func:`qwen_ocr.budget.pixel_budget`).
        max_pixels: the upper pixel budget of every page; each page is prepared, estimated and sent at it.

    Threads: pages of one document may be measured, rendered and prepared from several threads at once, while
    another thread iterates it (that is how :func:`qwen_ocr.read_document` and the loaders work). Every PDFium call
    holds :data:`qwen_ocr.documents.PDFIUM_LOCK`, and every use of an image file's shared decoder (seek, decode,
    copy of a frame) holds the document's own lock, so each page's pixels are always its own; the pixel work after
    that (resizing, encoding) runs in parallel: two threads render about twice as many pages per second as one.
    Close the document only once no thread uses its pages.
    """

    def __init__(
        self,
        backend: PdfFile | ImageFile,
        *,
        name: str,
        kind: Literal["pdf", "image"],
        format: str,
        spec: ModelSpec,
        selected: tuple[int, ...],
        min_pixels: int,
        max_pixels: int,
        dpi: float,
    ) -> None:
        self._backend: PdfFile | ImageFile | None = backend
        self.name = name
        self.kind = kind
        self.format = format
        self.page_count = backend.page_count
        self.selected = selected
        self.spec = spec
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.dpi = dpi

    def __len__(self) -> int:
        return len(self.selected)

    def __iter__(self) -> Iterator[Page]:
        for index in self.selected:
            yield self.page(index)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self)} of {self.page_count} pages selected"
        return f"<Document {self.format} {self.name!r}, {state}>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._backend is None

    def page(self, index: int) -> Page:
        """The page at this 0-based index of the file (selected or not).

        Raises:
            PageSelectionError: there is no such page.
        """
        self._open_backend()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.page_count:
            raise PageSelectionError(
                f"page index {index!r} is out of range: the document has {self.page_count} page"
                f"{'s' if self.page_count != 1 else ''} (indices 0-{self.page_count - 1})."
            )
        return Page(self, index)

    def close(self) -> None:
        """Release the file and everything the PDF engine holds for it. Pages cannot be used afterwards."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def _open_backend(self) -> PdfFile | ImageFile:
        if self._backend is None:
            raise DocumentClosedError(
                f"{self.name} is closed; use its pages inside the 'with open_document(...)' block."
            )
        return self._backend


class Page:
    """One page of a :class:`Document`. Cheap to make: nothing is rendered or parsed until you ask.

    Attributes:
        document: the document it belongs to.
        index: 0-based index in the file.
        label: the PDF's page label where it defines one (``"iv"``, ``"A-3"``), else the page number (``"1"``).
        width: displayed width, in points (1/72 inch) for a PDF page, in pixels for an image.
        height: displayed height, likewise.
        unit: ``"pt"`` or ``"px"``.
    """

    def __init__(self, document: Document, index: int) -> None:
        backend = document._open_backend()
        self.document = document
        self.index = index
        self.unit: Literal["pt", "px"] = "px" if isinstance(backend, ImageFile) else "pt"
        self.label = str(index + 1) if isinstance(backend, ImageFile) else backend.label(index)
        # A broken page still makes a Page, so that iteration goes on past it; using it raises the error.
        self._broken: PageRenderError | None = None
        try:
            self.width, self.height = backend.size(index)
        except PageRenderError as exc:
            self.width = self.height = 0.0
            self._broken = exc
        self._rotation: int | None = None
        self._analysis: PageAnalysis | None = None
        self._verdict: TextLayerVerdict | None = None

    def __repr__(self) -> str:
        size = f"{self.width:g}x{self.height:g} {self.unit}"
        return f"<Page {self.number} (label {self.label!r}) of {self.document.name!r}, {size}>"

    @property
    def number(self) -> int:
        """1-based page number."""
        return self.index + 1

    @property
    def size(self) -> tuple[float, float]:
        """``(width, height)`` as displayed, in :attr:`unit`."""
        return self.width, self.height

    @property
    def rotation(self) -> int:
        """Clockwise degrees: the PDF page's /Rotate (already applied to :attr:`size` and to renders), or the
        image's EXIF/TIFF orientation."""
        if self._rotation is None:
            self._rotation = self._backend().rotation(self.index)
        return self._rotation

    @property
    def sent_size(self) -> tuple[int, int]:
        """The pixel size :meth:`prepare` sends, computed without rendering."""
        self._backend()  # a closed document or a broken page says so here
        doc = self.document
        if self.unit == "pt":
            self._check_shape()
            size = pdf_render_size(
                self.width,
                self.height,
                spec=doc.spec,
                dpi=self._render_dpi(),
                min_pixels=doc.min_pixels,
                max_pixels=doc.max_pixels,
            )
            problem = aspect_ratio_problem(*size)
            if problem is not None:  # rounding to patches can stretch a page just under 200:1 past it
                raise PageSizeError(
                    f"page {self.number} of {doc.name} would be sent as {size[0]}x{size[1]} px, {problem}.",
                    code="BadAspectRatio",
                    page_index=self.index,
                )
            return size
        return _target_size(int(self.width), int(self.height), doc.spec, doc.min_pixels, doc.max_pixels)

    def _render_dpi(self) -> float:
        """The resolution a PDF page is rendered at before the budget caps it: a scan's own (a picture of a page is
        never upsampled: more pixels than the scan has carry nothing, and cost tokens), else ``dpi``, or a finer
        scan's among the page's text."""
        analysis = self.analysis()
        scan_dpi = min(analysis.image_dpi, MAX_DPI)
        if analysis.looks_scanned and scan_dpi >= 1:
            return scan_dpi
        return max(self.document.dpi, scan_dpi)

    @property
    def image_tokens(self) -> int:
        """Image tokens this page costs when OCR'd (from its size alone): its sent pixels at the document's budget,
        over ``patch**2``, plus 2; what the page's request states and is billed for."""
        width, height = self.sent_size
        doc = self.document
        return tokens_for_size(width, height, model=doc.spec, min_pixels=doc.min_pixels, max_pixels=doc.max_pixels)

    # -- pixels ---------------------------------------------------------------------------------------------------

    def render(self, *, dpi: float | None = None) -> Image.Image:
        """The page as a ``PIL.Image``: exactly the pixels :meth:`prepare` sends (for a PDF page ``L`` when it has no
        colour, else ``RGB``), or, with ``dpi``, a PDF page rendered at that resolution (no budget; RGB).

        Raises:
            PageRenderError: the page is corrupt.
            PageSizeError: the page can never be sent (aspect ratio over 200:1, ...).
        """
        backend = self._backend()
        doc = self.document
        if isinstance(backend, ImageFile):
            return backend.render(self.index, doc.spec, doc.min_pixels, doc.max_pixels)
        if dpi is not None:
            self._check_shape()
            scale = float(dpi) / 72.0
            size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
            if not (math.isfinite(scale) and scale > 0 and render_pixels_ok(*size)):
                raise PageSizeError(
                    f"page {self.number} of {doc.name} at {dpi} dpi would be {size[0]}x{size[1]} px, too many pixels.",
                    code="ImageTooLarge",
                    page_index=self.index,
                )
            return backend.render(self.index, size)
        return self._render_pdf(backend).image

    def _render_pdf(self, backend: PdfFile) -> Rendered:
        """The PDF page at its sent size, as :meth:`render` describes, with its PNG rows when greyscale."""
        analysis = self.analysis()
        crisp = analysis.looks_scanned and analysis.bilevel_images  # a 1-bit scan: keep its pixels black and white
        if crisp:
            return backend.render_page(self.index, self.sent_size, bilevel=True)
        return backend.render_page(self.index, self.sent_size, colour="auto")  # greyscale when colourless

    def prepare(self) -> PreparedImage:
        """The page ready to send: rendered at the budget, greyscale when colourless, as a ``data:`` URL (PNG; JPEG
        at quality 95 for a colour scan, see :mod:`qwen_ocr.documents.render`), carrying the document's budget
        (``min_pixels``, ``max_pixels``), which its request states.

        For a PDF page, ``original_size`` is the page's size in points (rounded) and ``scale`` maps pixels of the
        sent image to points, so boxes come back in PDF points from the displayed page's top-left corner. For an
        image page both are in the image's own pixels, as :func:`qwen_ocr.imaging.prepare_image` makes them.
        """
        backend = self._backend()
        doc = self.document
        if isinstance(backend, ImageFile):
            return backend.prepare(self.index, doc.spec, doc.min_pixels, doc.max_pixels)
        rendered = self._render_pdf(backend)
        im = rendered.image
        analysis = self.analysis()
        drawn = not analysis.looks_scanned and analysis.image_coverage < _DRAWN_COVERAGE
        encoded = encode_page(im, scanned=analysis.looks_scanned, drawn=drawn, rows=rendered.rows)
        if encoded is None:
            raise PageSizeError(
                f"page {self.number} of {doc.name} is over 10 MB even as a JPEG at {im.width}x{im.height} px; "
                "pass a smaller max_pixels.",
                code="ImageTooLarge",
                page_index=self.index,
            )
        width, height = im.size
        return PreparedImage(
            url=_data_url(encoded.data, encoded.mime),
            original_size=(max(1, round(self.width)), max(1, round(self.height))),
            sent_size=(width, height),
            scale=(self.width / width, self.height / height),
            mime=encoded.mime,
            nbytes=len(encoded.data),
            reencoded=True,
            min_pixels=doc.min_pixels,
            max_pixels=doc.max_pixels,
        )

    # -- text layer -----------------------------------------------------------------------------------------------

    def text_layer(self) -> str:
        """The page's own text (PDF text layer), cleaned; ``""`` for images and for pages without text."""
        return self.analysis().text

    def text_layer_verdict(self) -> TextLayerVerdict:
        """Whether the text layer is good enough to use instead of OCR, with its quality and the reason."""
        if self._verdict is None:
            analysis = self.analysis()
            self._verdict = judge_text_layer(
                analysis.text, image_coverage=analysis.image_coverage, invisible_share=analysis.invisible_share
            )
        return self._verdict

    def analysis(self) -> PageAnalysis:
        """The page's text layer and what its objects say (image coverage, invisible text, scan resolution).

        Read once per page object (the page's content is parsed, no pixels are rendered) and kept with it.
        """
        if self._analysis is None:
            backend = self._backend()
            if isinstance(backend, ImageFile):
                self._analysis = PageAnalysis(text="", image_coverage=1.0, invisible_share=0.0, text_objects=0)
            else:
                self._analysis = backend.analyse(self.index)
        return self._analysis

    @property
    def text_layer_quality(self) -> float:
        """:func:`~qwen_ocr.documents.textlayer.text_layer_quality` of the page's text, 0 to 1."""
        return self.text_layer_verdict().quality

    @property
    def has_good_text_layer(self) -> bool:
        """Whether ``text_layer="auto"`` uses this page's text layer instead of OCR."""
        return self.text_layer_verdict().good

    def needs_ocr(self, text_layer: TextLayerMode = "auto") -> bool:
        """Whether this page goes to OCR under ``text_layer`` (``"auto"``, ``"never"`` or ``"only"``)."""
        mode = check_text_layer_mode(text_layer)
        if mode == "never":
            return True
        if mode == "only":
            return False
        return not self.has_good_text_layer

    # -- helpers --------------------------------------------------------------------------------------------------

    @property
    def is_broken(self) -> bool:
        """Whether the page could not even be measured (its size is unreadable); using it raises the error."""
        return self._broken is not None

    def _backend(self) -> PdfFile | ImageFile:
        backend = self.document._open_backend()
        if self._broken is not None:
            raise self._broken
        return backend

    def _check_shape(self) -> None:
        self._backend()
        problem = aspect_ratio_problem(self.width, self.height)
        if problem is not None:
            raise PageSizeError(
                f"page {self.number} of {self.document.name} is {self.width:g}x{self.height:g} {self.unit}, "
                f"{problem}; it cannot be sent as one image.",
                code="EmptyPage" if problem == "no area" else "BadAspectRatio",
                page_index=self.index,
            )


# --------------------------------------------------------------------------------------------------------------
# Reading the source (I/O) and recognising it (pure).


def _read_source(source: DocumentSource) -> tuple[str, Path | None, bytes | None, bytes]:
    """``(name, path, data, head)``: a path is checked and its head read; anything else is read whole."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(source))
        if text.strip()[:8].lower().startswith(("http://", "https://", "oss://")):
            raise DocumentReadError(
                f"{text} is a URL; documents are read from local files. Download it first.", code="UnsupportedURL"
            )
        problem = _path_problem(text)
        if problem is not None:
            raise DocumentReadError(f"{problem}.", code="InvalidPath")
        path = Path(text)
        return str(path), path, None, _read_head(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return "bytes", None, data, data[:_HEAD]
    read = getattr(source, "read", None)
    if callable(read):
        name = getattr(source, "name", None)
        label = str(name) if isinstance(name, (str, os.PathLike)) else "file object"
        try:
            data = read()
        except OSError as exc:
            raise DocumentReadError(f"cannot read {label}: {exc.strerror or exc}.", code="ReadError") from None
        if isinstance(data, str):
            raise DocumentReadError(
                f"{label} is open in text mode; open it in binary mode ('rb').", code="TextModeFile"
            )
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DocumentReadError(f"{label}.read() returned a {type(data).__name__}, not bytes.", code="ReadError")
        data = bytes(data)
        return label, None, data, data[:_HEAD]
    raise InvalidArgumentError(
        f"cannot open a document from a {type(source).__name__}; pass a path, bytes, or a binary file object."
    )


def _read_head(path: Path) -> bytes:
    return _read_regular(path, _HEAD, DocumentReadError, noun="a document")


def _read_all(path: Path, name: str) -> bytes:
    try:
        with _open_regular(path) as fh:
            return fh.read()
    except OSError as exc:
        raise DocumentReadError(f"cannot read {name}: {exc.strerror or exc}.", code="ReadError") from None


def _bytes(data: bytes | None) -> bytes:
    assert data is not None
    return data


def _detect(head: bytes, name: str) -> tuple[Literal["pdf", "image"], str]:
    """What the leading bytes are: a PDF, a supported image, or an error saying what they look like."""
    if not head:
        raise EmptyDocumentError(f"{name} is empty (0 bytes).")
    if b"%PDF-" in head[:1024]:
        return "pdf", "PDF"
    fmt = sniff_format(head[:32])
    if fmt is not None:
        return "image", fmt
    what = describe_bytes(head[:512])
    raise UnsupportedDocumentError(
        f"{name} is {what}, not a document we read. Supported: PDF, and images in "
        f"{', '.join(SUPPORTED_DOCUMENT_FORMATS[1:])}."
    )
