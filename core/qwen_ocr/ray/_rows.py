"""The rows of a Ray reading: one per page, every row with the same columns and types (pure, no Ray).

A page's values come from :meth:`PageResult.metadata() <qwen_ocr.PageResult.metadata>`, the metadata every
integration shares, so a row holds what a LangChain ``Document`` or a LlamaIndex node would: the structured output
of the task (``lines``, ``fields``, tables, formulas) as JSON text, ``None`` where the page has none.

Example::

    row = page_row(page)                 # page: a qwen_ocr.PageResult
    row["text"], row["error"], json.loads(row["fields"] or "null")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..page_metadata import page_metadata

if TYPE_CHECKING:
    import pyarrow as pa

    from ..reading import PageResult

__all__ = ["COLUMNS", "JSON_COLUMNS", "page_row", "row_schema", "rows_table"]

COLUMNS: dict[str, str] = {
    "source": "string",
    "page": "int64",
    "page_label": "string",
    "total_pages": "int64",
    "text": "string",
    "error": "string",
    "error_type": "string",
    "error_code": "string",
    "file_failed": "bool_",
    "text_source": "string",
    "task": "string",
    "model": "string",
    "provider": "string",
    "request_id": "string",
    "finish_reason": "string",
    "truncated": "bool_",
    "cache_hit": "bool_",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "image_tokens": "int64",
    "total_tokens": "int64",
    "page_width": "float64",
    "page_height": "float64",
    "lines": "string",
    "fields": "string",
    "tables_html": "string",
    "tables_oversized": "string",
    "tables_truncated": "string",
    "latex": "string",
    "formulas": "string",
}
"""Every column of a row and its Arrow type, in order. ``page`` is 0-based; ``error`` is the failed page's message
(``None`` for a page read); ``file_failed`` marks the one row that stands for a file that could not be read at
all (``page`` 0, ``page_label`` ``""``)."""

JSON_COLUMNS: tuple[str, ...] = ("lines", "fields", "tables_html", "tables_oversized", "tables_truncated", "formulas")
"""The columns holding the task's structured output as JSON text (``json.loads`` gives what
:func:`qwen_ocr.page_metadata.structured_metadata` gives); ``latex`` is the LaTeX text itself."""


def page_row(page: PageResult) -> dict[str, Any]:
    """One row: every column of :data:`COLUMNS`, ``None`` where the page has no value.

    >>> from qwen_ocr import PageResult
    >>> row = page_row(PageResult(source="a.pdf", index=2, label="iii", total_pages=9))
    >>> row["page"], row["page_label"], row["text"], row["fields"], len(row) == len(COLUMNS)
    (2, 'iii', '', None, True)
    """
    meta = page_metadata(page)
    row: dict[str, Any] = {name: None for name in COLUMNS}
    for name in COLUMNS:
        value = meta.get(name)
        if name in JSON_COLUMNS and value is not None:
            value = json.dumps(value, ensure_ascii=False)
        row[name] = value
    row["text"] = page.text
    row["file_failed"] = page.file_failed
    row["cache_hit"] = meta.get("cache") == "hit"
    if row["page_width"] is not None:
        row["page_width"], row["page_height"] = float(row["page_width"]), float(row["page_height"])
    return row


def row_schema(extra: pa.Schema | None = None) -> pa.Schema:
    """The Arrow schema of the rows (:data:`COLUMNS`), followed by the fields of ``extra`` (a mapper's input
    columns carried along)."""
    import pyarrow as pa

    fields = [pa.field(name, getattr(pa, kind)()) for name, kind in COLUMNS.items()]
    if extra is not None:
        fields.extend(extra)
    return pa.schema(fields)


def rows_table(rows: Sequence[Mapping[str, Any]], carried: pa.Table | None = None) -> pa.Table:
    """The rows as an Arrow table of :func:`row_schema` (the same types whatever the values, ``None`` included);
    ``carried`` (as many rows) adds its columns after them."""
    import pyarrow as pa

    schema = row_schema()
    columns = [pa.array([row[field.name] for row in rows], type=field.type) for field in schema]
    table = pa.Table.from_arrays(columns, schema=schema)
    if carried is not None:
        for name, column in zip(carried.column_names, carried.columns, strict=True):
            table = table.append_column(carried.schema.field(name), column)
    return table
