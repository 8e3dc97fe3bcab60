"""What OCR'ing a document will cost, before sending anything: pages, tokens, US dollars.

Nothing is rendered: a page's image tokens follow from its size alone (the size it will be rendered at, through
the model's ``smart_resize``; :func:`qwen_ocr.imaging.tokens_for_size`). Under ``text_layer="auto"`` each PDF page's
text layer is read (parsed, not rasterised) to decide whether it needs OCR at all.

Output tokens cannot be known before the model answers. We assume :data:`OUTPUT_TOKENS_PER_PAGE` (1,000) per OCR'd
page: a dense page of English prose is about 4,000 characters, some 1,000 tokens; the recorded ``document_parsing``
reply in the protocol notes used 845; a sparse page uses far fewer. We add :data:`PROMPT_TOKENS_PER_PAGE` (70) of
text input per page for the task prompt and chat template (the recorded built-in tasks used 29 to 66). Pass your
own numbers to :func:`estimate_document` when you know better, e.g. ``output_tokens_per_page=2000`` for
``document_parsing`` of dense Chinese.

Prices are the model's list prices in the region (:func:`qwen_ocr.models.model_price`: USD per million tokens, per
model and region, each with its date and source page; Singapore unless ``region=`` says otherwise; pass a client's
``client.region``). ``batch=True`` prices the Batch API, at half the real-time price. A model with no recorded
price in the region (``qwen3.5-ocr``, or a model the region does not offer) has ``price_usd=None`` in an estimate,
and :func:`price_usd` raises for it.

Example::

    from qwen_ocr.cost import estimate_document

    estimate = estimate_document("report.pdf", model="qwen-vl-ocr", pages="1-20", region=client.region)
    estimate.pages_to_ocr, estimate.image_tokens, estimate.price_usd
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .budget import Resolution
from .config import DEFAULT_REGION, canonical_region, describe_region
from .documents.document import DocumentSource, open_document
from .documents.render import DEFAULT_DPI
from .documents.selection import PageSpec
from .documents.textlayer import TextLayerMode, check_text_layer_mode
from .errors import InvalidArgumentError
from .models import ModelSpec, model_spec

__all__ = [
    "OUTPUT_TOKENS_PER_PAGE",
    "PROMPT_TOKENS_PER_PAGE",
    "CostEstimate",
    "PageCost",
    "estimate_document",
    "price_usd",
]

OUTPUT_TOKENS_PER_PAGE = 1000
"""Assumed output tokens of one OCR'd page (see the module doc)."""
PROMPT_TOKENS_PER_PAGE = 70
"""Assumed text input tokens of one request: task prompt and chat template."""


