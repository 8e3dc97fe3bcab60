"""``QwenOCRParser``: the loader's reading for LangChain ``Blob`` objects (images, PDFs, and image arrays).

It plugs into any blob-based loader (``GenericLoader``, cloud blob loaders) and, for the ``application/x-npy``
image arrays, into the ``images_parser=`` of LangChain's PDF parsers (``PyPDFium2Parser``, ``PyMuPDFParser``,
``PDFPlumberParser`` in ``langchain-community``), which OCR the pictures embedded in PDF pages like this::

    buffer = io.BytesIO()
    numpy.save(buffer, image)                          # an H x W x C uint8 array of the embedded picture
    blob = Blob.from_data(buffer.getvalue(), mime_type="application/x-npy")
    text = next(images_parser.lazy_parse(blob)).page_content
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseBlobParser
from langchain_core.documents import Document
from langchain_core.documents.base import Blob

from qwen_ocr.documents import CorruptDocumentError, UnsupportedDocumentError
from qwen_ocr.engine import read_documents
from qwen_ocr.sources import SourceItem

from .documents import DEFAULT_PAGE_SEPARATOR, ContentFormat
from .loader import Assembler, Mode, configure, describe

if TYPE_CHECKING:
    from PIL import Image

    from qwen_ocr import AsyncQwenOCR, QwenOCR

__all__ = ["NPY_MIME_TYPE", "QwenOCRParser", "image_from_npy"]

NPY_MIME_TYPE = "application/x-npy"
"""The mimetype of the image arrays LangChain's PDF parsers hand to an ``images_parser``."""

_NPY_MAGIC = b"\x93NUMPY"


class QwenOCRParser(BaseBlobParser):
    """Parse image and PDF ``Blob`` objects with Qwen-OCR, exactly as :class:`QwenOCRLoader` reads files.

    The blob is recognised by its bytes (PDF, PNG, JPEG, TIFF, ...), or as a NumPy image array by its
    ``application/x-npy`` mimetype or ``.npy`` magic. An array gives exactly one Document, whatever the mode: the
    PDF parsers read only the first Document of their ``images_parser`` (a failure under ``on_error="skip"``
    gives an empty, marked one rather than none, for the same reason). A path-backed blob is read from disk
    lazily, so a large PDF does not have to fit in memory.

    Metadata: the blob's own metadata, then the loader's keys (``source`` is ``blob.source``). The arguments are
    the loader's (see :class:`~langchain_qwen_ocr.document_loaders.QwenOCRLoader`), without the ones about
    finding files.

    Example::

        from langchain_core.documents.base import Blob
        from langchain_qwen_ocr.document_loaders import QwenOCRParser

        parser = QwenOCRParser(task="table_parsing")
        docs = parser.parse(Blob.from_path("scan.pdf"))

        # OCR for the pictures inside PDFs (langchain-community):
        # PyPDFium2Loader("report.pdf", extract_images=True, images_parser=QwenOCRParser())
    """

    def __init__(
        self,
        *,
        mode: Mode = "page",
        content_format: ContentFormat = "markdown",
        page_separator: str = DEFAULT_PAGE_SEPARATOR,
        ocr_options: Mapping[str, Any] | None = None,
        client: QwenOCR | None = None,
        aclient: AsyncQwenOCR | None = None,
        **options: Any,
    ) -> None:
        self.mode, self.content_format, self.page_separator = mode, content_format, page_separator
        self.options, self._holder = configure(
            mode=mode, content_format=content_format, ocr_options=ocr_options, client=client, aclient=aclient, **options
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self.mode, self.options, self._holder)})"

    def lazy_parse(self, blob: Blob) -> Iterator[Document]:
        """The Documents of one blob, pages in order while later pages are read."""
        label = _label(blob)
        options, mode = self.options, self.mode
        if _is_npy(blob):
            try:
                item = SourceItem(label=label, data=_png(image_from_npy(blob.as_bytes(), label)))
            except (UnsupportedDocumentError, CorruptDocumentError) as exc:
                item = SourceItem(label=label, error=exc)
            # Exactly one Document: the PDF parsers take next(lazy_parse(blob)).
            options = replace(options, on_error="mark" if options.on_error == "skip" else options.on_error)
            mode = "page"
        elif blob.data is None and blob.path is not None:
            item = SourceItem(label=label, path=Path(os.fspath(blob.path)))
        else:
            item = SourceItem(label=label, data=blob.as_bytes())
        assembler = Assembler(mode, self.content_format, self.page_separator, options.pages)
        pages = read_documents(self._holder.get_client(), [item], **options.arguments())
        try:
            for page in pages:
                for doc in assembler.add(page):
                    doc.metadata = {**blob.metadata, **doc.metadata}
                    yield doc
        finally:
            pages.close()  # stop the requests still in flight
        for doc in assembler.finish():
            doc.metadata = {**blob.metadata, **doc.metadata}
            yield doc


def _label(blob: Blob) -> str:
    source = blob.source
    if source:
        return str(source)
    return "<image array>" if _is_npy(blob) else "<blob>"


def _is_npy(blob: Blob) -> bool:
    if blob.mimetype == NPY_MIME_TYPE:
        return True
    if isinstance(blob.data, bytes):
        return blob.data[: len(_NPY_MAGIC)] == _NPY_MAGIC
    if blob.data is None and blob.path is not None:
        return str(blob.path).lower().endswith(".npy")
    return False


def image_from_npy(data: bytes, label: str = "the array") -> Image.Image:
    """The image of ``numpy.save`` bytes: ``H x W`` (grey), ``H x W x 1|2|3|4`` (grey, grey+alpha, RGB, RGBA).

    ``uint8`` is taken as is; floats in [0, 1] are scaled to 0-255, other floats and integers are clipped to it
    (16-bit images are scaled down). Pickled object arrays are refused.

    Raises:
        UnsupportedDocumentError: the bytes are not an ``.npy`` array, or the array is not an image.

    >>> import io, numpy
    >>> buf = io.BytesIO(); numpy.save(buf, numpy.zeros((20, 30, 3), dtype=numpy.uint8))
    >>> image_from_npy(buf.getvalue()).size
    (30, 20)
    """
    try:
        import numpy as np
    except ImportError:
        raise ImportError("application/x-npy blobs need numpy: pip install numpy") from None
    from PIL import Image

    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UnsupportedDocumentError(f"{label} is not a NumPy .npy image array ({exc}).") from None
    if not isinstance(array, np.ndarray):
        raise UnsupportedDocumentError(f"{label} holds several arrays (.npz), not one image array.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    channels = 1 if array.ndim == 2 else (array.shape[2] if array.ndim == 3 else 0)
    if channels not in (1, 2, 3, 4) or 0 in array.shape:
        raise UnsupportedDocumentError(
            f"{label} is an array of shape {array.shape}, not an image (H x W, or H x W x 1, 2, 3 or 4 channels)."
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if float(values.max()) <= 1.0 and float(values.min()) >= 0.0:
            values = values * 255.0
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.dtype != np.uint8:
            big = int(array.max()) > 255
            array = np.clip(array // 257 if big else array, 0, 255).astype(np.uint8)
    else:
        raise UnsupportedDocumentError(f"{label} is an array of {array.dtype}, not image pixels.")
    return Image.fromarray(np.ascontiguousarray(array))  # L, LA, RGB or RGBA from the shape


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
