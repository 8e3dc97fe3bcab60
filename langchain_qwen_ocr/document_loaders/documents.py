"""Page results into LangChain ``Document`` objects: one per page, one per file, or one per element.

Every metadata value is JSON (``json.dumps`` accepts it), so vector stores take the documents as they are. The text
and the keys are core's page policy, the same as the LlamaIndex reader's: the text is
:func:`qwen_ocr.rendering.render` in the chosen :data:`ContentFormat`, the keys those of
:meth:`qwen_ocr.PageResult.metadata` (declared in :mod:`qwen_ocr.page_metadata`).

Page mode (:func:`page_document`): the page's text (Markdown by default: tables as Markdown tables with their HTML
in ``tables_html``, ``document_parsing`` LaTeX as Markdown with the LaTeX in ``latex``, fields as ``key: value``
lines with the JSON in ``fields``) and the page's keys (``source``, ``page`` 0-based, ``page_label``,
``total_pages``, ``text_source``, ``task``, ``model``, ``provider``, ``request_id``, ``finish_reason``,
``truncated``, tokens, ``page_width``, ``page_height``, and the task's structure: ``lines`` with boxes, ``fields``,
``tables_html``, ``latex``, ``formulas``).

Single mode (:class:`SingleDocumentBuilder`): the pages of one file joined by a separator, with ``page_offsets``
(``[[start_char, page], ...]``) so that a chunk's ``start_index`` maps back to its page (:func:`page_for_offset`).

Elements mode (:func:`element_documents`): one document per title, heading, paragraph, list item, table, formula,
caption, field set or text line of a page (:func:`qwen_ocr.structure.blocks_from_result`), with ``category``.

A page or file that failed becomes, where errors are marked, :func:`error_document`: empty text, and ``error``,
``error_type`` and ``error_code`` in its metadata.

Example::

    from qwen_ocr import QwenOCR, read_document
    from langchain_qwen_ocr.document_loaders.documents import page_document

    with QwenOCR() as client:
        docs = [page_document(page) for page in read_document(client, "scan.pdf", task="table_parsing")]
    docs[0].page_content          # text, with each table as a Markdown table
    docs[0].metadata["page"]      # 0
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from qwen_ocr.page_metadata import STRUCTURE_KEYS, json_safe, structured_metadata
from qwen_ocr.reading import JSONValue, PageResult
from qwen_ocr.rendering import ContentFormat, blocks_to_markdown, render, tables_to_markdown, without_table_captions

if TYPE_CHECKING:
    from qwen_ocr.errors import QwenOCRError
    from qwen_ocr.results import OCRResult

__all__ = [
    "DEFAULT_PAGE_SEPARATOR",
    "ContentFormat",
    "SingleDocumentBuilder",
    "blocks_to_markdown",
    "element_documents",
    "error_document",
    "error_metadata",
    "page_document",
    "page_for_offset",
    "page_metadata",
    "page_text",
    "tables_to_markdown",
]

DEFAULT_PAGE_SEPARATOR = "\n\n"
"""What joins the pages of a file in single mode: a blank line, the first place a ``RecursiveCharacterTextSplitter``
cuts, so chunks tend to end at page ends."""


# -- text and metadata -----------------------------------------------------------------------------------------


def page_text(result: OCRResult | None, content_format: ContentFormat = "markdown") -> str:
    """The text of a page for ``page_content``: :func:`qwen_ocr.rendering.render` (see :data:`ContentFormat`)."""
    return render(result, content_format)


def page_metadata(
    page: PageResult, source: str | None = None, *, content_format: ContentFormat = "markdown"
) -> dict[str, JSONValue]:
    """The page's keys (:meth:`qwen_ocr.PageResult.metadata`), JSON-safe; ``source`` replaces the document's name."""
    meta = page.metadata(content_format=content_format)
    if source is not None:
        meta["source"] = source
    return meta


def error_metadata(error: QwenOCRError) -> dict[str, JSONValue]:
    """``error`` (the message), ``error_type`` (the class name) and ``error_code`` (the service's or ours)."""
    return {"error": str(error), "error_type": type(error).__name__, "error_code": error.code}


def error_document(source: str, error: QwenOCRError, *, page: PageResult | None = None) -> Document:
    """A marked failure: empty text, the error in metadata; with the page's keys when one page failed, else
    (the whole file failed) ``source`` alone."""
    meta: dict[str, JSONValue] = page_metadata(page, source) if page is not None else {"source": source}
    meta.update(error_metadata(error))
    return Document(page_content="", metadata=meta)


def page_document(
    page: PageResult, source: str | None = None, *, content_format: ContentFormat = "markdown"
) -> Document:
    """One page as a Document (a failed page gives empty text and ``error`` in metadata)."""
    return Document(
        page_content=page_text(page.result, content_format),
        metadata=page_metadata(page, source, content_format=content_format),
    )


# -- single mode -----------------------------------------------------------------------------------------------


class SingleDocumentBuilder:
    """Collects the pages of one file into one Document (single mode).

    Metadata: ``source``, ``total_pages``, ``pages`` (the 0-based pages included, in order), ``page_labels``,
    ``page_offsets`` (``[[start_char, page], ...]``: where each page's text starts in ``page_content``),
    ``page_sizes`` (``[[width, height], ...]`` per page, the frame of its boxes; ``null`` when not known),
    ``text_source`` (``"ocr"``, ``"text_layer"`` or ``"mixed"``), ``task``, ``model``, ``provider``,
    ``request_ids``, ``truncated`` (any page cut off), the summed ``input_tokens``, ``output_tokens``,
    ``image_tokens`` and ``total_tokens``; then, where the task gave them, ``lines`` (each with its ``page``),
    ``fields`` (``[{"page", "fields"}, ...]``), ``tables_html``, ``tables_oversized`` (``[[page, table], ...]``:
    tables too large to lay out, whose text is a note and their HTML), ``tables_truncated`` (``[[page, table],
    ...]``: tables the output was cut off inside) and ``formulas``; and ``errors``
    (``[{"page", "error", "error_type", "error_code"}, ...]``) for pages that failed, which add no text.

    Example::

        builder = SingleDocumentBuilder("scan.pdf")
        for page in read_document(client, "scan.pdf"):
            builder.add(page)
        doc = builder.build()
        page_for_offset(doc.metadata, 1200)      # the page whose text holds character 1200
    """

    def __init__(
        self, source: str, *, separator: str = DEFAULT_PAGE_SEPARATOR, content_format: ContentFormat = "markdown"
    ) -> None:
        self.source = source
        self.separator = separator
        self.content_format = content_format
        self._texts: list[str] = []
        self._length = 0
        self._total_pages: int | None = None
        self._pages: list[int] = []
        self._labels: list[str] = []
        self._offsets: list[list[int]] = []
        self._sizes: list[list[int] | None] = []
        self._sources: set[str] = set()
        self._first: dict[str, JSONValue] = {}
        self._request_ids: list[str] = []
        self._truncated = False
        self._tokens = {"input_tokens": 0, "output_tokens": 0, "image_tokens": 0, "total_tokens": 0}
        self._lines: list[JSONValue] = []
        self._fields: list[JSONValue] = []
        self._tables: list[JSONValue] = []
        self._oversized: list[JSONValue] = []
        self._cut_off: list[JSONValue] = []
        self._formulas: list[JSONValue] = []
        self._errors: list[JSONValue] = []

    @property
    def empty(self) -> bool:
        """Whether no page was added."""
        return self._total_pages is None

    def add(self, page: PageResult) -> None:
        """Add the next page (in page order). A failed page is listed in ``errors`` and adds no text."""
        self._total_pages = page.total_pages
        if page.error is not None or page.result is None:
            entry: dict[str, JSONValue] = {"page": page.index}
            if page.error is not None:
                entry.update(error_metadata(page.error))
            self._errors.append(entry)
            return
        result = page.result
        text = page_text(result, self.content_format)
        if self._pages:
            self._texts.append(self.separator)
            self._length += len(self.separator)
        self._offsets.append([self._length, page.index])
        self._texts.append(text)
        self._length += len(text)
        self._pages.append(page.index)
        self._labels.append(page.label)
        self._sizes.append(list(result.image_size) if result.image_size is not None else None)
        self._sources.add(page.text_source)
        meta = page.metadata()
        for key in ("task", "model", "provider"):
            if self._first.get(key) is None and meta.get(key) is not None:
                self._first[key] = meta[key]
        if result.request_id:
            self._request_ids.append(result.request_id)
        self._truncated = self._truncated or result.truncated
        self._tokens["input_tokens"] += result.usage.input_tokens
        self._tokens["output_tokens"] += result.usage.output_tokens
        self._tokens["image_tokens"] += result.usage.image_tokens
        self._tokens["total_tokens"] += result.usage.total_tokens
        structure = structured_metadata(result)
        for line in structure.get("lines") or []:  # type: ignore[union-attr]
            if isinstance(line, dict):
                self._lines.append({"page": page.index, **line})
        if "fields" in structure:
            self._fields.append({"page": page.index, "fields": structure["fields"]})
        for key, found in (("tables_oversized", self._oversized), ("tables_truncated", self._cut_off)):
            found.extend([page.index, index] for index in structure.get(key) or [])  # type: ignore[union-attr]
        self._tables.extend(structure.get("tables_html") or [])  # type: ignore[arg-type]
        self._formulas.extend(structure.get("formulas") or [])  # type: ignore[arg-type]

    def build(self) -> Document:
        """The file's Document."""
        if len(self._sources) > 1:
            text_source: JSONValue = "mixed"
        else:
            text_source = next(iter(self._sources), None)
        meta: dict[str, JSONValue] = {
            "source": self.source,
            "total_pages": self._total_pages,
            "pages": list(self._pages),
            "page_labels": list(self._labels),
            "page_offsets": [list(o) for o in self._offsets],
            "page_sizes": [list(s) if s is not None else None for s in self._sizes],
            "text_source": text_source,
            "task": self._first.get("task"),
            "model": self._first.get("model"),
            "provider": self._first.get("provider"),
            "request_ids": list(self._request_ids),
            "truncated": self._truncated,
            **self._tokens,
        }
        for key, values in (
            ("lines", self._lines),
            ("fields", self._fields),
            ("tables_html", self._tables),
            ("tables_oversized", self._oversized),
            ("tables_truncated", self._cut_off),
            ("formulas", self._formulas),
            ("errors", self._errors),
        ):
            if values:
                meta[key] = list(values)
        return Document(page_content="".join(self._texts), metadata=meta)


def page_for_offset(metadata: Mapping[str, Any], offset: int) -> int | None:
    """The 0-based page holding character ``offset`` of a single-mode document, from its ``page_offsets``.

    Use it with ``RecursiveCharacterTextSplitter(add_start_index=True)``: a chunk's page is
    ``page_for_offset(chunk.metadata, chunk.metadata["start_index"])``. ``None`` without offsets.

    >>> page_for_offset({"page_offsets": [[0, 0], [120, 1], [300, 3]]}, 150)
    1
    """
    offsets = metadata.get("page_offsets")
    if not isinstance(offsets, list) or not offsets:
        return None
    starts = [int(start) for start, _ in offsets]
    index = bisect.bisect_right(starts, offset) - 1
    return int(offsets[max(index, 0)][1])


# -- elements mode ---------------------------------------------------------------------------------------------

_LEVELLED = ("title", "heading", "list_item")


def element_documents(page: PageResult, source: str | None = None) -> list[Document]:
    """One Document per element of a read page, in reading order (none for a failed page: mark it with
    :func:`error_document`).

    Metadata: the page's flat keys (``source``, ``page``, ``page_label``, ``total_pages``, ``task``, ``model``,
    usage, ``page_width``/``page_height``, ...; not its structure: ``lines``, ``fields``, ``tables_html``, ...), then
    ``category`` (``"title"``, ``"heading"``, ``"paragraph"``, ``"list_item"``, ``"table"``, ``"formula"``,
    ``"caption"``, ``"fields"`` or ``"line"``), ``element_index`` (reading order on the page), ``heading_path``
    (the enclosing headings joined by ``" > "``, ``""`` outside any), and where they apply ``level`` (titles,
    headings, list items), ``bbox`` (``[left, top, right, bottom]`` of a text line, in the frame of
    ``page_width`` x ``page_height``), ``table_html`` (a table, whose text is its Markdown), ``table_oversized``
    (``True`` for a table too large to lay out, whose text is a note and its HTML), ``latex`` (a formula) and
    ``fields`` (the extracted JSON). A caption that names a table is read with the table (its text starts with
    it), not as an element of its own.
    """
    from qwen_ocr.structure import blocks_from_result

    result = page.result
    if result is None:
        return []
    base = {k: v for k, v in page_metadata(page, source).items() if k not in STRUCTURE_KEYS}
    docs: list[Document] = []
    for index, block in enumerate(without_table_captions(blocks_from_result(result))):
        meta: dict[str, JSONValue] = dict(base)
        meta["category"] = block.kind
        meta["element_index"] = index
        meta["heading_path"] = " > ".join(block.heading_path)
        if block.kind in _LEVELLED:
            meta["level"] = block.level
        if block.bbox is not None:
            meta["bbox"] = [int(v) for v in block.bbox]
        if block.table is not None:
            meta["table_html"] = block.table.to_html()
            if block.table.oversized:
                meta["table_oversized"] = True
        if block.kind == "formula" and block.latex:
            meta["latex"] = block.latex
        if block.fields is not None:
            meta["fields"] = json_safe(block.fields)
        docs.append(Document(page_content=block.text, metadata=meta))
    return docs
