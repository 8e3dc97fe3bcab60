"""Every real-world file of the test corpus, with the outcome it must have (tests/data/corpus/SOURCES.md).

One row per file: its page count, which pages have a text layer good enough to skip OCR (``T``) or need OCR
(``.``), each page's /Rotate, and whether each page is sent in colour (``R``) or greyscale (``L``); or the exact
error it raises. A regression in any one file shows up as that file's row failing.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pytest
from PIL import Image

from qwen_ocr.documents import (
    CorruptDocumentError,
    PasswordRequiredError,
    WrongPasswordError,
    open_document,
)
from qwen_ocr.errors import QwenOCRError
from qwen_ocr.imaging import tokens_for_size
from tests.test_documents_helpers import CORPUS

SMALL_BUDGET = 250_000  # render the whole corpus quickly; sizes at the real budget are checked separately


@dataclass(frozen=True)
class Expect:
    """The outcome of opening one corpus file and preparing its pages."""

    pages: int = 1
    text: str = "."  # per page: T = good text layer (no OCR needed), . = needs OCR
    rotation: tuple[int, ...] = (0,)
    colour: str = "L"  # per page: L = sent greyscale, R = sent in colour (images: the mode prepare_image keeps)
    jpeg: str = ""  # per PDF page: J = sent as JPEG (a photographic colour scan), else PNG; "" = all PNG
    error: type[QwenOCRError] | None = None


CORPUS_TABLE: dict[str, Expect] = {
    # OCRmyPDF's test resources: scans, odd encodings, odd geometry.
    "ocrmypdf/2400dpi.pdf": Expect(),
    "ocrmypdf/aspect.pdf": Expect(colour="R"),
    "ocrmypdf/baiona.png": Expect(colour="R"),
    "ocrmypdf/baiona_alpha.png": Expect(colour="R"),
    "ocrmypdf/baiona_cmyk.jpg": Expect(colour="R"),
    "ocrmypdf/blank.pdf": Expect(),
    "ocrmypdf/c02-22.pdf": Expect(colour="R", jpeg="J"),  # a colour photograph of a yellowed book page
    "ocrmypdf/cardinal.pdf": Expect(pages=4, text="....", rotation=(0, 0, 0, 0), colour="LLLL"),
    "ocrmypdf/ccitt.pdf": Expect(),
    "ocrmypdf/crom.png": Expect(),
    "ocrmypdf/enormous.pdf": Expect(),
    "ocrmypdf/epson.pdf": Expect(),
    "ocrmypdf/francais.pdf": Expect(),
    "ocrmypdf/graph.pdf": Expect(colour="R"),
    "ocrmypdf/invalid.pdf": Expect(error=CorruptDocumentError),
    "ocrmypdf/jbig2.pdf": Expect(),
    "ocrmypdf/lichtenstein.pdf": Expect(),
    "ocrmypdf/linn.pdf": Expect(),
    "ocrmypdf/linn.png": Expect(),
    # Page 4 carries an earlier OCR's invisible text over the scan: it is OCR'd again.
    # Page 1 is c02-22 (a colour photograph); page 4, graph.pdf's chart stored as a JPEG, measures as
    # continuous-tone at this small budget (at the full budget it stays PNG).
    "ocrmypdf/multipage.pdf": Expect(pages=6, text="......", rotation=(0,) * 6, colour="RLRRLL", jpeg="J..J.."),
    "ocrmypdf/no_contents.pdf": Expect(),
    "ocrmypdf/palette.pdf": Expect(colour="R"),
    "ocrmypdf/rotated_skew.pdf": Expect(rotation=(90,)),
    "ocrmypdf/skew.pdf": Expect(),
    "ocrmypdf/trivial.pdf": Expect(),
    "ocrmypdf/typewriter.png": Expect(),
    "ocrmypdf/vector.pdf": Expect(colour="R"),  # text drawn as curves: no text layer at all
    # py-pdf/sample-files: born-digital documents.
    "py-pdf/001-trivial/minimal-document.pdf": Expect(text="T"),
    "py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf": Expect(
        pages=4, text="TTTT", rotation=(0, 0, 0, 0), colour="LLLL"
    ),
    "py-pdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf": Expect(error=PasswordRequiredError),
    "py-pdf/007-imagemagick-images/imagemagick-CCITTFaxDecode.pdf": Expect(),
    "py-pdf/007-imagemagick-images/smile-lzw.tiff": Expect(),
    "py-pdf/010-pdflatex-forms/pdflatex-forms.pdf": Expect(colour="R"),  # too little text; red field borders
    "py-pdf/011-google-doc-document/google-doc-document.pdf": Expect(text="T", colour="R"),
    # Only 24 characters, part of them broken glyph mappings: too little to trust.
    "py-pdf/015-arabic/habibi-rotated.pdf": Expect(pages=4, text="....", rotation=(90, 180, 270, 0), colour="LLLL"),
    "py-pdf/015-arabic/habibi.pdf": Expect(),
    "py-pdf/019-grayscale-image/grayscale-image.pdf": Expect(),
    "py-pdf/023-cmyk-image/cmyk-image.pdf": Expect(colour="R", jpeg="J"),
    "py-pdf/026-latex-multicolumn/multicolumn.pdf": Expect(pages=3, text="TTT", rotation=(0, 0, 0), colour="LLL"),
}


def test_the_table_covers_every_copied_file() -> None:
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md"}
    assert files == set(CORPUS_TABLE)


@pytest.mark.parametrize("relpath", list(CORPUS_TABLE))
def test_corpus_file(relpath: str) -> None:
    expect = CORPUS_TABLE[relpath]
    path = CORPUS / relpath
    if expect.error is not None:
        with pytest.raises(expect.error):
            open_document(path)
        return
    with open_document(path, max_pixels=SMALL_BUDGET) as doc:
        assert doc.page_count == expect.pages
        assert len(doc) == expect.pages
        text = ""
        rotation = []
        colour = ""
        jpeg = ""
        for page in doc:
            text += "T" if page.has_good_text_layer else "."
            rotation.append(page.rotation)
            prepared = page.prepare()
            assert prepared.url.startswith(f"data:{prepared.mime};base64,")
            assert prepared.sent_size is not None
            sent = Image.open(io.BytesIO(base64.b64decode(prepared.url.split(",", 1)[1])))
            assert sent.size == prepared.sent_size
            assert sent.width * sent.height <= SMALL_BUDGET or doc.kind == "image"
            colour += "R" if sent.mode in ("RGB", "RGBA", "P", "CMYK") and _is_colour(sent) else "L"
            if doc.kind == "pdf":
                patch = doc.spec.patch
                assert sent.width % patch == 0
                assert sent.height % patch == 0
                assert sent.mode in (("RGB",) if colour[-1] == "R" else ("L", "1"))  # "1": a black-and-white scan
                jpeg += "J" if prepared.mime == "image/jpeg" else "."
                if prepared.mime != "image/png":  # crisp text is never JPEG'd: only photographic colour scans
                    assert prepared.mime == "image/jpeg"
                    assert page.analysis().looks_scanned
                    assert sent.mode == "RGB"
    assert (text, tuple(rotation), colour) == (expect.text, expect.rotation, expect.colour)
    if doc.kind == "pdf":
        assert jpeg == (expect.jpeg or "." * expect.pages)


def _is_colour(im: Image.Image) -> bool:
    rgb = im.convert("RGB")
    r, g, b = rgb.split()
    return r.tobytes() != g.tobytes() or g.tobytes() != b.tobytes()


# -- the real pixel budget, without rendering -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "index", "size"),
    [
        ("py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf", 0, (2432, 3424)),  # A4 at 300 dpi, capped by budget
        ("ocrmypdf/linn.pdf", 0, (2528, 3264)),  # US Letter at 300 dpi, within budget
        ("ocrmypdf/enormous.pdf", 0, (2880, 2880)),  # a 30-inch page, straight at the budget
        ("ocrmypdf/2400dpi.pdf", 0, (3392, 2432)),  # a 2400-dpi scan on a tiny page keeps its pixels
        ("py-pdf/007-imagemagick-images/imagemagick-CCITTFaxDecode.pdf", 0, (64, 64)),  # 4x4 pt: the minimum
        ("py-pdf/015-arabic/habibi-rotated.pdf", 0, (3424, 2432)),  # /Rotate 90: landscape as displayed
        ("ocrmypdf/typewriter.png", 0, (3392, 2432)),  # an image over budget is downscaled
        ("ocrmypdf/crom.png", 0, (400, 50)),  # an image within budget is sent as it is
    ],
)
def test_sent_size_at_the_model_budget(relpath: str, index: int, size: tuple[int, int]) -> None:
    # At the model's documented budget (resolution="high"); the default level is 2,560 tokens (issue 16).
    with open_document(CORPUS / relpath, resolution="high") as doc:
        page = doc.page(index)
        assert page.sent_size == size
        assert page.image_tokens == tokens_for_size(*size, model=doc.spec, max_pixels=doc.max_pixels)
    with open_document(CORPUS / relpath) as doc:
        width, height = doc.page(index).sent_size
        assert width * height <= 2560 * 32 * 32
        assert doc.page(index).image_tokens == tokens_for_size(width, height, model=doc.spec)


def test_enormous_page_renders_at_the_budget_not_at_300_dpi() -> None:
    with open_document(CORPUS / "ocrmypdf/enormous.pdf", resolution="high") as doc:
        page = doc.page(0)
        assert page.size == (2160, 2160)  # 30 inches: 9000x9000 px at 300 dpi
        prepared = page.prepare()
    assert prepared.sent_size == (2880, 2880)
    assert prepared.sent_size[0] * prepared.sent_size[1] <= doc.spec.max_pixels == doc.max_pixels
    assert prepared.original_size == (2160, 2160)
    assert prepared.scale == pytest.approx((0.75, 0.75))


def test_rotated_page_renders_as_displayed() -> None:
    with open_document(CORPUS / "py-pdf/015-arabic/habibi-rotated.pdf", max_pixels=SMALL_BUDGET) as doc:
        shapes = [page.render().size for page in doc]
    assert [w > h for w, h in shapes] == [True, False, True, False]


# -- the encrypted file -----------------------------------------------------------------------------------------

ENCRYPTED = CORPUS / "py-pdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf"


def test_encrypted_without_password_says_a_password_is_required() -> None:
    for password in (None, ""):
        with pytest.raises(PasswordRequiredError) as info:
            open_document(ENCRYPTED, password=password)
        assert info.value.code == "PasswordRequired"
        assert "needs a password" in info.value.message


def test_encrypted_with_a_wrong_password_says_it_is_wrong() -> None:
    with pytest.raises(WrongPasswordError) as info:
        open_document(ENCRYPTED, password="letmein")
    assert info.value.code == "WrongPassword"
    assert "password given is wrong" in info.value.message


@pytest.mark.parametrize("password", ["openpassword", "permissionpassword"])
def test_encrypted_opens_with_its_user_or_owner_password(password: str) -> None:
    with open_document(ENCRYPTED, password=password) as doc:
        assert doc.page_count == 1
        page = doc.page(0)
        assert page.has_good_text_layer
        assert page.text_layer().startswith("Lorem ipsum")


def test_encrypted_from_bytes_too() -> None:
    data = ENCRYPTED.read_bytes()
    with pytest.raises(PasswordRequiredError):
        open_document(data)
    with open_document(data, password="openpassword") as doc:
        assert doc.page_count == 1


# -- text layers of the corpus ----------------------------------------------------------------------------------


def test_earlier_ocr_layer_over_a_scan_is_not_trusted() -> None:
    with open_document(CORPUS / "ocrmypdf/multipage.pdf", pages=4) as doc:
        (page,) = list(doc)
        analysis = page.analysis()
        verdict = page.text_layer_verdict()
    assert analysis.text_objects > 0
    assert analysis.invisible_share == 1.0
    assert analysis.image_coverage > 0.95
    assert not verdict.good
    assert "earlier OCR layer" in verdict.reason


def test_born_digital_text_layer_reads_as_the_page() -> None:
    with open_document(CORPUS / "py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf", pages=1) as doc:
        (page,) = list(doc)
        text = page.text_layer()
    assert text.startswith("Hello, here is some text without a meaning.")
    assert "\r" not in text
    assert "\x02" not in text
    assert page.text_layer_quality > 0.95


def test_vector_text_has_no_text_layer() -> None:
    with open_document(CORPUS / "ocrmypdf/vector.pdf") as doc:
        page = doc.page(0)
        assert page.text_layer() == ""
        assert page.text_layer_verdict().reason == "no text layer"
        assert page.needs_ocr("auto")
