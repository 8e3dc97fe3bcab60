"""NumPy ``.npy`` image arrays, as LangChain's PDF parsers hand the pictures of a PDF page to an ``images_parser``.

The parsers (``PyPDFium2Parser``, ``PyMuPDFParser``, ``PDFPlumberParser`` in ``langchain-community``) save each
embedded picture with ``numpy.save`` and pass the bytes as an ``application/x-npy`` blob. :func:`npy_source` makes
such bytes a source :func:`qwen_ocr.read_documents` reads (the image as PNG, or the reason it is not an image).

Example::

    buffer = io.BytesIO()
    numpy.save(buffer, image)                      # an H x W x C uint8 array of the embedded picture
    item = npy_source("chart", buffer.getvalue())  # a SourceItem: the picture as a PNG
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .documents import CorruptDocumentError, UnsupportedDocumentError
from .sources import SourceItem

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["NPY_MIME_TYPE", "image_from_npy", "is_npy", "npy_source"]

NPY_MIME_TYPE = "application/x-npy"
"""The mimetype of the image arrays LangChain's PDF parsers hand to an ``images_parser``."""

_NPY_MAGIC = b"\x93NUMPY"


def is_npy(data: object, *, mimetype: str | None = None, path: object = None) -> bool:
    """Whether content is an ``.npy`` array: by its ``mimetype``, else its bytes' magic, else (no data) its path.

    >>> is_npy(b"\\x93NUMPY..."), is_npy(None, path="chart.NPY"), is_npy(b"%PDF-1.7")
    (True, True, False)
    """
    if mimetype == NPY_MIME_TYPE:
        return True
    if data is None:
        return path is not None and str(path).lower().endswith(".npy")
    return isinstance(data, bytes) and data[: len(_NPY_MAGIC)] == _NPY_MAGIC


def npy_source(label: str, data: bytes) -> SourceItem:
    """The array's image as a PNG to read, named ``label``; or, when it is not an image, an item with the error."""
    try:
        image = image_from_npy(data, label)
    except (UnsupportedDocumentError, CorruptDocumentError) as exc:
        return SourceItem(label=label, error=exc)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return SourceItem(label=label, data=buffer.getvalue())


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
