"""Tolerant readers of what the model writes: code fences, JSON, HTML tables, LaTeX, formulas (pure, no I/O).

Model output is wrapped in fences, cut off at ``max_tokens``, written with single quotes or ``"null"``. Every
function here returns its best reading and never raises on strange input; the caller keeps the raw text.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "bracket_depth",
    "extract_formulas",
    "parse_html_tables",
    "parse_json_tolerant",
    "read_json",
    "strip_fences",
    "value_depth",
]

_FENCE_OPEN = re.compile(r"^\s*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n?")
_FENCE_CLOSE = re.compile(r"\r?\n?[ \t]*```\s*$")


def strip_fences(text: str) -> str:
    """Remove one surrounding Markdown code fence (```` ```json ````, ```` ```html ````, ...), closed or not.

    >>> strip_fences("```json\\n{\\"a\\": 1}\\n```")
    '{"a": 1}'
    """
    opened = _FENCE_OPEN.match(text)
    if not opened:
        return text.strip()
    body = text[opened.end() :]
    closed = _FENCE_CLOSE.search(body)
    if closed:
        body = body[: closed.start()]
    return body.strip()


MAX_JSON_DEPTH = 100
"""The deepest nesting of arrays and objects read from model output. Real readings nest a few levels (a key
extraction schema at most 3); far deeper output is a model gone astray, and reading it would exhaust the interpreter's
stack or the serializer's depth limit (so the result could not be cached or sent on). Such output is not parsed:
the result keeps it in ``raw_text`` and says why in ``metadata["parse_error"]``."""


def parse_json_tolerant(text: str) -> Any:
    """Read JSON the way models write it: fenced, single-quoted, with ``"null"`` strings or a cut-off tail.

    Returns the parsed value (``"null"`` strings become ``None``), or ``None`` when nothing JSON-like is there, or
    when it nests deeper than :data:`MAX_JSON_DEPTH` (:func:`read_json` says which).

    >>> parse_json_tolerant("```json\\n{'Total': '12.50', 'Tip': 'null'}\\n```")
    {'Total': '12.50', 'Tip': None}
    """
    return read_json(text)[0]


def read_json(text: str) -> tuple[Any, str | None]:
    """:func:`parse_json_tolerant`'s reading, and why nothing was read when the JSON nests too deeply (else ``None``).

    >>> read_json("[" * 500 + "]" * 500)[1]
    'JSON nested 500 levels deep (more than the 100 read); not parsed'
    """
    body = strip_fences(text)
    if not body:
        return None, None
    # Counting brackets runs at C speed and settles the common case; only text with many of them is scanned.
    if body.count("[") + body.count("{") > MAX_JSON_DEPTH and (depth := bracket_depth(body)) > MAX_JSON_DEPTH:
        return None, _too_deep(depth)
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):
        start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
        if start < 0:
            return None, None
        try:
            import json_repair  # only for text that is not JSON as given (issue 17: a light import)

            value = json_repair.loads(body[start:])
        except Exception:  # json_repair is best-effort; it must never break a result
            return None, None
        if value == "" or value == []:
            return None, None
    if value_depth(value) > MAX_JSON_DEPTH:  # what the repair made of it, measured without recursion
        return None, _too_deep(None)
    return _nullify(value), None


def _too_deep(depth: int | None) -> str:
    if depth is None:
        return f"JSON nested more than the {MAX_JSON_DEPTH} levels read; not parsed"
    return f"JSON nested {depth} levels deep (more than the {MAX_JSON_DEPTH} read); not parsed"


def bracket_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``text``, outside double-quoted strings (a linear scan; no parse).

    >>> bracket_depth('{"a": [1, "]]]", {"b": []}]}')
    4
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def value_depth(value: Any) -> int:
    """The nesting depth of lists and dicts in a parsed value, measured without recursion; the count stops as soon
    as it passes :data:`MAX_JSON_DEPTH` (a container inside itself counts as unbounded).

    >>> value_depth({"a": [1, {"b": 2}]}), value_depth("x")
    (3, 0)
    """
    deepest = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(value, 0, frozenset())]
    while stack:
        item, depth, ancestors = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            continue
        if id(item) in ancestors:
            return 10**9  # a container inside itself
        depth += 1
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth  # deep enough to refuse; no need to walk the rest
        inner = ancestors | {id(item)}
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth, inner) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest


def _nullify(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "null":
        return None
    if isinstance(value, dict):
        return {str(k): _nullify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nullify(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------------------
# HTML tables

RawCell = dict[str, Any]
RawTable = dict[str, Any]


class _TableReader(HTMLParser):
    """Collects <table> elements as rows of cells; survives unclosed tags and a cut-off tail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[RawTable] = []
        self._stack: list[RawTable] = []
        self._cell: RawCell | None = None

    @property
    def _table(self) -> RawTable | None:
        return self._stack[-1] if self._stack else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag == "table":
            if self._cell is not None:  # a table nested in a cell: keep it as its own table
                self._close_cell()
            table: RawTable = {
                "rows": [],
                "closed": False,
                "caption": None,
                "_caption": None,
                "_row_open": False,
            }
            self._stack.append(table)
            self.tables.append(table)
            return
        table_ = self._table
        if table_ is None:
            return
        if tag == "tr":
            self._close_cell()
            table_["rows"].append([])
            table_["_row_open"] = True
        elif tag in ("td", "th"):
            self._close_cell()
            if not table_["rows"] or not table_["_row_open"]:
                table_["rows"].append([])
                table_["_row_open"] = True
            self._cell = {
                "text": [],
                "rowspan": _span(attrs, "rowspan"),
                "colspan": _span(attrs, "colspan"),
                "header": tag == "th",
                "closed": False,
            }
            table_["rows"][-1].append(self._cell)
        elif tag == "caption":
            table_["_caption"] = []
        elif tag == "br" and self._cell is not None:
            self._cell["text"].append("\n")

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        table_ = self._table
        if table_ is None:
            return
        if tag in ("td", "th"):
            if self._cell is not None:
                self._cell["closed"] = True
            self._close_cell()
        elif tag == "tr":
            self._close_cell()
            table_["_row_open"] = False
        elif tag == "caption" and table_["_caption"] is not None:
            table_["caption"] = " ".join("".join(table_["_caption"]).split()) or None
            table_["_caption"] = None
        elif tag == "table":
            self._close_cell()
            table_["closed"] = True
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        table_ = self._table
        if self._cell is not None:
            self._cell["text"].append(data)
        elif table_ is not None and table_["_caption"] is not None:
            table_["_caption"].append(data)

    def _close_cell(self) -> None:
        self._cell = None


