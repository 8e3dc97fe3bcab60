"""How a page reads as text: the one page-text policy of the CLI, the LangChain loader and the LlamaIndex reader.

Integrations choose a :data:`ContentFormat`; they do not re-implement it, so the same page gives the same text in
every integration (Markdown by default):

- ``"markdown"`` (default): a ``document_parsing`` page's LaTeX as Markdown (``#`` title, ``##`` sections, ``-``
  list items, Markdown tables, ``$$`` display formulas, paragraphs); HTML tables in the text as Markdown tables
  (their title on a line above, see :mod:`qwen_ocr.tables`), so a text splitter cuts them between rows, never inside
  a tag; extracted fields as ``key: value`` lines (``Items[0].name: pen``); any other text as the model wrote it.
- ``"text"``: the same, but LaTeX as plain paragraphs (headings and list items as lines of their own, no ``#``,
  ``-`` or ``$$`` marks). Tables and fields read as in ``"markdown"``.
- ``"raw"``: the model's text as it wrote it (fences removed): :attr:`OCRResult.text`.

Example::

    result = QwenOCR().ocr("paper.png", task="document_parsing")
    result.to_markdown()                 # render(result, "markdown")
    result.to_text()                     # render(result, "text")
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import InvalidArgumentError
from .tasks import Task

if TYPE_CHECKING:
    from .results import OCRResult, Table
    from .structure import Block

__all__ = [
    "CONTENT_FORMATS",
    "ContentFormat",
    "blocks_to_markdown",
    "blocks_to_text",
    "check_content_format",
    "field_rows",
    "render",
    "tables_to_markdown",
    "without_table_captions",
]

ContentFormat = Literal["markdown", "text", "raw"]
"""What a page's text holds; see the module docstring."""

CONTENT_FORMATS: tuple[ContentFormat, ...] = get_args(ContentFormat)

