"""Page results grouped into documents: one per page, one per file, or one per element (framework-free).

What the LangChain loader and parser give for each ``mode``, with the text and the keys of core's page policy
(:func:`qwen_ocr.rendering.render`, :meth:`qwen_ocr.PageResult.metadata`); an adapter only wraps each ``(text,
metadata)`` pair into its own document type (the ``make`` of :class:`Collator`). Every metadata value is JSON.

- ``"page"``: each page's text and keys (``source``, ``page`` 0-based, ``page_label``, ``total_pages``,
  ``text_source``, ``task``, ``model``, usage, ``page_width``/``page_height``, and the task's structure: ``lines``,
  ``fields``, ``tables_html``, ``latex``, ``formulas``).
- ``"single"``: a file's pages joined by a separator (:class:`JoinedPages`), with ``page_offsets`` so that a chunk's
  ``start_index`` maps back to its page (:func:`page_for_offset`).
- ``"elements"``: one per title, heading, paragraph, list item, table, formula, caption, field set or text line of
  a page (:func:`element_records`, from :func:`qwen_ocr.structure.blocks_from_result`), with ``category`` named as
  unstructured names its elements (:data:`CATEGORIES`) and ``text_as_html`` for a table.

Each record has a stable id (:func:`record_id`), the same on every reading of the file: ``"<source>_part_<page>"``
per page (the LlamaIndex reader's ids), ``"<source>"`` per file, ``"<source>_part_<page>_<element index>"`` per
element, ``"<source>_unreadable"`` for a file that failed as a whole; a vector store that upserts by id replaces a
re-read file's chunks instead of adding them twice.

A page or file that failed, where errors are marked (``on_error="mark"``), gives empty text with ``error``,
``error_type`` and ``error_code`` (:func:`error_record`).

Example::

    from qwen_ocr import QwenOCR, read_documents
    from qwen_ocr.assembly import Collator

    with QwenOCR() as client:
        collator = Collator(lambda text, metadata: (text, metadata), mode="single")
        for text, metadata in collator.collect(read_documents(client, ["a.pdf", "b.pdf"])):
            print(metadata["source"], metadata["page_offsets"], text[:80])

LangChain Documents built from these records:

Each Document's ``id`` is stable (``"<source>_part_<page>"``; ``"<source>"`` in single mode;
``"<source>_part_<page>_<n>"`` per element; ``"<source>_unreadable"`` for a failed file:
:func:`qwen_ocr.assembly.record_id`), so loading a file again gives the same ids and a vector store upserts.
Elements (``mode="elements"``) have unstructured's ``category`` names (:data:`qwen_ocr.assembly.CATEGORIES`:
``Title``, ``NarrativeText``, ``ListItem``, ``Table``, ``Formula``, ``FigureCaption``, ``FormKeysValues``,
``UncategorizedText``; ours in ``block_kind``), a table's HTML in ``text_as_html``.

Metadata and vector stores: the scalar keys (``source``, ``page``, ``page_label``, ``total_pages``, ``task``,
``model``, the token counts, ``category``, ...) are kept by ``filter_complex_metadata``; the list and object
keys (``lines`` when included, ``fields``, ``tables_html``, ``formulas``, ``bbox``, single mode's ``pages``,
``page_offsets``...) are dropped by it, so keep what you need (e.g. ``page_for_offset``) before filtering.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncGenerator, Callable, Collection, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args

from .documents import parse_pages
from .engine import ReadOptions, split_arguments
from .errors import InvalidArgumentError, QwenOCRError
from .page_metadata import STRUCTURE_KEYS, error_metadata, flat_metadata, json_safe, structured_metadata
from .reading import JSONValue, PageResult
from .rendering import ContentFormat, check_content_format, render, without_table_captions

if TYPE_CHECKING:
    from .documents import PageSpec
    from .settings import ClientHolder
    from .structure import BlockKind

__all__ = [
    "CATEGORIES",
    "DEFAULT_PAGE_SEPARATOR",
    "MODES",
    "OCR_EXTRA",
    "Collator",
    "JoinedPages",
    "Mode",
    "configure",
    "describe",
    "element_records",
    "error_record",
    "page_for_offset",
    "page_keys",
    "record_id",
]

D = TypeVar("D")

Mode = Literal["page", "single", "elements"]
"""One document per page, per file, or per element of a page."""
MODES: tuple[str, ...] = get_args(Mode)

DEFAULT_PAGE_SEPARATOR = "\n\n"
"""What joins the pages of a file in single mode: a blank line, the first place a ``RecursiveCharacterTextSplitter``
cuts, so chunks tend to end at page ends."""

OCR_EXTRA = ("min_pixels", "max_pixels", "resolution", "enable_rotate", "max_tokens", "temperature")
"""The request options an integration takes in ``ocr_options`` (the others are arguments of their own)."""

CATEGORIES: dict[BlockKind, str] = {
    "title": "Title",
    "heading": "Title",
    "paragraph": "NarrativeText",
    "list_item": "ListItem",
    "table": "Table",
    "formula": "Formula",
    "caption": "FigureCaption",
    "fields": "FormKeysValues",
    "line": "UncategorizedText",
}
"""An element's ``category``: the name unstructured gives such an element (what LangChain users already filter on),
from the block's kind (:data:`qwen_ocr.structure.BlockKind`, kept in ``block_kind``). A document's title and its
section headings are both ``"Title"`` (``level`` tells them apart: 0 for the title, 1 for a section, ...); a text
line of ``advanced_recognition`` is ``"UncategorizedText"``; the fields of ``key_information_extraction`` are
``"FormKeysValues"``."""

_LEVELLED = ("title", "heading", "list_item")
_FILE_LISTS = ("pages", "page_labels", "page_offsets", "page_sizes", "request_ids")
_OPTIONAL_LISTS = ("lines", "fields", "tables_html", "tables_oversized", "tables_truncated", "formulas", "errors")


def configure(
    *, mode: str, content_format: str, ocr_options: Mapping[str, Any] | None, **arguments: Any
) -> tuple[ReadOptions, ClientHolder]:
    """Check a collating integration's arguments (the LangChain loader's or parser's): ``mode``, ``content_format``,
    ``ocr_options`` (:data:`OCR_EXTRA`), the reading options and the client settings
    (:func:`qwen_ocr.engine.split_arguments`). Raises :class:`~qwen_ocr.errors.InvalidArgumentError` naming the
    wrong one.

    >>> configure(mode="pages", content_format="markdown", ocr_options=None)
    Traceback (most recent call last):
    qwen_ocr.errors.InvalidArgumentError: mode='pages'; use one of 'page', 'single', 'elements'. (code=InvalidArgument)
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r}; use one of {', '.join(map(repr, MODES))}.")
    check_content_format(content_format)
    extra = dict(ocr_options or {})
    unknown = sorted(set(extra) - set(OCR_EXTRA))
    if unknown:
        raise InvalidArgumentError(
            f"ocr_options has {', '.join(map(repr, unknown))}; it takes {', '.join(OCR_EXTRA)} "
            "(task, schema, prompt and model are arguments of their own)."
        )
    return split_arguments(**extra, **arguments)


