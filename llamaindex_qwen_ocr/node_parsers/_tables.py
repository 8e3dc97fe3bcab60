"""A table laid out for retrieval: title rows, one header row, body rows; Markdown for a slice of the body.

Example::

    layout = TableLayout.of(table)                 # table: a qwen_ocr Table
    layout.markdown(layout.body[:20])              # the header row and the first 20 body rows
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qwen_ocr.results import Table, TableCell

__all__ = ["TableLayout"]


@dataclass(frozen=True)
class TableLayout:
    """How a table reads.

    Attributes:
        caption: the table's caption; without one, the text of its title rows (leading rows that do not have a
            cell per column, like a heading row the model wrote with fewer cells); ``""`` when neither exists.
        header: the column names: the first row after the title rows, or the leading ``<th>`` rows (and the rows
            their ``rowspan`` covers) merged top-down as ``"Group / Name"``.
        body: the rows below the header, spans repeated in every slot they cover; blank rows are left out.
        n_cols: columns (spans expanded).
        oversized: the table is too large to lay out (:attr:`qwen_ocr.results.Table.oversized`): then the header
            is the first row's cells and the body the other rows' cells, each cell once (spans not expanded), and
            ``n_cols`` the most cells in a row; show such a table as :meth:`Table.to_markdown` (a note and its HTML).

    >>> from qwen_ocr.results import TableCell
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
        if table.oversized:
            cells = [tuple(cell.text for cell in row) for row in table.rows]
            header = cells[0] if cells else ()
            body = tuple(row for row in cells[1:] if any(text.strip() for text in row))
            width = max((len(row) for row in cells), default=0)
            return cls(caption=(table.caption or "").strip(), header=header, body=body, n_cols=width, oversized=True)
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
        caption = (table.caption or "").strip() or " / ".join(titles)
        return cls(caption=caption, header=header, body=body, n_cols=n_cols)

    def markdown(self, rows: Sequence[Sequence[str]]) -> str:
        """A GitHub-flavoured Markdown table of the header and ``rows``."""
        if not self.header and not rows:
            return ""
        header = self.header or tuple("" for _ in range(self.n_cols))
        lines = [_md_row(header), "| " + " | ".join("---" for _ in header) + " |"]
        lines.extend(_md_row(row) for row in rows)
        return "\n".join(lines)


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
