"""A page's metadata: one key set for every integration, each key with its own "embed / hide" flag.

:meth:`PageResult.metadata() <qwen_ocr.reading.PageResult.metadata>` gives these keys (only those that apply); the
LangChain loader and parser, and the LlamaIndex reader and node parser, all use the same names:

- LangChain keeps the values as they are (JSON types: ``fields`` is an object, ``tables_html`` a list, ...);
- LlamaIndex needs flat metadata (``str``/``int``/``float``/``bool``): :func:`flat_metadata` gives the same keys
  with every list or object value as its JSON text (``json.loads(doc.metadata["fields"])``) and ``None`` values
  left out; and every key whose :attr:`MetadataKey.embed` is ``False`` goes into the Document's
  ``excluded_embed_metadata_keys`` and ``excluded_llm_metadata_keys`` (:func:`excluded_keys`).

The registry :data:`KEYS` is the one place a key is declared: its name, whether it reaches the text that is embedded
and shown to an LLM, and what it holds. A key written without being declared is an error (:func:`excluded_keys`
with ``own=``), so no key enters embeddings by being forgotten. Integrations declare their own keys (LlamaIndex's
``file_path``, the node parser's ``node_kind``...) the same way, next to the code that writes them.

Example::

    meta = page.metadata()                      # page: a qwen_ocr.PageResult
    meta["page_label"], meta.get("tables_html")
    flat = flat_metadata(meta)                  # for LlamaIndex and other flat stores
    hidden = excluded_keys(flat)                # what embeddings and LLM prompts leave out
    result = result_from_metadata(flat, text)   # the page's structure back, for a node parser
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, SupportsIndex

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema
from typing_extensions import Self

from .errors import QwenOCRError
from .rendering import ContentFormat, check_content_format
from .results import OCRResult, Table, TextLine, parse_tables
from .tasks import Task

if TYPE_CHECKING:
    from .reading import JSONValue, PageResult

__all__ = [
    "ELEMENT_KEYS",
    "KEYS",
    "PAGE_KEYS",
    "STRUCTURE_KEYS",
    "FlatValue",
    "KeyList",
    "MetadataKey",
    "declare",
    "error_metadata",
    "excluded_keys",
    "flat_metadata",
    "json_safe",
    "page_metadata",
    "result_from_metadata",
    "structured_metadata",
]

FlatValue = str | int | float | bool
"""A flat metadata value (what LlamaIndex and most vector stores accept)."""


@dataclass(frozen=True)
class MetadataKey:
    """One metadata key.

    Attributes:
        name: the key.
        embed: whether the key reaches the text that is embedded and shown to an LLM (``False``: it is kept out,
            e.g. LlamaIndex's ``excluded_embed_metadata_keys`` and ``excluded_llm_metadata_keys``).
        doc: what the value holds.
    """

    name: str
    embed: bool
    doc: str


def declare(*keys: MetadataKey) -> dict[str, MetadataKey]:
    """A registry of keys by name (each declared once)."""
    out: dict[str, MetadataKey] = {}
    for key in keys:
        if key.name in out:
            raise ValueError(f"metadata key {key.name!r} is declared twice")
        out[key.name] = key
    return out


def _hide(name: str, doc: str) -> MetadataKey:
    return MetadataKey(name, False, doc)


def _embed(name: str, doc: str) -> MetadataKey:
    return MetadataKey(name, True, doc)


PAGE_KEYS: dict[str, MetadataKey] = declare(
    _embed("source", "the document's name: its path or URL, or '<bytes>'"),
    _hide("page", "0-based index of the page in the file"),
    _embed("page_label", "the page's label as the document prints it ('iv'), else its 1-based number"),
    _hide("total_pages", "pages in the whole file"),
    _hide("text_source", "'ocr', or 'text_layer' (a PDF page's own text: no request made)"),
    _hide("task", "the built-in task, or None for a plain read"),
    _hide("model", "the model that answered"),
    _hide("provider", "'dashscope', 'openai', 'local' or 'text_layer'"),
    _hide("request_id", "the service's request id"),
    _hide("finish_reason", "'stop', or 'length' when the output was cut off at max_tokens"),
    _hide("truncated", "the output was cut off (at max_tokens, or inside a table)"),
    _hide("input_tokens", "tokens in (the image's included)"),
    _hide("output_tokens", "tokens out"),
    _hide("image_tokens", "the image's tokens"),
    _hide("total_tokens", "what the service reported, or the sum"),
    _hide("page_width", "width of the frame the boxes are in (the image's pixels; a PDF page's points)"),
    _hide("page_height", "height of that frame"),
    _hide("cache", "'hit' when the reading came from the cache (absent otherwise)"),
    _hide("batch", "the id of the Batch API batch that read the page (absent for a real-time read)"),
    _hide("error", "a failed page's error message"),
    _hide("error_type", "its class name ('RateLimitError')"),
    _hide("error_code", "the service's error code or ours ('Throttling', 'InvalidImage')"),
    _hide("lines", "text lines: [{'text', 'bbox': [left, top, right, bottom], 'location': [8 ints]}, ...]"),
    _hide("fields", "the extracted key-value JSON (key_information_extraction)"),
    _hide("tables_html", "one HTML string per table, rebuilt from its cells (well-formed even when cut off)"),
    _hide("tables_oversized", "0-based indices (in tables_html) of tables too large to lay out as a grid"),
    _hide("tables_truncated", "0-based indices (in tables_html) of tables the output was cut off inside"),
    _hide("latex", "the LaTeX of document_parsing (left out when the text is that LaTeX: content_format='raw')"),
    _hide("formulas", "the display formulas, as LaTeX"),
)
"""The keys of a page (:func:`page_metadata`). Only ``source`` and ``page_label`` are embedded."""

ELEMENT_KEYS: dict[str, MetadataKey] = declare(
    _embed("heading_path", "the enclosing headings, outermost first, joined by ' > '"),
    _hide("bbox", "[left, top, right, bottom] of a text line (or a node's lines), in the page's frame"),
    _hide("table_html", "the HTML of the one table a LlamaIndex node holds"),
    _hide("text_as_html", "the HTML of the one table a LangChain element holds (unstructured's name)"),
    _hide("category", "an element's kind as unstructured names it: Title, NarrativeText, ListItem, Table, ..."),
    _hide("block_kind", "an element's kind as core names it: title, heading, paragraph, list_item, table, ..."),
    _hide("table_oversized", "True for a table too large to lay out (its text is a note and its HTML)"),
)
"""The keys an element of a page adds (LangChain's elements mode, LlamaIndex's node parser), besides the page keys;
``lines``, ``fields`` and ``latex`` (a formula's) keep their page meaning for the element."""

KEYS: dict[str, MetadataKey] = {**PAGE_KEYS, **ELEMENT_KEYS}
"""Every key core declares."""

STRUCTURE_KEYS: tuple[str, ...] = (
    "lines",
    "fields",
    "tables_html",
    "tables_oversized",
    "tables_truncated",
    "latex",
    "formulas",
)
"""The page keys that hold the task's structured output (:func:`structured_metadata`): they stay on the page's
document; its elements and nodes carry their own part of it."""


def page_metadata(page: PageResult, *, content_format: ContentFormat = "markdown") -> dict[str, JSONValue]:
    """A page's metadata (see :meth:`PageResult.metadata <qwen_ocr.reading.PageResult.metadata>`)."""
    check_content_format(content_format)
    meta: dict[str, JSONValue] = {
        "source": page.source,
        "page": page.index,
        "page_label": page.label,
        "total_pages": page.total_pages,
        "text_source": page.text_source,
    }
    result = page.result
    if result is not None:
        meta["task"] = result.task.value if result.task is not None else None
        meta["model"] = result.model or None
        meta["provider"] = result.provider
        meta["request_id"] = result.request_id
        meta["finish_reason"] = result.finish_reason
        meta["truncated"] = result.truncated
        meta["input_tokens"] = result.usage.input_tokens
        meta["output_tokens"] = result.usage.output_tokens
        meta["image_tokens"] = result.usage.image_tokens
        meta["total_tokens"] = result.usage.total_tokens
        if result.image_size is not None:
            meta["page_width"], meta["page_height"] = result.image_size
        if result.metadata.get("cache") == "hit":
            meta["cache"] = "hit"
        if isinstance(result.metadata.get("batch"), str):
            meta["batch"] = result.metadata["batch"]
        structure = structured_metadata(result)
        if content_format == "raw":
            structure.pop("latex", None)  # the text is that LaTeX
        meta.update(structure)
    if page.error is not None:
        meta.update(error_metadata(page.error))
    return meta


def error_metadata(error: QwenOCRError) -> dict[str, JSONValue]:
    """``error`` (the message), ``error_type`` (the class name) and ``error_code`` (the service's or ours).

    >>> error_metadata(QwenOCRError("no such file: a.pdf.", code="FileNotFound"))["error_code"]
    'FileNotFound'
    """
    return {"error": str(error), "error_type": type(error).__name__, "error_code": error.code}


def structured_metadata(result: OCRResult) -> dict[str, JSONValue]:
    """The task's structured output as JSON-safe values, for metadata that is kept but not embedded.

    Only what the result has: ``lines`` (each ``{"text", "bbox": [x0, y0, x1, y1], "location": [8 ints]}`` in the
    pixels of ``image_size``), ``fields``, ``tables_html`` (one HTML string per table), ``tables_oversized`` and
    ``tables_truncated`` (indices into ``tables_html``), ``latex`` and ``formulas``.

    >>> structured_metadata(OCRResult(text="x", formulas=["E=mc^2"]))
    {'formulas': ['E=mc^2']}
    """
    out: dict[str, JSONValue] = {}
    if result.lines:
        out["lines"] = [
            {"text": line.text, "bbox": list(line.bbox), "location": list(line.location)} for line in result.lines
        ]
    if result.fields is not None:
        out["fields"] = json_safe(result.fields)
    if result.tables:
        out["tables_html"] = [table.to_html() for table in result.tables]
        oversized: list[JSONValue] = [i for i, table in enumerate(result.tables) if table.oversized]
        truncated: list[JSONValue] = [i for i, table in enumerate(result.tables) if table.truncated]
        if oversized:
            out["tables_oversized"] = oversized
        if truncated:
            out["tables_truncated"] = truncated
    if result.latex:
        out["latex"] = result.latex
    if result.formulas:
        out["formulas"] = list(result.formulas)
    return out


def flat_metadata(metadata: Mapping[str, Any]) -> dict[str, FlatValue]:
    """The same keys with flat values: a list or object as its JSON text, ``None`` left out.

    >>> flat_metadata({"page": 0, "fields": {"Total": "3"}, "request_id": None})
    {'page': 0, 'fields': '{"Total": "3"}'}
    """
    out: dict[str, FlatValue] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, (str, int, float, bool)) else _dumps(value)
    return out


def excluded_keys(
    metadata: Iterable[str], keys: Mapping[str, MetadataKey] = KEYS, *, own: Iterable[str] = ()
) -> list[str]:
    """The keys of ``metadata`` to keep out of the embedded and LLM text (declared with ``embed=False``), sorted.

    ``own`` are the keys this library wrote: each must be declared in ``keys`` (else a ``KeyError`` names it), so
    that a new key cannot reach embeddings by being forgotten. Other keys (the caller's own) are embedded.

    >>> excluded_keys({"page_label": "1", "request_id": "r", "topic": "tax"})
    ['request_id']
    """
    for name in own:
        if name not in keys:
            raise KeyError(f"metadata key {name!r} is not declared: declare it with its embed flag (MetadataKey)")
    return sorted(name for name in metadata if name in keys and not keys[name].embed)


def result_from_metadata(metadata: Mapping[str, Any], text: str) -> OCRResult:
    """The parts of a page's :class:`OCRResult` that its structure needs, from its metadata (as :func:`page_metadata`
    or :func:`flat_metadata` wrote it) and its text.

    The LaTeX is ``latex`` (or the text itself, for a ``document_parsing`` page whose text is the LaTeX); tables
    come from ``tables_html`` (``tables_truncated`` marks the cut-off ones); ``fields``, ``lines`` and ``formulas``
    as written. Metadata written by someone else (no ``task``, none of these keys) gives a plain-text result.

    >>> result_from_metadata({"task": "document_parsing", "latex": "\\\\section{A} b"}, "## A\\n\\nb").latex
    '\\\\section{A} b'
    """
    task = _task(metadata.get("task"))
    result = OCRResult(text=text, raw_text=text, task=task, model=str(metadata.get("model") or ""))
    if task is Task.DOCUMENT_PARSING:
        latex = metadata.get("latex")
        result.latex = latex if isinstance(latex, str) else text
    html = _loads(metadata.get("tables_html"))
    if isinstance(html, list):
        cut = _loads(metadata.get("tables_truncated"))
        cut_off = set(cut) if isinstance(cut, list) else set()
        result.tables = [
            _table(item, i in cut_off) for i, item in enumerate(html) if isinstance(item, str) and item.strip()
        ]
    fields = _loads(metadata.get("fields"))
    if isinstance(fields, (dict, list)):
        result.fields = fields
    formulas = _loads(metadata.get("formulas"))
    if isinstance(formulas, list):
        result.formulas = [str(f) for f in formulas]
    lines = _loads(metadata.get("lines"))
    if isinstance(lines, list):
        result.lines = [line for line in (_line(item) for item in lines) if line is not None]
    return result


def _table(html: str, truncated: bool) -> Table:
    found = parse_tables(html)
    table = found[0] if found else Table()
    return table.model_copy(update={"truncated": True}) if truncated else table


def _task(value: Any) -> Task | None:
    try:
        return Task(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _line(item: Any) -> TextLine | None:
    if not isinstance(item, Mapping):
        return None
    try:
        location = item.get("location")
        if location is None:  # the box alone: its corners, clockwise from top-left
            left, top, right, bottom = item["bbox"]
            location = [left, top, right, top, right, bottom, left, bottom]
        xs, ys = location[0::2], location[1::2]
        rect = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys), 0.0)
        return TextLine(text=str(item["text"]), location=tuple(location), rotate_rect=rect)
    except (KeyError, TypeError, ValueError):
        return None