def describe(mode: str, options: ReadOptions, holder: ClientHolder) -> str:
    """The settings for a ``repr``: no password, no key."""
    provider = holder.client.provider if holder.client is not None else holder.provider
    model = options.ocr.get("model") or holder.effective_model
    return f"mode={mode!r}, {options.describe()}, model={model!r}, provider={provider!r}"


# -- one page -----------------------------------------------------------------------------------------------------


def page_keys(
    page: PageResult, source: str | None = None, *, content_format: ContentFormat = "markdown"
) -> dict[str, JSONValue]:
    """The page's keys (:meth:`qwen_ocr.PageResult.metadata`); ``source`` replaces the document's name."""
    meta = page.metadata(content_format=content_format)
    if source is not None:
        meta["source"] = source
    return meta


def error_record(source: str, error: QwenOCRError, *, page: PageResult | None = None) -> dict[str, JSONValue]:
    """The metadata of a marked failure (its text is empty): the page's keys when one page failed, else (the whole
    file failed) ``source`` alone; then ``error``, ``error_type`` and ``error_code``."""
    meta: dict[str, JSONValue] = page_keys(page, source) if page is not None else {"source": source}
    meta.update(error_metadata(error))
    return meta


def element_records(page: PageResult, source: str | None = None) -> list[tuple[str, dict[str, JSONValue]]]:
    """``(text, metadata)`` per element of a read page, in reading order (none for a failed page).

    Metadata: the page's flat keys (not its structure: ``lines``, ``fields``, ``tables_html``, ...), then
    ``category`` (unstructured's name, :data:`CATEGORIES`: ``"Title"``, ``"NarrativeText"``, ``"ListItem"``,
    ``"Table"``, ``"Formula"``, ``"FigureCaption"``, ``"FormKeysValues"`` or ``"UncategorizedText"``),
    ``block_kind`` (ours: ``"title"``, ``"heading"``, ``"paragraph"``, ``"list_item"``, ``"table"``,
    ``"formula"``, ``"caption"``, ``"fields"`` or ``"line"``), ``element_index`` (reading order on the page),
    ``heading_path`` (the enclosing headings joined by ``" > "``, ``""`` outside any), and where they apply
    ``level`` (titles, headings, list items), ``bbox`` (``[left, top, right, bottom]`` of a text line, in the frame
    of ``page_width`` x ``page_height``), ``text_as_html`` (a table, whose text is its Markdown), ``table_oversized``
    (``True`` for a table too large to lay out, whose text is a note and its HTML), ``latex`` (a formula) and
    ``fields`` (the extracted JSON). A caption that names a table is read with the table (its text starts with
    it), not as an element of its own.
    """
    from .structure import blocks_from_result

    if page.result is None:
        return []
    base = {k: v for k, v in page_keys(page, source).items() if k not in STRUCTURE_KEYS}
    records: list[tuple[str, dict[str, JSONValue]]] = []
    for index, block in enumerate(without_table_captions(blocks_from_result(page.result))):
        meta: dict[str, JSONValue] = {
            **base,
            "category": CATEGORIES[block.kind],
            "block_kind": block.kind,
            "element_index": index,
            "heading_path": " > ".join(block.heading_path),
        }
        if block.kind in _LEVELLED:
            meta["level"] = block.level
        if block.bbox is not None:
            meta["bbox"] = [int(v) for v in block.bbox]
        if block.table is not None:
            meta["text_as_html"] = block.table.to_html()
            if block.table.oversized:
                meta["table_oversized"] = True
        if block.kind == "formula" and block.latex:
            meta["latex"] = block.latex
        if block.fields is not None:
            meta["fields"] = json_safe(block.fields)
        records.append((block.text, meta))
    return records


