"""How a table reads: its title, one header row, body rows; the one table layout of every integration.

:meth:`Table.to_markdown <qwen_ocr.results.Table.to_markdown>`, :meth:`OCRResult.to_markdown
<qwen_ocr.results.OCRResult.to_markdown>`, the LangChain loader and the LlamaIndex node parser all lay tables out
here, so a table reads the same everywhere:

- **title rows**: leading rows that do not have a cell per column (a heading row spanning the table, or one the
  model wrote with fewer cells) are not the header; their text becomes the table's title, on a line above it,
  after the ``<caption>`` when there is one;
- **header**: the first row after the title rows, or the leading ``<th>`` rows (and the rows their ``rowspan``
  covers) merged top-down into one row of ``"Group / Name"`` column names;
- **body**: the rows below the header, spans repeated in every slot they cover; blank rows are left out.

Example::

    layout = TableLayout.of(table)                 # table: a qwen_ocr Table
    layout.markdown(layout.body[:20])              # the header row and the first 20 body rows
    table.to_markdown()                            # the title, then the whole table
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import Table, TableCell

__all__ = ["TableLayout", "table_markdown"]


@dataclass(frozen=True)
class TableLayout:
    """How a table reads.

    Attributes:
        caption: the table's title: its ``<caption>`` and the text of its title rows, joined by ``" / "`` (each
            title row's cells by ``"; "``); ``""`` when it has neither.
        header: the column names (see the module docstring).
        body: the rows below the header, spans repeated in every slot they cover; blank rows are left out.
        n_cols: columns (spans expanded).
        oversized: the table is too large to lay out (:attr:`qwen_ocr.results.Table.oversized`): then the header
            is the first row's cells and the body the other rows' cells, each cell once (spans not expanded), and
            ``n_cols`` the most cells in a row; such a table reads as a note and its HTML (:func:`table_markdown`).

    >>> from qwen_ocr.results import Table, TableCell
    >>> t = Table(rows=[[TableCell(text="Qty"), TableCell(text="Item")], [TableCell(text="2"), TableCell(text="pen")]])
    >>> TableLayout.of(t).markdown(TableLayout.of(t).body)
    '| Qty | Item |\\n| --- | --- |\\n| 2 | pen |'
    """

    caption: str
    header: tuple[str, ...]
    body: tuple[tuple[str, ...], ...]
    n_cols: int
    oversized: bool = False

    @classmethod
    def of(cls, table: Table) -> TableLayout:
        """Lay out a parsed table (an oversized one cell by cell, see :attr:`oversized`)."""
        return cls._of(table, table.oversized)

    @classmethod
    def _of(cls, table: Table, oversized: bool) -> TableLayout:
        caption = (table.caption or "").strip()
        if oversized:
            cells = [tuple(cell.text for cell in row) for row in table.rows]
            header = cells[0] if cells else ()
            body = tuple(row for row in cells[1:] if any(text.strip() for text in row))
            width = max((len(row) for row in cells), default=0)
            return cls(caption=caption, header=header, body=body, n_cols=width, oversized=True)
        grid = table.grid()
        n_cols = max((len(row) for row in grid), default=0)
        rows = table.rows
        start = 0
        titles: list[str] = []
        while start < len(rows) - 1 and _is_title_row(rows, start, n_cols):
            texts = [cell.text.strip() for cell in rows[start] if cell.text.strip()]
            if texts:
                titles.append("; ".join(texts))
            start += 1
        end = start + 1
        if start < len(rows) and rows[start] and all(cell.header for cell in rows[start]):
            while end < len(rows) and rows[end] and all(cell.header for cell in rows[end]):
                end += 1
        # a header cell spanning rows pulls the rows it covers into the header
        r = start
        while r < min(end, len(rows)):
            end = max(end, *(r + cell.rowspan for cell in rows[r])) if rows[r] else end
            r += 1
        end = min(end, len(grid))
        header = _merge_header(grid[start:end], n_cols) if start < len(grid) else ()
        body = tuple(tuple(row) for row in grid[end:] if any(cell.strip() for cell in row))
        title = " / ".join(text for text in (caption, *titles) if text)
        return cls(caption=title, header=header, body=body, n_cols=n_cols)

    def markdown(self, rows: Sequence[Sequence[str]], *, caption: bool = False) -> str:
        """A GitHub-flavoured Markdown table of the header and ``rows``; with ``caption=True`` the
        :attr:`caption` on a line above it (a blank line between)."""
        table = ""
        if self.header or rows:
            header = self.header or tuple("" for _ in range(self.n_cols))
            lines = [_md_row(header), "| " + " | ".join("---" for _ in header) + " |"]
            lines.extend(_md_row(row) for row in rows)
            table = "\n".join(lines)
        return _titled(self.caption if caption else "", table)


def table_markdown(table: Table, *, caption: bool = True) -> str:
    """The Markdown of a table (what :meth:`Table.to_markdown <qwen_ocr.results.Table.to_markdown>` gives): its
    title (``caption=True``), a blank line, the header and every body row. An :attr:`~TableLayout.oversized`
    table is not laid out: a one-line note saying why, then its HTML (spans as written), one ``<tr>`` per line."""
    reason = table.oversized_reason
    layout = TableLayout._of(table, reason is not None)
    if reason is None:
        return layout.markdown(layout.body, caption=caption)
    rows = table.to_html().replace("</tr>", "</tr>\n").rstrip()
    note = f"[Table too large to lay out: {reason}. Its HTML follows, spans as written.]\n{rows}"
    return _titled(layout.caption if caption else "", note)


def _titled(title: str, body: str) -> str:
    if title and body:
        return f"{title}\n\n{body}"
    return title or body


def _is_title_row(rows: Sequence[Sequence[TableCell]], r: int, n_cols: int) -> bool:
    """A leading row that does not have a cell per column: one cell across the table, or fewer cells than it is
    wide (the model wrote a heading row with fewer cells); or a blank row."""
    row = rows[r]
    if not row or n_cols < 2:
        return False
    if not any(cell.text.strip() for cell in row):
        return True  # a blank leading row
    width = sum(cell.colspan for cell in row)
    return len(row) == 1 or width < n_cols


def _merge_header(rows: Sequence[Sequence[str]], n_cols: int) -> tuple[str, ...]:
    out = []
    for c in range(n_cols):
        parts: list[str] = []
        for row in rows:
            text = row[c].strip() if c < len(row) else ""
            if text and (not parts or parts[-1] != text):
                parts.append(text)
        out.append(" / ".join(parts))
    return tuple(out)


def _md_row(row: Sequence[str]) -> str:
    cells = [v.strip().replace("|", "\\|").replace("\n", "<br>") for v in row]
    return "| " + " | ".join(cells) + " |"
