"""``QwenOCRParser``: image and PDF blobs, and the ``application/x-npy`` image arrays of LangChain's PDF parsers."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest
from langchain_core.document_loaders import BaseBlobParser
from langchain_core.documents.base import Blob
from PIL import Image, ImageDraw, ImageFont

from langchain_qwen_ocr.document_loaders import NPY_MIME_TYPE, QwenOCRParser
from langchain_qwen_ocr.document_loaders.parser import image_from_npy
from qwen_ocr import QwenOCR
from qwen_ocr.documents import PasswordRequiredError, UnsupportedDocumentError
from qwen_ocr.testing import Emulator
from tests.conftest import make_image
from tests.langchain.test_loader_support import CARDINAL, ENCRYPTED, SKEW, SMALL, sync_client


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_blob(array: np.ndarray[Any, Any]) -> Blob:
    """Exactly what LangChain's PDF parsers hand to their ``images_parser``."""
    return Blob.from_data(_npy(array), mime_type="application/x-npy")


# -- image and PDF blobs ----------------------------------------------------------------------------------------


def test_it_is_a_blob_parser() -> None:
    assert isinstance(QwenOCRParser(), BaseBlobParser)


def test_a_pdf_blob_from_a_path_gives_its_pages(client: QwenOCR) -> None:
    blob = Blob.from_path(CARDINAL)
    assert blob.data is None  # read by PDFium from disk, not loaded into memory first
    docs = QwenOCRParser(client=client, ocr_options=SMALL).parse(blob)
    assert [(d.metadata["source"], d.metadata["page"]) for d in docs] == [(str(CARDINAL), p) for p in range(4)]
    for doc in docs:
        assert json.loads(json.dumps(doc.metadata)) == doc.metadata


def test_an_image_blob_from_bytes_keeps_the_blobs_metadata(client: QwenOCR) -> None:
    blob = Blob.from_data(make_image(), path="uploads/receipt.png", metadata={"tenant": "acme", "page": "ignored"})
    (doc,) = QwenOCRParser(client=client, task="table_parsing").lazy_parse(blob)
    assert doc.metadata["source"] == "uploads/receipt.png"
    assert doc.metadata["tenant"] == "acme"
    assert doc.metadata["page"] == 0  # the parser's keys win
    # the table's title row first, then the Markdown table
    assert doc.metadata["task"] == "table_parsing" and doc.page_content.startswith("Case name")


def test_a_pdf_blob_from_bytes_without_a_source(client: QwenOCR) -> None:
    docs = QwenOCRParser(client=client, mode="single", ocr_options=SMALL).parse(Blob.from_data(SKEW.read_bytes()))
    assert [d.metadata["source"] for d in docs] == ["<blob>"]


def test_blob_errors_follow_on_error(client: QwenOCR) -> None:
    with pytest.raises(PasswordRequiredError):
        QwenOCRParser(client=client).parse(Blob.from_path(ENCRYPTED))
    assert QwenOCRParser(client=client, on_error="skip").parse(Blob.from_path(ENCRYPTED)) == []
    (marked,) = QwenOCRParser(client=client, on_error="mark").parse(Blob.from_path(ENCRYPTED))
    assert marked.page_content == "" and marked.metadata["error_type"] == "PasswordRequiredError"
    (read,) = QwenOCRParser(client=client, password="openpassword").parse(Blob.from_path(ENCRYPTED))
    assert read.page_content.startswith("Lorem ipsum")


def test_the_parser_repr_hides_the_key() -> None:
    parser = QwenOCRParser(api_key="sk-parser-secret", password="pw-secret")
    assert "sk-parser-secret" not in repr(parser) and "pw-secret" not in repr(parser)


# -- numpy image arrays (images_parser of the PDF parsers) ------------------------------------------------------


def _text_array(text: str, *, channels: int = 3) -> np.ndarray[Any, Any]:
    im = Image.new("RGB", (700, 160), "white")
    ImageDraw.Draw(im).text((30, 50), text, fill="black", font=ImageFont.load_default(size=40))
    array = np.asarray(im, dtype=np.uint8)
    return array if channels == 3 else array[:, :, :1]


def test_an_npy_image_array_is_read_as_its_image() -> None:
    """With a real reader behind the emulator: the array's pixels are what was read."""
    with Emulator(reader="local") as emu, sync_client(emu) as client:
        parser = QwenOCRParser(client=client)
        text = next(parser.lazy_parse(_npy_blob(_text_array("Embedded chart 42")))).page_content
        grey = next(parser.lazy_parse(_npy_blob(_text_array("Grey figure 7", channels=1)))).page_content
    assert text == "Embedded chart 42"
    assert grey == "Grey figure 7"