_TABLE_HTML = re.compile(r"<table\b.*?(?:</table\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_BLANK_LINES = re.compile(r"\n{3,}")


def check_content_format(value: object) -> ContentFormat:
    """``value`` if it is a :data:`ContentFormat`; else an :class:`InvalidArgumentError` naming the choices."""
    if value in CONTENT_FORMATS:
        return value
    choices = ", ".join(repr(c) for c in CONTENT_FORMATS)
    raise InvalidArgumentError(f"content_format={value!r}; use one of {choices}.", code="InvalidArgument")


def render(result: OCRResult | None, content_format: ContentFormat = "markdown") -> str:
    """A result's text in ``content_format`` (``""`` for no result); see the module docstring.

    >>> from qwen_ocr.results import OCRResult
    >>> render(OCRResult(task=Task.DOCUMENT_PARSING, latex="\\\\section{Intro} A \\\\textbf{bold} claim."))
    '## Intro\\n\\nA bold claim.'
    >>> render(OCRResult(task=Task.DOCUMENT_PARSING, latex="\\\\section{Intro} A \\\\textbf{bold} claim."), "text")
    'Intro\\n\\nA bold claim.'
    >>> render(OCRResult(text='{"Total": 3}', task=Task.KEY_INFORMATION_EXTRACTION, fields={"Total": 3}))
    'Total: 3'
    """
    if result is None:
        return ""
    check_content_format(content_format)
    if content_format == "raw":
        return result.text
    if result.task is Task.DOCUMENT_PARSING:
        from .structure import blocks_from_result

        blocks = blocks_from_result(result)
        text = blocks_to_markdown(blocks) if content_format == "markdown" else blocks_to_text(blocks)
        return text or result.text
    if result.task is Task.KEY_INFORMATION_EXTRACTION and result.fields is not None:
        return "\n".join(f"{key}: {value}" for key, value in field_rows(result.fields)) or result.text
    if result.tables:
        return tables_to_markdown(result.text, result.tables)
    return result.text


def tables_to_markdown(text: str, tables: Sequence[Table]) -> str:
    """``text`` with each HTML ``<table>`` replaced by its Markdown (:meth:`Table.to_markdown`, title included).

    ``tables`` are the result's parsed tables, in the order they appear. When the two cannot be matched one to one
    (a table nested in a table, stray rows), the text is returned unchanged: the HTML stays, nothing is lost.

    >>> from qwen_ocr.results import Table, TableCell
    >>> t = Table(rows=[[TableCell(text="a"), TableCell(text="b")], [TableCell(text="1"), TableCell(text="2")]])
    >>> print(tables_to_markdown("Totals:<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>",
    ...                          [t]))
    Totals:
    <BLANKLINE>
    | a | b |
    | --- | --- |
    | 1 | 2 |
    """
    if not tables:
        return text
    spans = list(_TABLE_HTML.finditer(text))
    if not spans:
        # Rows without a <table> tag: the parser wrapped the whole output as one table.
        if len(tables) == 1 and "<tr" in text.lower() and text.lstrip().lower().startswith("<tr"):
            return tables[0].to_markdown()
        return text
    if len(spans) != len(tables):
        return text
    parts: list[str] = []
    position = 0
    for match, table in zip(spans, tables, strict=True):
        parts.append(text[position : match.start()])
        parts.append(f"\n\n{table.to_markdown()}\n\n")
        position = match.end()
    parts.append(text[position:])
    return _BLANK_LINES.sub("\n\n", "".join(parts)).strip()


def without_table_captions(blocks: Iterable[Block]) -> list[Block]:
    """The blocks without the ``"caption"`` blocks that name a table on the page: a table's text carries its
    caption (:meth:`Table.to_markdown`), so such a caption is not read twice."""
    blocks = list(blocks)
    captions = {b.table.caption for b in blocks if b.kind == "table" and b.table is not None and b.table.caption}
    return [b for b in blocks if not (b.kind == "caption" and b.text in captions)]


def blocks_to_markdown(blocks: Iterable[Block]) -> str:
    """Blocks as Markdown: ``#`` headings (the title ``#``, ``\\section`` ``##``, ...), ``-`` list items indented by
    depth, Markdown tables, ``$$`` display formulas, paragraphs; blank lines between blocks.

    >>> from qwen_ocr.structure import latex_to_blocks
    >>> latex = r"\\section{Intro} Some text. \\begin{itemize}\\item one\\end{itemize}"
    >>> print(blocks_to_markdown(latex_to_blocks(latex)))
    ## Intro
    <BLANKLINE>
    Some text.
    <BLANKLINE>
    - one
    """
    parts: list[str] = []
    previous: str | None = None
    for block in without_table_captions(blocks):
        text = block.text.strip()
        if not text:
            continue
        if block.kind == "title":
            rendered = f"# {text}"
        elif block.kind == "heading":
            rendered = f"{'#' * min(6, max(1, block.level + 1))} {text}"
        elif block.kind == "list_item":
            rendered = f"{'  ' * max(0, block.level - 1)}- {text}"
        elif block.kind == "formula":
            rendered = f"$$\n{text}\n$$"
        else:
            rendered = text
        if parts:
            parts.append("\n" if block.kind == previous == "list_item" else "\n\n")
        parts.append(rendered)
        previous = block.kind
    return "".join(parts)


def blocks_to_text(blocks: Iterable[Block]) -> str:
    """Blocks as plain text: each block's text, blank lines between them.

    >>> from qwen_ocr.structure import latex_to_blocks
    >>> blocks_to_text(latex_to_blocks(r"\\section{Intro} A \\textbf{bold} claim."))
    'Intro\\n\\nA bold claim.'
    """
    return "\n\n".join(block.text for block in without_table_captions(blocks) if block.text)


def field_rows(value: Any, key: str = "") -> list[tuple[str, str]]:
    """``(key, value)`` rows of nested JSON fields: ``("Seller", "ACME")``, ``("Items[0].name", "pen")``; an empty
    value reads ``""``, ``true``/``false`` as in JSON.

    >>> field_rows({"Seller": "ACME", "Items": [{"name": "pen", "paid": True}], "Note": None})
    [('Seller', 'ACME'), ('Items[0].name', 'pen'), ('Items[0].paid', 'true'), ('Note', '')]
    """
    if not key and not value:
        return []
    if isinstance(value, dict) and value:
        rows: list[tuple[str, str]] = []
        for k, v in value.items():
            rows.extend(field_rows(v, f"{key}.{k}" if key else str(k)))
        return rows
    if isinstance(value, list) and value:
        rows = []
        for i, v in enumerate(value):
            rows.extend(field_rows(v, f"{key}[{i}]"))
        return rows
    if value is None or value == {} or value == []:
        shown = ""
    elif isinstance(value, str):
        shown = value
    elif isinstance(value, (bool, int, float)):
        shown = json.dumps(value)
    else:
        shown = str(value)
    return [(key, shown)]