class PageCost(BaseModel):
    """The estimate for one page.

    Attributes:
        index: 0-based page index in the file.
        label: the page's label.
        source: ``"ocr"`` (sent to the model) or ``"text_layer"`` (its own text is used; free).
        image_tokens: image tokens if OCR'd (0 for text-layer pages).
        input_tokens: image plus prompt tokens (0 for text-layer pages).
        output_tokens: assumed output tokens (0 for text-layer pages).
    """

    model_config = ConfigDict(frozen=True)

    index: int
    label: str
    source: Literal["ocr", "text_layer"]
    image_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class CostEstimate(BaseModel):
    """What OCR'ing a document will cost.

    Attributes:
        model: the model priced.
        page_count: pages in the file.
        pages: pages selected.
        pages_to_ocr: selected pages that go to the model.
        pages_from_text_layer: selected pages whose own text is used instead.
        image_tokens: image tokens of the pages to OCR.
        input_tokens: image tokens plus prompt tokens.
        output_tokens: estimated output tokens (``output_tokens_per_page`` per OCR'd page).
        price_usd: estimated price in US dollars; ``None`` when no price of the model is known in the region.
        output_tokens_per_page: the output assumption used.
        region: the region id priced.
        batch: whether the Batch API's price (half of real time) was used.
        price_source: where the price per million tokens comes from (page and date), when known.
        per_page: one :class:`PageCost` per selected page, in order.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    page_count: int
    pages: int
    pages_to_ocr: int
    pages_from_text_layer: int
    image_tokens: int
    input_tokens: int
    output_tokens: int
    price_usd: float | None
    output_tokens_per_page: int
    per_page: list[PageCost] = Field(default_factory=list)
    region: str = DEFAULT_REGION
    batch: bool = False
    price_source: str | None = None

    def __str__(self) -> str:
        price = f"~${self.price_usd:.4f}" if self.price_usd is not None else "no recorded price"
        return (
            f"{self.pages} pages ({self.pages_to_ocr} to OCR, {self.pages_from_text_layer} from the text layer): "
            f"{self.input_tokens:,} input tokens ({self.image_tokens:,} image), ~{self.output_tokens:,} output "
            f"tokens, {price} with {self.model} in {self.region}{' (Batch)' if self.batch else ''}"
        )


def price_usd(
    input_tokens: int,
    output_tokens: int,
    *,
    model: str | ModelSpec = "qwen-vl-ocr",
    region: str | None = None,
    batch: bool = False,
) -> float:
    """US dollars for this many tokens at the model's list price in a region (pure).

    Args:
        input_tokens: input tokens (image and text).
        output_tokens: output tokens.
        model: a model name or spec.
        region: the region (``"intl"``, ``"cn"``, ``"us"`` or a region id; pass ``client.region``); default
            Singapore.
        batch: price the Batch API (half the real-time price).

    Raises:
        InvalidArgumentError: no price of the model is known in the region (it is not offered there, or its price
            is not recorded: give your own with ``ModelSpec(..., input_price_per_mtok=...,
            output_price_per_mtok=...)``).

    >>> price_usd(1_000_000, 0, model="qwen-vl-ocr"), price_usd(0, 1_000_000, model="qwen-vl-ocr")
    (0.07, 0.16)
    >>> price_usd(1_000_000, 1_000_000, model="qwen-vl-ocr", region="cn", batch=True)
    0.0575
    """
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    price = spec.price(region)
    if price is None:
        raise InvalidArgumentError(_no_price(spec, region), code="UnknownPrice")
    return price.usd(input_tokens, output_tokens, batch=batch)


def _no_price(spec: ModelSpec, region: str | None) -> str:
    where = canonical_region(region) if region else DEFAULT_REGION
    if spec.offered_in(where) is False and spec.regions:
        offered = ", ".join(describe_region(r) for r in sorted(spec.regions))
        return f"{spec.name} is not offered in {describe_region(where)} (only in {offered}), so it has no price there."
    return (
        f"no list price of {spec.name} in {describe_region(where)} is recorded in qwen_ocr.models; pass "
        "model=ModelSpec(..., input_price_per_mtok=..., output_price_per_mtok=...) (or register_model it) with "
        "the price of the Model Studio console."
    )


def estimate_document(
    source: DocumentSource,
    *,
    model: str | ModelSpec = "qwen-vl-ocr",
    pages: PageSpec = None,
    text_layer: TextLayerMode = "auto",
    password: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    dpi: float = DEFAULT_DPI,
    resolution: Resolution | None = None,
    output_tokens_per_page: int = OUTPUT_TOKENS_PER_PAGE,
    prompt_tokens_per_page: int = PROMPT_TOKENS_PER_PAGE,
    region: str | None = None,
    batch: bool = False,
) -> CostEstimate:
    """Estimate pages, tokens and price of OCR'ing a document, without rendering it.

    Args:
        source: what :func:`~qwen_ocr.documents.open_document` accepts (path, bytes, binary file object).
        model: the model to price; its patch and budget decide the image tokens.
        pages: the pages to count (``"1-3,7"``, ...); all by default.
        text_layer: ``"auto"`` counts pages with a good text layer as free; ``"never"`` OCRs every page;
            ``"only"`` OCRs none.
        password: for an encrypted PDF.
        min_pixels: as for :func:`~qwen_ocr.documents.open_document`.
        max_pixels: as for :func:`~qwen_ocr.documents.open_document`.
        dpi: as for :func:`~qwen_ocr.documents.open_document`.
        resolution: the budget level, as for :func:`~qwen_ocr.documents.open_document` (default ``"standard"``):
            the same budget ``read_document`` renders the pages at and states on each request.
        output_tokens_per_page: assumed output tokens of one OCR'd page (capped at the model's ``max_tokens``).
        prompt_tokens_per_page: assumed text input tokens of one request.
        region: the region to price (pass ``client.region``); default Singapore.
        batch: price the Batch API (half the real-time price).

    Raises:
        DocumentError: the document cannot be opened (see :mod:`qwen_ocr.documents.errors`).
        PageRenderError: a page is corrupt.
        InvalidArgumentError: an argument is out of range.

    Example::

        >>> est = estimate_document("tests/data/corpus/py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf")
        >>> est.pages, est.pages_to_ocr, est.price_usd
        (4, 0, 0.0)
    """
    mode = check_text_layer_mode(text_layer)
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    where = canonical_region(region) if region else DEFAULT_REGION
    price = spec.price(where)
    for name, value in (
        ("output_tokens_per_page", output_tokens_per_page),
        ("prompt_tokens_per_page", prompt_tokens_per_page),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError(f"{name}={value!r} must be a non-negative number of tokens.")
    out_per_page = min(output_tokens_per_page, spec.max_tokens)
    per_page: list[PageCost] = []
    with open_document(
        source,
        password=password,
        pages=pages,
        model=spec,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        dpi=dpi,
        resolution=resolution,
    ) as doc:
        page_count = doc.page_count
        for page in doc:
            if not page.needs_ocr(mode):
                per_page.append(PageCost(index=page.index, label=page.label, source="text_layer"))
                continue
            image_tokens = page.image_tokens
            per_page.append(
                PageCost(
                    index=page.index,
                    label=page.label,
                    source="ocr",
                    image_tokens=image_tokens,
                    input_tokens=image_tokens + prompt_tokens_per_page,
                    output_tokens=out_per_page,
                )
            )
    ocr = [p for p in per_page if p.source == "ocr"]
    input_tokens = sum(p.input_tokens for p in ocr)
    output_tokens = sum(p.output_tokens for p in ocr)
    return CostEstimate(
        model=spec.name,
        page_count=page_count,
        pages=len(per_page),
        pages_to_ocr=len(ocr),
        pages_from_text_layer=len(per_page) - len(ocr),
        image_tokens=sum(p.image_tokens for p in ocr),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        price_usd=price.usd(input_tokens, output_tokens, batch=batch) if price is not None else None,
        output_tokens_per_page=out_per_page,
        per_page=per_page,
        region=where,
        batch=batch,
        price_source=(f"{price.source}, {price.as_of}" if price.as_of else price.source) if price is not None else None,
    )