def record_id(metadata: Mapping[str, Any]) -> str:
    """The stable id of a record of this module, from its ``source`` and position: ``"<source>_part_<page>"`` for
    a page (read or marked), ``"<source>_part_<page>_<element_index>"`` for an element, ``"<source>"`` for a file
    (single mode), ``"<source>_unreadable"`` for a file that failed as a whole (marked). Reading the same file again
    gives the same ids (the LlamaIndex reader's page ids have the same form).

    >>> record_id({"source": "a.pdf", "page": 2})
    'a.pdf_part_2'
    >>> record_id({"source": "a.pdf", "page": 2, "element_index": 5})
    'a.pdf_part_2_5'
    >>> record_id({"source": "a.pdf", "pages": [0, 1]}), record_id({"source": "a.pdf", "error": "broken"})
    ('a.pdf', 'a.pdf_unreadable')
    """
    source = metadata.get("source")
    if not isinstance(source, str):
        raise InvalidArgumentError(f"record_id needs a str 'source' in the metadata; got {source!r}.")
    page = metadata.get("page")
    if isinstance(page, int) and not isinstance(page, bool):
        element = metadata.get("element_index")
        return f"{source}_part_{page}" if element is None else f"{source}_part_{page}_{element}"
    if "pages" in metadata:
        return source
    if "error" in metadata:
        return f"{source}_unreadable"
    raise InvalidArgumentError(
        f"record_id cannot place a record of {source!r}: its metadata has no 'page', 'pages' or 'error'."
    )


# -- one file -----------------------------------------------------------------------------------------------------