def test_an_npy_blob_gives_exactly_one_document_whatever_the_mode(client: QwenOCR) -> None:
    blob = _npy_blob(np.full((120, 400, 3), 255, dtype=np.uint8))
    for mode in ("page", "single", "elements"):
        docs = QwenOCRParser(client=client, mode=mode, task="advanced_recognition").parse(blob)
        assert len(docs) == 1
        assert docs[0].metadata["source"] == "<image array>"
        assert docs[0].page_content.startswith("INTERNATIONAL\nMOTHER LANGUAGE")  # every line, not the first


def test_langchains_own_npy_example_is_accepted(client: QwenOCR) -> None:
    """langchain-community's image parser test sends ``np.empty(shape=(412, 1652, 1))``: float64, one channel."""
    (doc,) = QwenOCRParser(client=client).parse(_npy_blob(np.empty(shape=(412, 1652, 1))))
    assert (doc.metadata["page_width"], doc.metadata["page_height"]) == (1652, 412)


def test_npy_is_recognised_by_its_magic_without_a_mimetype(client: QwenOCR) -> None:
    blob = Blob.from_data(_npy(np.zeros((50, 80), dtype=np.uint8)))
    assert blob.mimetype is None
    (doc,) = QwenOCRParser(client=client).parse(blob)
    assert doc.metadata["page_width"] == 80


def test_a_bad_array_raises_or_still_gives_one_marked_document(client: QwenOCR) -> None:
    blob = _npy_blob(np.zeros(10, dtype=np.uint8))
    with pytest.raises(UnsupportedDocumentError, match=r"shape \(10,\)"):
        next(QwenOCRParser(client=client).lazy_parse(blob))
    for on_error in ("skip", "mark"):  # skip too: the PDF parsers call next() on what we yield
        doc = next(QwenOCRParser(client=client, on_error=on_error).lazy_parse(blob))
        assert doc.page_content == "" and doc.metadata["error_type"] == "UnsupportedDocumentError"


def test_as_the_images_parser_of_a_pdf_parser(client: QwenOCR) -> None:
    """What ``PyPDFium2Parser(images_parser=...)`` does for each picture of a page (langchain-community):
    the bitmap as a NumPy array, ``numpy.save``, an ``application/x-npy`` blob, ``next(lazy_parse(blob))``."""
    parser = QwenOCRParser(client=client)
    pdf = pdfium.PdfDocument(str(SKEW))
    try:
        page = pdf[0]
        pictures = list(page.get_objects(filter=(pdfium.raw.FPDF_PAGEOBJ_IMAGE,)))
        assert pictures
        texts = []
        for picture in pictures:
            array = picture.get_bitmap().to_numpy()
            blob = Blob.from_data(_npy(array), mime_type=NPY_MIME_TYPE)
            texts.append(next(parser.lazy_parse(blob)).page_content)
    finally:
        pdf.close()
    assert all(texts)


@pytest.mark.parametrize(
    ("array", "mode", "pixel"),
    [
        (np.full((4, 5), 7, dtype=np.uint8), "L", 7),
        (np.full((4, 5, 3), 9, dtype=np.uint8), "RGB", (9, 9, 9)),
        (np.full((4, 5, 4), 9, dtype=np.uint8), "RGBA", (9, 9, 9, 9)),
        (np.full((4, 5, 2), 9, dtype=np.uint8), "LA", (9, 9)),
        (np.full((4, 5, 1), 0.5), "L", 128),  # floats within [0, 1] are scaled
        (np.full((4, 5), 200.0), "L", 200),  # other floats are clipped to 0-255
        (np.full((4, 5), 65535, dtype=np.uint16), "L", 255),  # 16-bit is scaled down
        (np.full((4, 5), 100, dtype=np.int32), "L", 100),
        (np.ones((4, 5), dtype=bool), "L", 255),
    ],
)
def test_image_from_npy_converts_the_usual_arrays(array: np.ndarray[Any, Any], mode: str, pixel: Any) -> None:
    image = image_from_npy(_npy(array))
    assert image.mode == mode and image.size == (5, 4)
    assert image.getpixel((0, 0)) == pixel


def test_image_from_npy_refuses_what_is_not_an_image() -> None:
    with pytest.raises(UnsupportedDocumentError, match="not a NumPy"):
        image_from_npy(b"\x93NUMPY garbage")
    with pytest.raises(UnsupportedDocumentError, match="not a NumPy"):
        image_from_npy(_npy(np.array([{"pickled": True}], dtype=object)))  # no unpickling, ever
    with pytest.raises(UnsupportedDocumentError, match="shape"):
        image_from_npy(_npy(np.zeros((2, 3, 4, 5), dtype=np.uint8)))
    with pytest.raises(UnsupportedDocumentError, match="complex"):
        image_from_npy(_npy(np.zeros((3, 3), dtype=complex)))