def _span(attrs: list[tuple[str, str | None]], name: str) -> int:
    for key, value in attrs:
        if key.lower() == name and value:
            digits = re.match(r"\s*(\d+)", value)
            if digits:
                return max(1, min(int(digits.group(1)), 1000))
    return 1


def parse_html_tables(text: str) -> list[RawTable]:
    """Find every ``<table>`` in model output, with cells, spans and whether it was cut off.

    Each table is ``{"rows": [[{"text", "rowspan", "colspan", "header"}]], "caption", "truncated", "html"}``.
    A table cut off at ``max_tokens`` keeps its complete rows only and says ``truncated=True``.

    >>> [t["truncated"] for t in parse_html_tables("<table><tr><td>a</td></tr><tr><td>b")]
    [True]
    """
    if "<table" not in text.lower() and "<tr" not in text.lower():
        return []
    body = strip_fences(text)
    if "<table" not in body.lower():  # rows without a table tag: wrap them
        body = f"<table>{body}"
    reader = _TableReader()
    try:
        reader.feed(body)
        reader.close()
    except Exception:  # html.parser is lenient; this guards the impossible
        return []
    out: list[RawTable] = []
    for table in reader.tables:
        rows: list[list[RawCell]] = table["rows"]
        truncated = not table["closed"]
        if truncated:
            rows = _complete_rows(rows)
        rows = [row for row in rows if row]
        cleaned = [
            [
                {
                    "text": _cell_text(cell["text"]),
                    "rowspan": cell["rowspan"],
                    "colspan": cell["colspan"],
                    "header": cell["header"],
                }
                for cell in row
            ]
            for row in rows
        ]
        out.append({"rows": cleaned, "caption": table["caption"], "truncated": truncated})
    return out


def _complete_rows(rows: list[list[RawCell]]) -> list[list[RawCell]]:
    """Drop the last row of a cut-off table when it is shorter than the rows above or its last cell is open."""
    if not rows:
        return rows
    last = rows[-1]
    width = max((sum(c["colspan"] for c in r) for r in rows[:-1]), default=0)
    last_width = sum(c["colspan"] for c in last)
    if not last or not last[-1]["closed"] or (width and last_width < width):
        return rows[:-1]
    return rows


def _cell_text(parts: list[str]) -> str:
    text = "".join(parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------------------------------------------
# Formulas

_DISPLAY_MATH = re.compile(
    r"\$\$(?P<a>.+?)\$\$"
    r"|\\\[(?P<b>.+?)\\\]"
    r"|\\begin\{(?P<env>equation|align|gather|multline|eqnarray|displaymath)(?P<star>\*?)\}(?P<c>.+?)"
    r"\\end\{(?P=env)(?P=star)\}",
    re.DOTALL,
)


def extract_formulas(text: str) -> list[str]:
    """Display formulas in LaTeX output: ``$$...$$``, ``\\[...\\]``, and equation/align-like environments.

    Environments are returned whole (``\\begin{align*}...\\end{align*}``) so they render as written; ``$$`` and
    ``\\[`` delimiters are removed.

    >>> extract_formulas("$$x^2$$ and \\\\[y\\\\]")
    ['x^2', 'y']
    """
    body = strip_fences(text)
    found: list[str] = []
    for match in _DISPLAY_MATH.finditer(body):
        if match.group("env"):
            found.append(match.group(0).strip())
        else:
            inner = (match.group("a") or match.group("b") or "").strip()
            if inner:
                found.append(inner)
    if not found:
        stripped = body.strip()
        if stripped.startswith("$") and stripped.endswith("$") and len(stripped) > 2:
            found.append(stripped.strip("$").strip())
    return found