class JoinedPages:
    """The pages of one file joined into one text (single mode), with the file's metadata.

    :meth:`metadata`: ``source``, ``total_pages``, ``pages`` (the 0-based pages included, in order),
    ``page_labels``, ``page_offsets`` (``[[start_char, page], ...]``: where each page's text starts in
    :attr:`text`), ``page_sizes`` (``[[width, height], ...]`` per page, the frame of its boxes; ``null`` when not
    known), ``text_source`` (``"ocr"``, ``"text_layer"`` or ``"mixed"``), ``task``, ``model``, ``provider``,
    ``request_ids``, ``truncated`` (any page cut off), the summed ``input_tokens``, ``output_tokens``,
    ``image_tokens`` and ``total_tokens``; then, where the task gave them, ``lines`` (each with its ``page``),
    ``fields`` (``[{"page", "fields"}, ...]``), ``tables_html``, ``tables_oversized`` (``[[page, table], ...]``:
    tables too large to lay out, whose text is a note and their HTML), ``tables_truncated`` (``[[page, table],
    ...]``: tables the output was cut off inside) and ``formulas``; and ``errors``
    (``[{"page", "error", "error_type", "error_code"}, ...]``) for pages that failed, which add no text.

    >>> joined = JoinedPages("a.pdf", separator="\\n")
    >>> for index in range(2):
    ...     joined.add(PageResult(source="a.pdf", index=index, label=str(index + 1), total_pages=2, error=None))
    >>> joined.metadata()["errors"]
    [{'page': 0}, {'page': 1}]
    """

    def __init__(
        self, source: str, *, separator: str = DEFAULT_PAGE_SEPARATOR, content_format: ContentFormat = "markdown"
    ) -> None:
        self.source, self.separator, self.content_format = source, separator, content_format
        self._texts: list[str] = []
        self._length = 0
        self._total_pages: int | None = None
        self._first: dict[str, JSONValue] = {}
        self._sources: set[str] = set()
        self._truncated = False
        self._tokens = {"input_tokens": 0, "output_tokens": 0, "image_tokens": 0, "total_tokens": 0}
        self._lists: dict[str, list[JSONValue]] = {key: [] for key in (*_FILE_LISTS, *_OPTIONAL_LISTS)}

    @property
    def empty(self) -> bool:
        """Whether no page was added."""
        return self._total_pages is None

    @property
    def text(self) -> str:
        """The pages' text, joined by the separator."""
        return "".join(self._texts)

    def add(self, page: PageResult) -> None:
        """Add the next page (in page order). A failed page is listed in ``errors`` and adds no text."""
        self._total_pages = page.total_pages
        lists = self._lists
        if page.error is not None or page.result is None:
            lists["errors"].append({"page": page.index, **(error_metadata(page.error) if page.error else {})})
            return
        result = page.result
        text = render(result, self.content_format)
        if lists["pages"]:
            self._texts.append(self.separator)
            self._length += len(self.separator)
        lists["page_offsets"].append([self._length, page.index])
        self._texts.append(text)
        self._length += len(text)
        lists["pages"].append(page.index)
        lists["page_labels"].append(page.label)
        lists["page_sizes"].append(list(result.image_size) if result.image_size is not None else None)
        self._sources.add(page.text_source)
        meta = page.metadata()
        for key in ("task", "model", "provider"):
            if self._first.get(key) is None and meta.get(key) is not None:
                self._first[key] = meta[key]
        if result.request_id:
            lists["request_ids"].append(result.request_id)
        self._truncated = self._truncated or result.truncated
        for key in self._tokens:
            self._tokens[key] += getattr(result.usage, key)
        structure = structured_metadata(result)
        for line in structure.get("lines") or []:  # type: ignore[union-attr]
            if isinstance(line, dict):
                lists["lines"].append({"page": page.index, **line})
        if "fields" in structure:
            lists["fields"].append({"page": page.index, "fields": structure["fields"]})
        for key in ("tables_oversized", "tables_truncated"):
            lists[key].extend([page.index, index] for index in structure.get(key) or [])  # type: ignore[union-attr]
        lists["tables_html"].extend(structure.get("tables_html") or [])  # type: ignore[arg-type]
        lists["formulas"].extend(structure.get("formulas") or [])  # type: ignore[arg-type]

    def metadata(self) -> dict[str, JSONValue]:
        """The file's metadata (see the class docstring)."""
        sources = sorted(self._sources)
        lists = self._lists
        meta: dict[str, JSONValue] = {
            "source": self.source,
            "total_pages": self._total_pages,
            **{key: list(lists[key]) for key in ("pages", "page_labels", "page_offsets", "page_sizes")},
            "text_source": "mixed" if len(sources) > 1 else next(iter(sources), None),
            **{key: self._first.get(key) for key in ("task", "model", "provider")},
            "request_ids": list(lists["request_ids"]),
            "truncated": self._truncated,
            **self._tokens,
        }
        for key in _OPTIONAL_LISTS:
            if lists[key]:
                meta[key] = list(lists[key])
        return meta


