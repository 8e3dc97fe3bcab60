"""What a page ``Document`` carries: its metadata keys, and the way back from metadata to an ``OCRResult``.

The reader writes a page's facts as flat metadata (every value a ``str``, ``int``, ``float`` or ``bool``, so any
vector store takes it) and keeps the task's raw structured output in keys that are excluded from the embedding
and LLM text. The node parser reads the raw output back with :func:`result_from_metadata` and hands it to
:func:`qwen_ocr.structure.blocks_from_result`, so the structure of a page is worked out in one place.

Example::

    meta = page_metadata(page_result)          # page_result: a qwen_ocr.reading.PageResult
    result = result_from_metadata(meta, text)  # an OCRResult with the same latex / tables / fields / lines
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qwen_ocr.reading import PageResult
from qwen_ocr.results import OCRResult, TextLine, build_result
from qwen_ocr.structure import blocks_from_result, latex_to_text
from qwen_ocr.tasks import Task

__all__ = [
    "HIDDEN_KEYS",
    "RAW_KEYS",
    "MetadataValue",
    "hidden_keys",
    "page_metadata",
    "readable_text",
    "result_from_metadata",
]

MetadataValue = str | int | float | bool
"""A metadata value: flat, so every LlamaIndex vector store accepts it."""

RAW_KEYS: tuple[str, ...] = ("latex", "html", "fields_json", "lines_json", "formulas_json")
"""The task's raw structured output on a page ``Document``:

- ``latex``: the LaTeX of ``document_parsing``;
- ``html``: the model's output holding HTML tables (``table_parsing``), as written, a cut-off table included;
- ``fields_json``: the extracted fields of ``key_information_extraction``, as JSON text;
- ``lines_json``: text lines with boxes (``advanced_recognition``, the local provider), as JSON text: a list of
  ``{"text", "bbox": [left, top, right, bottom], "location": [8 ints], "rotate_rect": [cx, cy, w, h, angle]}``
  in the pixels of ``page_width`` x ``page_height``;
- ``formulas_json``: the display formulas (``formula_recognition``, ``document_parsing``), as a JSON list.
"""

HIDDEN_KEYS: frozenset[str] = frozenset(
    {
        *RAW_KEYS,
        # what the reader adds besides file_path and page_label (SimpleDirectoryReader's choice: the path is context)
        "file_name",
        "page",
        "total_pages",
        "task",
        "model",
        "provider",
        "text_source",
        "request_id",
        "finish_reason",
        "truncated",
        "input_tokens",
        "output_tokens",
        "image_tokens",
        "total_tokens",
        "page_width",
        "page_height",
        "error",
        "error_type",
        # what SimpleDirectoryReader adds
        "file_type",
        "file_size",
        "creation_date",
        "last_modified_date",
        "last_accessed_date",
        # what the node parser adds
        "node_kind",
        "block_index",
        "heading_level",
        "bbox_json",
        "table_html",
        "table_index",
        "table_part",
        "table_parts",
        "row_start",
        "row_end",
        "n_rows",
        "n_cols",
        "oversized",
        "caption",
    }
)
"""Keys kept out of the text that is embedded and shown to the LLM (raw output, bookkeeping, token counts)."""


def hidden_keys(metadata: Mapping[str, Any], *extra: str) -> list[str]:
    """The keys of ``metadata`` (and ``extra``) to exclude from the embedding and LLM text, sorted."""
    return sorted({key for key in metadata if key in HIDDEN_KEYS} | set(extra))


def page_metadata(page: PageResult) -> dict[str, MetadataValue]:
    """A page's flat metadata: :meth:`PageResult.metadata` without ``None`` values or ``source``, plus usage and
    the raw structured output (:data:`RAW_KEYS`).

    >>> page_metadata(PageResult(source="a.pdf", index=0, label="1", total_pages=2))["page_label"]
    '1'
    """
    meta: dict[str, MetadataValue] = {}
    for key, value in page.metadata().items():
        if key != "source" and isinstance(value, (str, int, float, bool)):
            meta[key] = value
    result = page.result
    if result is None:
        return meta
    if result.usage.total_tokens:
        meta["total_tokens"] = result.usage.total_tokens
    if result.task is Task.DOCUMENT_PARSING and result.latex:
        meta["latex"] = result.latex
    elif result.tables:
        meta["html"] = result.text
    if result.fields is not None:
        meta["fields_json"] = _dumps(result.fields)
    if result.lines:
        meta["lines_json"] = _dumps(
            [
                {
                    "text": line.text,
                    "bbox": list(line.bbox),
                    "location": list(line.location),
                    "rotate_rect": list(line.rotate_rect),
                }
                for line in result.lines
            ]
        )
    if result.formulas:
        meta["formulas_json"] = _dumps(list(result.formulas))
    return meta


def readable_text(result: OCRResult) -> str:
    r"""The page text to embed: LaTeX and HTML turned into plain text and Markdown tables, fields as ``key: value``.

    >>> readable_text(OCRResult(task=Task.DOCUMENT_PARSING, latex="\\section{Intro} A \\textbf{bold} claim."))
    'Intro\n\nA bold claim.'
    """
    if result.task is Task.DOCUMENT_PARSING:
        return latex_to_text(result.latex or result.text)
    if result.tables or (result.task is Task.KEY_INFORMATION_EXTRACTION and result.fields is not None):
        return "\n\n".join(block.text for block in blocks_from_result(result) if block.text)
    return result.text


def result_from_metadata(metadata: Mapping[str, Any], text: str) -> OCRResult:
    """Rebuild the parts of a page's :class:`OCRResult` that structure needs, from :func:`page_metadata` output.

    ``text`` is the page ``Document``'s text (the model's text for tasks without raw output). Metadata written by
    someone else (no ``task``, no raw keys) gives a plain-text result.

    >>> result_from_metadata({"task": "document_parsing", "latex": "\\\\section{A} b"}, "A b").latex
    '\\\\section{A} b'
    """
    task = _task(metadata.get("task"))
    model = str(metadata.get("model") or "")
    latex = metadata.get("latex")
    html = metadata.get("html")
    if isinstance(html, str) and html:
        result = build_result(html, task=task, model=model)
    elif task is Task.DOCUMENT_PARSING and isinstance(latex, str):
        result = OCRResult(text=latex, raw_text=latex, task=task, latex=latex, model=model)
    else:
        result = OCRResult(text=text, raw_text=text, task=task, model=model)
    fields = _loads(metadata.get("fields_json"))
    if isinstance(fields, (dict, list)):
        result.fields = fields
    formulas = _loads(metadata.get("formulas_json"))
    if isinstance(formulas, list):
        result.formulas = [str(f) for f in formulas]
    lines = _loads(metadata.get("lines_json"))
    if isinstance(lines, list):
        result.lines = [line for line in (_line(item) for item in lines) if line is not None]
    return result


def _task(value: Any) -> Task | None:
    try:
        return Task(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _line(item: Any) -> TextLine | None:
    if not isinstance(item, dict):
        return None
    try:
        location = item["location"]
        rect = item.get("rotate_rect") or _rect(location)
        return TextLine(text=str(item["text"]), location=tuple(location), rotate_rect=tuple(rect))
    except (KeyError, TypeError, ValueError):
        return None


def _rect(location: list[int]) -> list[float]:
    xs, ys = location[0::2], location[1::2]
    return [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys), 0.0]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _loads(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
