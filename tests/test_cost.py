"""qwen_ocr.cost: pages, tokens and price of OCR'ing a document, estimated without rendering it."""

from __future__ import annotations

import io
import json

import pytest

from qwen_ocr.cost import (
    OUTPUT_TOKENS_PER_PAGE,
    PROMPT_TOKENS_PER_PAGE,
    CostEstimate,
    estimate_document,
    price_usd,
)
from qwen_ocr.documents import PageSelectionError, PasswordRequiredError, UnsupportedDocumentError
from qwen_ocr.documents._image import ImageFile
from qwen_ocr.documents._pdf import PdfFile
from qwen_ocr.errors import InvalidArgumentError
from qwen_ocr.imaging import tokens_for_size
from qwen_ocr.models import ModelSpec, model_spec
from tests.test_documents_helpers import CORPUS, JUNK, PROSE, text_pdf, tiff_pages

FOUR_PAGES = CORPUS / "py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
SCANS = CORPUS / "ocrmypdf/multipage.pdf"
A4_TOKENS = tokens_for_size(2432, 3424)  # an A4 page at 300 dpi, capped by the 32-px model's budget


@pytest.fixture(autouse=True)
def _never_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Estimates must not rasterise anything: rendering fails the test."""

    def no_pixels(*args: object, **kwargs: object) -> None:
        raise AssertionError("the estimate rendered pixels")

    monkeypatch.setattr(PdfFile, "render", no_pixels)
    monkeypatch.setattr(ImageFile, "frame", no_pixels)
    monkeypatch.setattr(ImageFile, "render", no_pixels)


def test_born_digital_pages_are_free_under_auto() -> None:
    est = estimate_document(FOUR_PAGES)
    assert (est.page_count, est.pages, est.pages_to_ocr, est.pages_from_text_layer) == (4, 4, 0, 4)
    assert (est.image_tokens, est.input_tokens, est.output_tokens, est.price_usd) == (0, 0, 0, 0.0)
    assert [p.source for p in est.per_page] == ["text_layer"] * 4


def test_never_ocrs_every_page() -> None:
    est = estimate_document(FOUR_PAGES, text_layer="never")
    assert est.pages_to_ocr == 4
    assert est.image_tokens == 4 * A4_TOKENS
    assert est.input_tokens == 4 * (A4_TOKENS + PROMPT_TOKENS_PER_PAGE)
    assert est.output_tokens == 4 * OUTPUT_TOKENS_PER_PAGE
    price = model_spec("qwen-vl-ocr").price("intl")  # the list price in Singapore, the default region
    assert price is not None
    expected = (est.input_tokens * price.input_per_mtok + est.output_tokens * price.output_per_mtok) / 1_000_000
    assert est.price_usd == pytest.approx(expected)
    assert est.price_usd > 0


def test_only_ocrs_nothing() -> None:
    est = estimate_document(SCANS, text_layer="only")
    assert (est.pages, est.pages_to_ocr, est.price_usd) == (6, 0, 0.0)


def test_scans_all_go_to_ocr_under_auto() -> None:
    est = estimate_document(SCANS)
    assert est.pages_to_ocr == 6  # including the page whose invisible OCR layer is not trusted
    assert est.image_tokens == sum(p.image_tokens for p in est.per_page)
    assert all(p.image_tokens > 0 for p in est.per_page)


def test_mixed_document() -> None:
    data = text_pdf([PROSE, JUNK, PROSE, "Fig. 2"])
    est = estimate_document(data)
    assert [p.source for p in est.per_page] == ["text_layer", "ocr", "text_layer", "ocr"]
    assert est.image_tokens == 2 * tokens_for_size(2528, 3264)  # US Letter at 300 dpi


def test_page_selection() -> None:
    est = estimate_document(FOUR_PAGES, pages="2-3", text_layer="never")
    assert (est.page_count, est.pages) == (4, 2)
    assert [p.label for p in est.per_page] == ["2", "3"]
    with pytest.raises(PageSelectionError, match="4 pages"):
        estimate_document(FOUR_PAGES, pages="5")


def test_output_assumption_is_a_parameter_capped_by_the_model() -> None:
    est = estimate_document(FOUR_PAGES, text_layer="never", output_tokens_per_page=300, prompt_tokens_per_page=0)
    assert est.output_tokens == 1200
    assert est.input_tokens == est.image_tokens
    capped = estimate_document(FOUR_PAGES, text_layer="never", output_tokens_per_page=100_000)
    assert capped.output_tokens_per_page == model_spec("qwen-vl-ocr").max_tokens
    with pytest.raises(InvalidArgumentError, match="output_tokens_per_page"):
        estimate_document(FOUR_PAGES, output_tokens_per_page=-1)


def test_model_decides_tokens_and_price() -> None:
    # At 300 dpi both budgets cap an A4 page near 8,192 tokens (the budgets are made so); at 100 dpi the 28-px
    # patches of the older snapshots cost more tokens than the 32-px ones.
    old = estimate_document(FOUR_PAGES, text_layer="never", model="qwen-vl-ocr-2025-04-13", dpi=100)
    new = estimate_document(FOUR_PAGES, text_layer="never", model="qwen-vl-ocr", dpi=100)
    assert old.model == "qwen-vl-ocr-2025-04-13"
    assert old.per_page[0].image_tokens == tokens_for_size(840, 1176, model="qwen-vl-ocr-2025-04-13")
    assert new.per_page[0].image_tokens == tokens_for_size(832, 1184)
    assert old.image_tokens > new.image_tokens
    pricey = ModelSpec("self-hosted", input_price_per_mtok=10.0, output_price_per_mtok=30.0)
    est = estimate_document(FOUR_PAGES, text_layer="never", model=pricey)
    assert est.price_usd == pytest.approx((est.input_tokens * 10 + est.output_tokens * 30) / 1e6)


def test_smaller_budget_costs_fewer_tokens() -> None:
    full = estimate_document(SCANS)
    small = estimate_document(SCANS, max_pixels=1_000_000)
    assert small.image_tokens < full.image_tokens
    assert all(p.image_tokens <= 1_000_000 // 1024 + 2 for p in small.per_page)


def test_images_and_tiffs() -> None:
    est = estimate_document(CORPUS / "ocrmypdf/linn.png")
    assert est.pages_to_ocr == 1
    assert est.image_tokens == tokens_for_size(2550, 3300)
    tiff = estimate_document(io.BytesIO(tiff_pages(3, size=(1200, 1600))))
    assert tiff.pages_to_ocr == 3
    assert tiff.image_tokens == 3 * tokens_for_size(1200, 1600)


def test_errors_pass_through_typed() -> None:
    encrypted = CORPUS / "py-pdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf"
    with pytest.raises(PasswordRequiredError):
        estimate_document(encrypted)
    assert estimate_document(encrypted, password="openpassword").pages == 1
    with pytest.raises(UnsupportedDocumentError):
        estimate_document(b"<html></html>")
    with pytest.raises(InvalidArgumentError, match="text_layer"):
        estimate_document(FOUR_PAGES, text_layer="sometimes")  # type: ignore[arg-type]


def test_estimate_is_serialisable_and_readable() -> None:
    est = estimate_document(FOUR_PAGES, text_layer="never")
    again = CostEstimate.model_validate(json.loads(est.model_dump_json()))
    assert again == est
    text = str(est)
    assert "4 pages (4 to OCR, 0 from the text layer)" in text
    assert "qwen-vl-ocr" in text


def test_price_usd() -> None:
    assert price_usd(1_000_000, 0) == pytest.approx(0.07)  # was a flat 0.72; today's Singapore list price
    assert price_usd(0, 0) == 0.0
    assert price_usd(500_000, 500_000, model=ModelSpec("x", input_price_per_mtok=1, output_price_per_mtok=3)) == 2.0