def page_for_offset(metadata: Mapping[str, Any], offset: int) -> int | None:
    """The 0-based page holding character ``offset`` of a single-mode document, from its ``page_offsets``.

    With ``RecursiveCharacterTextSplitter(add_start_index=True)``, a chunk's page is
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


# -- many files ---------------------------------------------------------------------------------------------------


class Collator(Generic[D]):
    """Turns the page results of a reading (:func:`qwen_ocr.read_documents`, files in order) into documents for
    the mode, each made by ``make(text, metadata)``.

    ``include_lines=False`` leaves out ``lines`` (each text line's box; ~2 KB a page) of page and file records;
    element records never carry it (a line element has its own ``bbox``).

    In single mode a file's document comes with its last selected page (or, when pages were skipped, with the next
    file's first result or at the end); a file that failed as a whole (marked) gives its pages so far, then its
    error's document.

    >>> collator = Collator(lambda text, meta: (text, meta["source"]))
    >>> collator.add(PageResult(source="a.png", index=0, label="1", total_pages=1))
    [('', 'a.png')]
    """

    def __init__(
        self,
        make: Callable[[str, dict[str, JSONValue]], D],
        mode: Mode = "page",
        content_format: ContentFormat = "markdown",
        separator: str = DEFAULT_PAGE_SEPARATOR,
        pages: PageSpec = None,
        include_lines: bool = True,
    ) -> None:
        self.make, self.mode, self.content_format = make, mode, content_format
        self.separator, self.pages, self.include_lines = separator, pages, include_lines
        self._file, self._left = -1, 0
        self._single: JoinedPages | None = None

    def add(self, page: PageResult) -> list[D]:
        """The documents complete with this result."""
        docs: list[D] = []
        if page.file_index != self._file:
            docs, self._file = self.finish(), page.file_index
            if self.mode == "single":
                self._single = JoinedPages(page.source, separator=self.separator, content_format=self.content_format)
                try:
                    self._left = len(parse_pages(self.pages, page.total_pages))
                except QwenOCRError:
                    self._left = 0
        if page.error is not None and page.file_failed:  # its pages so far (single mode), then the marked failure
            return [*docs, *self.finish(), self.make("", error_record(page.source, page.error))]
        if self._single is not None:
            self._single.add(page)
            self._left -= 1
            if self._left == 0:
                docs.extend(self.finish())
        elif page.error is not None:
            docs.append(self.make("", error_record(page.source, page.error, page=page)))
        elif self.mode == "elements":
            docs.extend(self.make(text, meta) for text, meta in element_records(page, page.source))
        else:
            meta = page_keys(page, page.source, content_format=self.content_format)
            docs.append(self.make(render(page.result, self.content_format), self._trim(meta)))
        return docs

    def _trim(self, metadata: dict[str, JSONValue]) -> dict[str, JSONValue]:
        if not self.include_lines:
            metadata.pop("lines", None)
        return metadata

    def finish(self) -> list[D]:
        """What is left: the single-mode document of the last file."""
        single, self._single = self._single, None
        if single is None or single.empty:
            return []
        return [self.make(single.text, self._trim(single.metadata()))]

    def collect(self, pages: Generator[PageResult, None, None]) -> Generator[D, None, None]:
        """The documents of a reading, as they complete; closing this closes ``pages`` (stops the reading)."""
        try:
            for page in pages:
                yield from self.add(page)
        finally:
            pages.close()
        yield from self.finish()

    async def acollect(self, pages: AsyncGenerator[PageResult, None]) -> AsyncGenerator[D, None]:
        """The async twin of :meth:`collect`."""
        try:
            async for page in pages:
                for doc in self.add(page):
                    yield doc
        finally:
            await pages.aclose()
        for doc in self.finish():
            yield doc


def named_page_record(
    page: PageResult, unnamed: Collection[str], extra: Mapping[str, Any] | None, content_format: ContentFormat
) -> tuple[str, str, dict[str, Any], list[str]]:
    """One page as a file reader's record: ``(id, text, metadata, the keys the reader wrote)``.

    ``file_name`` and ``file_path`` name the file unless its source is one of ``unnamed`` (bytes named after their
    content); ``extra`` (e.g. ``SimpleDirectoryReader``'s file keys) is merged in, then the page's flat keys
    (:func:`qwen_ocr.page_metadata.flat_metadata`), which win. The id is ``"<source>_part_<page>"``, or
    ``"<source>_unreadable"`` for a file that could not be read at all.

    >>> named_page_record(PageResult(source="a.pdf", index=1, label="2", total_pages=2), (), None, "markdown")[0]
    'a.pdf_part_1'
    """
    key, named = page.source, page.source not in unnamed
    meta: dict[str, Any] = {}
    if named:
        meta["file_name"] = key.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or key
        meta["file_path"] = key
    meta.update(extra or {})
    page_meta = flat_metadata(page.metadata(content_format=content_format))
    page_meta.pop("source", None)  # the file is named by file_path
    meta.update(page_meta)
    if page.file_failed:
        id_, text = f"{key}_unreadable", ""
    else:
        id_, text = f"{key}_part_{page.index}", render(page.result, content_format) if page.ok else ""
    return id_, text, meta, [*page_meta, *(("file_name", "file_path") if named else ())]
