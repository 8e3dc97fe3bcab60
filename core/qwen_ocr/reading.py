"""Reading whole documents: every selected page, in order, a few in flight at once, nothing lost on a bad page.

This is what the CLI, the LangChain loader and the LlamaIndex reader stand on. A page whose text layer is good
(``text_layer="auto"``) costs no request; a page that fails carries its typed error instead of ending the job.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.reading import read_document

    with QwenOCR() as client:
        for page in read_document(client, "scan.pdf", pages="1-5", task="text_recognition"):
            print(page.page_label, page.text_source, page.text if page.ok else page.error)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .errors import QwenOCRError
from .results import OCRResult

if TYPE_CHECKING:
    from ._client import QwenOCR
    from .documents import DocumentSource, PageSpec, TextLayerMode

__all__ = ["PageResult", "read_document"]


@dataclass
class PageResult:
    """The outcome of one page.

    Attributes:
        source: the document's name (its path, or ``"<bytes>"``).
        index: 0-based page index in the file.
        label: the page label (``"iv"``) or number (``"3"``) as the document shows it.
        total_pages: pages in the whole file.
        result: the reading; ``None`` if the page failed.
        error: the page's typed error; ``None`` if it succeeded.
        text_source: ``"ocr"`` or ``"text_layer"`` (the PDF's own text, no request made).
    """

    source: str
    index: int
    label: str
    total_pages: int
    result: OCRResult | None = None
    error: QwenOCRError | None = None
    text_source: Literal["ocr", "text_layer"] = "ocr"

    @property
    def ok(self) -> bool:
        """Whether the page was read."""
        return self.error is None and self.result is not None

    @property
    def text(self) -> str:
        """The page's text, or ``""`` when it failed."""
        return self.result.text if self.result is not None else ""

    @property
    def page_label(self) -> str:
        """Alias of :attr:`label`."""
        return self.label


def read_document(
    client: QwenOCR,
    source: DocumentSource,
    *,
    pages: PageSpec = None,
    password: str | None = None,
    text_layer: TextLayerMode = "never",
    max_concurrency: int | None = None,
    **options: Any,
) -> Iterator[PageResult]:
    """Read the selected pages of a PDF, multi-page TIFF or image, yielding them in page order.

    Up to ``max_concurrency`` pages are in flight while earlier ones are yielded; pages are rendered one at a time
    at the model's pixel budget, so memory does not grow with the page count.

    Args:
        client: the client that sends the pages.
        source: a path, bytes or a binary file object.
        pages: ``"1-3,7"`` and the like (1-based); all pages by default.
        password: for an encrypted PDF.
        text_layer: ``"auto"`` uses a page's own text where it is good, ``"only"`` never sends a page,
            ``"never"`` (default here) OCRs every page.
        max_concurrency: pages in flight (default: the client's).
        **options: ``ocr()`` options (task, schema, model, ...).

    Raises:
        QwenOCRError: when the document itself cannot be opened (encrypted, corrupt, not a document). Errors of a
            single page are reported in its :class:`PageResult` instead.
    """
    from .documents import open_document

    model = options.get("model") or client.model
    window = max(1, max_concurrency or client.max_concurrency)
    with (
        open_document(
            source,
            password=password,
            pages=pages,
            model=model,
            min_pixels=options.get("min_pixels"),
            max_pixels=options.get("max_pixels"),
        ) as doc,
        ThreadPoolExecutor(max_workers=window, thread_name_prefix="qwen-ocr-page") as pool,
    ):
        name, total = doc.name, doc.page_count
        in_flight: deque[tuple[PageResult, Future[OCRResult] | None]] = deque()
        for page in doc:
            outcome = PageResult(source=name, index=page.index, label=page.label, total_pages=total)
            future: Future[OCRResult] | None = None
            try:
                if not page.needs_ocr(text_layer):
                    outcome.text_source = "text_layer"
                    outcome.result = OCRResult(
                        text=page.text_layer(), raw_text=page.text_layer(), model="", provider="text_layer"
                    )
                else:
                    prepared = page.prepare()
                    future = pool.submit(client.ocr, prepared, **options)
            except QwenOCRError as exc:
                outcome.error = exc
            in_flight.append((outcome, future))
            while len(in_flight) > window or (in_flight and _done(in_flight[0][1])):
                yield _finish(*in_flight.popleft())
        while in_flight:
            yield _finish(*in_flight.popleft())


def _done(future: Future[OCRResult] | None) -> bool:
    return future is None or future.done()


def _finish(outcome: PageResult, future: Future[OCRResult] | None) -> PageResult:
    if future is not None:
        try:
            outcome.result = future.result()
        except QwenOCRError as exc:
            outcome.error = exc
    return outcome