def json_safe(value: Any) -> JSONValue:
    """``value`` with JSON types only: mapping keys as strings, tuples as lists, anything else as its ``str``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _loads(value: Any) -> Any:
    """A structured value as written: JSON text (flat metadata) is read, a list or object is taken as it is."""
    if isinstance(value, (list, dict)):
        return value
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


class KeyList(list[str]):
    """A list of metadata key names that keeps each name once: adding a name it holds does nothing.

    ``SimpleDirectoryReader`` extends every reader's ``excluded_embed_metadata_keys`` and
    ``excluded_llm_metadata_keys`` with its own file keys (``file_name``, ``file_size``, ...), which the reader
    already hides; with this list each still appears once.

    >>> keys = KeyList(["file_name"]); keys.extend(["file_name", "file_size"]); keys
    ['file_name', 'file_size']
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self.extend(keys)

    def append(self, key: str) -> None:
        """Add ``key`` unless it is there."""
        if key not in self:
            super().append(key)

    def extend(self, keys: Iterable[str]) -> None:
        """Add each of ``keys`` that is not there, in order."""
        for key in keys:
            self.append(key)

    def insert(self, index: SupportsIndex, key: str) -> None:
        """Insert ``key`` at ``index`` unless it is there."""
        if key not in self:
            super().insert(index, key)

    def __iadd__(self, keys: Iterable[str]) -> Self:  # type: ignore[override,misc]
        self.extend(keys)
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls, handler(list[str]))
