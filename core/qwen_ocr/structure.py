"""Document structure: a Qwen-OCR result as an ordered list of blocks (pure, no I/O).

``document_parsing`` answers in LaTeX; :func:`latex_to_blocks` reads it with a real LaTeX parser (pylatexenc, in
tolerant mode) into titles, headings with their heading paths, paragraphs, list items, tables, formulas and
captions. :func:`blocks_from_result` does the same for every task: tables for ``table_parsing``, one fields block
for ``key_information_extraction``, text lines with boxes for ``advanced_recognition``, formulas for
``formula_recognition`` and paragraphs otherwise. Model output is often cut off at ``max_tokens`` or has unbalanced
braces; these functions never raise on strange text and fall back to plain paragraphs.

Heading levels are LaTeX's own sectioning depths (see :data:`HEADING_LEVELS`): ``\\part`` -1, ``\\chapter`` 0,
``\\section`` 1, ``\\subsection`` 2, ``\\subsubsection`` 3, ``\\paragraph`` 4, ``\\subparagraph`` 5. The document
title (``\\title``) is a ``"title"`` block of level 0; it is not part of heading paths. A list item's level is its
nesting depth (1 for a top-level list).

Example::

    from qwen_ocr.structure import blocks_from_result, latex_to_blocks

    blocks = latex_to_blocks(
        r"\\section{Intro} We use $x^2$. \\subsection{Data} \\begin{itemize}\\item one\\end{itemize}"
    )
    [(b.kind, b.text, b.heading_path) for b in blocks]
    # [('heading', 'Intro', ('Intro',)), ('paragraph', 'We use x^2.', ('Intro',)),
    #  ('heading', 'Data', ('Intro', 'Data')), ('list_item', 'one', ('Intro', 'Data'))]

    result = QwenOCR().ocr("page.png", task="document_parsing")
    for block in blocks_from_result(result):
        print(block.index, block.kind, " > ".join(block.heading_path), block.text[:60])
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pylatexenc import latex2text, latexwalker, macrospec  # type: ignore[import-untyped]

from .errors import InvalidArgumentError
from .parsing import strip_fences
from .rendering import blocks_to_text, field_rows
from .results import OCRResult, Table, TableCell, parse_tables
from .tasks import Task

__all__ = [
    "HEADING_LEVELS",
    "Block",
    "BlockKind",
    "blocks_from_result",
    "latex_to_blocks",
    "latex_to_text",
]

BlockKind = Literal["title", "heading", "paragraph", "list_item", "table", "formula", "caption", "fields", "line"]

HEADING_LEVELS: dict[str, int] = {
    "part": -1,
    "chapter": 0,
    "section": 1,
    "addsec": 1,
    "subsection": 2,
    "subsubsection": 3,
    "paragraph": 4,
    "subparagraph": 5,
}
"""Level of each LaTeX sectioning command (LaTeX's own depth numbers); starred forms have the same level."""


@dataclass(frozen=True)
class Block:
    """One structural element of a page, in reading order.

    Attributes:
        kind: what the block is.
        text: plain readable text. LaTeX markup is removed (inline math is kept as its readable source, ``x^2``);
            a table's text is its Markdown (:meth:`Table.to_markdown`; for an ``oversized`` table a note and its
            HTML); a formula's is its LaTeX (without ``$$`` or ``\\[`` delimiters; environments whole); a fields
            block's is a ``key: value`` listing.
        index: position in reading order, 0-based.
        level: for headings the LaTeX depth (:data:`HEADING_LEVELS`, ``\\section`` is 1); for list items the list
            nesting depth (1 = top level); 0 otherwise (the title is 0).
        heading_path: the enclosing headings, outermost first; for a heading its parents plus itself.
        table: the table, for ``kind == "table"`` (``truncated`` says it was cut off).
        latex: the block's LaTeX source, when it came from LaTeX (as read: an unescaped ``50%`` reads ``50\\%``).
        bbox: ``(left, top, right, bottom)`` of a ``"line"`` block, in pixels of the image passed in.
        fields: the extracted key-value JSON, for ``kind == "fields"``.
    """

    kind: BlockKind
    text: str
    index: int
    level: int = 0
    heading_path: tuple[str, ...] = ()
    table: Table | None = field(default=None, hash=False)
    latex: str | None = None
    bbox: tuple[int, int, int, int] | None = None
    fields: dict[str, Any] | list[Any] | None = field(default=None, hash=False)


# --------------------------------------------------------------------------------------------------------------
# Public functions


def latex_to_blocks(latex: str) -> list[Block]:
    """Read a LaTeX document or fragment (as ``document_parsing`` writes it) into blocks in reading order.

    Handles the preamble (``\\title``, ``\\author``, ``\\date`` become a title block and paragraphs), sectioning
    commands (headings with heading paths), the ``abstract`` environment, paragraphs, lists, display math, tabular
    environments (with ``\\multicolumn`` and ``\\multirow``), HTML ``<table>`` elements embedded in the text, and
    figure and table captions. A caption inside a ``table`` environment becomes the ``Table.caption`` and stays a
    ``"caption"`` block too. Unknown macros and environments keep their text. Output cut off mid-environment gives
    the blocks read so far (a cut-off tabular is ``truncated``, with complete rows only); text the parser cannot
    read at all comes back as paragraphs.

    >>> [(b.kind, b.text) for b in latex_to_blocks(r"\\section{Intro} A \\textbf{bold} claim.")]
    [('heading', 'Intro'), ('paragraph', 'A bold claim.')]
    """
    if not isinstance(latex, str):
        raise InvalidArgumentError(f"latex must be a string, not {type(latex).__name__}.", code="InvalidArgument")
    body = strip_fences(latex)
    if not body:
        return []
    try:
        return _LatexReader(body).read()
    except Exception:  # the parser on pathological input (RecursionError, ...): plain paragraphs, never an error
        return _fallback_blocks(body)


def latex_to_text(latex: str) -> str:
    """Plain readable text of a LaTeX document or fragment: its blocks' text, separated by blank lines
    (:func:`qwen_ocr.rendering.blocks_to_text`; a caption that names a table is read with the table).

    >>> latex_to_text(r"\\textbf{Caf\\'e} costs 5\\,\\% --- see $x^2$.")
    'Café costs 5 % — see x^2.'
    """
    return blocks_to_text(latex_to_blocks(latex))


def blocks_from_result(result: OCRResult) -> list[Block]:
    """The blocks of an :class:`~qwen_ocr.results.OCRResult`, read according to its task.

    - ``document_parsing``: :func:`latex_to_blocks` of the LaTeX.
    - ``table_parsing``: one ``"table"`` block per table (cut-off tables keep ``truncated``), and paragraphs for
      any text outside the tables.
    - ``key_information_extraction``: one ``"fields"`` block holding ``result.fields``.
    - ``advanced_recognition``, and any other result with ``lines`` (the local provider): one ``"line"`` block
      per text line, with its ``bbox``.
    - ``formula_recognition``: one ``"formula"`` block per formula.
    - anything else (plain text, custom prompts): paragraphs split on blank lines, with HTML tables in place.
    """
    task = result.task
    if task is Task.DOCUMENT_PARSING:
        return latex_to_blocks(result.latex or result.text)
    if task is Task.KEY_INFORMATION_EXTRACTION and result.fields is not None:
        listing = "\n".join(f"{key}: {value}" for key, value in field_rows(result.fields))
        return [Block(kind="fields", text=listing, index=0, fields=result.fields)]
    if task is Task.FORMULA_RECOGNITION:
        formulas = result.formulas or ([result.text.strip()] if result.text.strip() else [])
        return [Block(kind="formula", text=f, index=i, latex=f) for i, f in enumerate(formulas)]
    if result.lines and task is not Task.TABLE_PARSING:
        return [Block(kind="line", text=line.text, index=i, bbox=line.bbox) for i, line in enumerate(result.lines)]
    return _text_blocks(result.text, result.tables)


# --------------------------------------------------------------------------------------------------------------
# Plain text and HTML tables

_HTML_TABLE = re.compile(r"<table\b.*?(?:</table\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_Segment = tuple[str, list[Table] | None]


def _split_html(text: str, tables: Sequence[Table] = ()) -> list[_Segment]:
    """Text cut into plain pieces and HTML table pieces (with their parsed tables), in order; in a text that holds
    ``tables`` as their Markdown (a page's text as :mod:`qwen_ocr.rendering` wrote it), those pieces."""
    spans = [(m.start(), m.end()) for m in _HTML_TABLE.finditer(text)]
    if not spans:
        rendered = _rendered_tables(text, tables)
        if rendered:
            return rendered
        lower = text.lower()
        start = lower.find("<tr")
        if start < 0:
            return [(text, None)]
        end = lower.rfind("</tr")
        stop = lower.find(">", end) + 1 if end > start else 0
        spans = [(start, stop if stop > 0 else len(text))]
    segments: list[_Segment] = []
    pos = 0
    for start, end in spans:
        if start > pos:
            segments.append((text[pos:start], None))
        segments.append((text[start:end], parse_tables(text[start:end])))
        pos = end
    if pos < len(text):
        segments.append((text[pos:], None))
    return segments


def _rendered_tables(text: str, tables: Sequence[Table]) -> list[_Segment]:
    """``text`` cut around the Markdown of each of ``tables``, in order; ``[]`` unless every table is found."""
    segments: list[_Segment] = []
    pos = 0
    for table in tables:
        markdown = table.to_markdown()
        at = text.find(markdown, pos) if markdown else -1
        if at < 0:
            return []
        if at > pos:
            segments.append((text[pos:at], None))
        segments.append((markdown, [table]))
        pos = at + len(markdown)
    if segments and pos < len(text):
        segments.append((text[pos:], None))
    return segments


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each line stripped, the line breaks within a paragraph kept."""
    out = []
    for chunk in _BLANK_LINE.split(text):
        lines = [line.strip() for line in chunk.splitlines()]
        para = "\n".join(line for line in lines if line)
        if para:
            out.append(para)
    return out


def _text_blocks(text: str, tables: Sequence[Table] = ()) -> list[Block]:
    """Paragraphs of plain text with HTML (or already rendered) tables in place; ``tables`` (the result's) replace
    the parsed ones."""
    segments = _split_html(text, tables)
    parsed = [t for _, found in segments for t in (found or [])]
    own = list(tables) if len(tables) == len(parsed) else parsed
    queue = iter(own)
    blocks: list[Block] = []
    for chunk, found in segments:
        if found is None:
            for para in _paragraphs(chunk):
                blocks.append(Block(kind="paragraph", text=para, index=len(blocks)))
            continue
        for _ in found:
            table = next(queue)
            blocks.append(Block(kind="table", text=table.to_markdown(), index=len(blocks), table=table))
    if not parsed:
        for table in tables:
            blocks.append(Block(kind="table", text=table.to_markdown(), index=len(blocks), table=table))
    return blocks


def _fallback_blocks(text: str) -> list[Block]:
    return [
        Block(kind="paragraph", text=" ".join(p.split()), index=i, latex=p) for i, p in enumerate(_paragraphs(text))
    ]


# --------------------------------------------------------------------------------------------------------------
# The LaTeX parser's configuration

_BR = "\ue000"  # stands for a forced line break (\\) until whitespace is normalised
_HTML_MACRO = "qwenocrhtmltable"  # an embedded HTML table, replaced by \qwenocrhtmltable{n} before parsing


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LIST_ENVS = frozenset(
    {"itemize", "enumerate", "description", "list", "compactitem", "compactenum", "compactdesc", "thebibliography"}
)
_MATH_ENVS = frozenset(
    name + star
    for name in ("equation", "align", "gather", "multline", "eqnarray", "flalign", "alignat", "dmath", "displaymath")
    for star in ("", "*")
)
_TABULAR_ENVS = frozenset(
    {"tabular", "tabular*", "tabularx", "tabulary", "longtable", "longtable*", "supertabular", "xtabular", "tabu"}
)
_FLOAT_ENVS = _names(
    """
    table table* wraptable sidewaystable figure figure* wrapfigure sidewaysfigure subfigure subtable
    """
)
_BOX_ENVS = frozenset(
    {"center", "flushleft", "flushright", "quote", "quotation", "verse", "minipage", "multicols", "multicols*"}
)
_VERBATIM_ENVS = frozenset({"verbatim", "verbatim*", "lstlisting", "minted", "Verbatim", "alltt"})
_IGNORED_MACROS = _names(
    """
    documentclass usepackage RequirePackage newcommand renewcommand providecommand DeclareMathOperator
    setlength setcounter pagestyle thispagestyle geometry hypersetup label bibliographystyle bibliography input
    include newpage clearpage pagebreak tableofcontents listoffigures listoftables includegraphics graphicspath
    """
)
_ROW_END_MACROS = frozenset({"\\", "tabularnewline", "cr"})
_RULE_MACROS = _names(
    """
    hline cline toprule midrule bottomrule cmidrule specialrule addlinespace hhline noalign endhead
    endfirsthead endfoot endlastfoot rowcolor arrayrulecolor label centering small footnotesize scriptsize tiny
    """
)

_WALKER_MACROS = {
    "multicolumn": "{{{",
    "multirow": "[{[{[{",
    "makecell": "[{",
    "thead": "[{",
    "shortstack": "[{",
    "caption": "[{",
    "captionof": "{[{",
    "title": "[{",
    "author": "[{",
    "date": "{",
    "thanks": "{",
    **{name: "*[{" for name in HEADING_LEVELS},
    "minisec": "{",
    "href": "{{",
    "url": "{",
    **{name: "*[[{" for name in ("cite", "citep", "citet", "citealp", "citeauthor", "citeyear", "nocite")},
    **{name: "{" for name in ("ref", "eqref", "autoref", "cref", "Cref", "pageref", "label")},
    "cline": "{",
    "toprule": "[",
    "midrule": "[",
    "bottomrule": "[",
    "cmidrule": "[{",
    "specialrule": "{{{",
    "addlinespace": "[",
    "rowcolor": "[{",
    "cellcolor": "[{",
    "arrayrulecolor": "[{",
    "hhline": "{",
    "resizebox": "*{{{",
    "scalebox": "{[{",
    "adjustbox": "{{",
    "rotatebox": "[{{",
    "fbox": "{",
    "parbox": "[[[{{",
    "makebox": "[[{",
    "raisebox": "{[[{",
    "includegraphics": "*[[{",
    "textsuperscript": "{",
    "textsubscript": "{",
    "bibitem": "[{",
    "setlength": "{{",
    "setcounter": "{{",
    "footnote": "[{",
    "footnotetext": "[{",
    _HTML_MACRO: "{",
}
_WALKER_ENVIRONMENTS = {
    "tabular*": "{[{",
    "tabulary": "{{",
    "longtable": "[{",
    "longtable*": "[{",
    "supertabular": "{",
    "xtabular": "{",
    "tabu": "{",
    "wrapfigure": "[{[{",
    "wraptable": "[{[{",
    "minipage": "[[[{",
    "multicols": "{",
    "multicols*": "{",
    "subfigure": "[{",
    "subtable": "[{",
    "thebibliography": "{",
}


@functools.lru_cache(maxsize=1)
def _walker_context() -> Any:
    db = latexwalker.get_default_latex_context_db()
    db.add_context_category(
        "qwen_ocr",
        macros=[macrospec.MacroSpec(name, args) for name, args in _WALKER_MACROS.items()],
        environments=[macrospec.EnvironmentSpec(name, args) for name, args in _WALKER_ENVIRONMENTS.items()],
        prepend=True,
    )
    return db


def _args(node: Any) -> list[Any]:
    parsed = getattr(node, "nodeargd", None)
    argnlist = getattr(parsed, "argnlist", None)
    return list(argnlist) if argnlist else []


def _last_arg(node: Any) -> Any:
    """The last argument given (the mandatory one of ``\\section*[short]{long}``), or ``None``."""
    for arg in reversed(_args(node)):
        if arg is not None:
            return arg
    return None


def _arg_nodes(arg: Any) -> list[Any]:
    if arg is None:
        return []
    if isinstance(arg, latexwalker.LatexGroupNode):
        return list(arg.nodelist or [])
    return [arg]


def _text_last_arg(node: Any, l2tobj: Any) -> str:
    return str(l2tobj.nodelist_to_text(_arg_nodes(_last_arg(node))))


def _text_eqref(node: Any, l2tobj: Any) -> str:
    return f"({_text_last_arg(node, l2tobj)})"


def _text_cite(node: Any, l2tobj: Any) -> str:
    return f"[{_text_last_arg(node, l2tobj)}]"


def _text_item(node: Any, l2tobj: Any) -> str:
    label = _text_last_arg(node, l2tobj).strip()
    return f"{_BR}{label} " if label else f"{_BR}- "


def _text_href(node: Any, l2tobj: Any) -> str:
    args = _args(node)
    url = str(l2tobj.nodelist_to_text(_arg_nodes(args[0]))) if args else ""
    text = str(l2tobj.nodelist_to_text(_arg_nodes(args[1]))) if len(args) > 1 else ""
    return f"{text} ({url})" if text.strip() and url.strip() else text or url


def _text_superscript(node: Any, l2tobj: Any) -> str:
    return "^" + _text_last_arg(node, l2tobj)


def _text_subscript(node: Any, l2tobj: Any) -> str:
    return "_" + _text_last_arg(node, l2tobj)


_TEXT_MACROS: dict[str, Any] = {
    "\\": _BR,
    "newline": _BR,
    "linebreak": _BR,
    "and": _BR,
    "item": _text_item,
    "bibitem": _text_item,
    "LaTeX": "LaTeX",
    "LaTeXe": "LaTeX2e",
    "TeX": "TeX",
    "S": "§",
    "P": "¶",
    "copyright": "©",
    "verb": _text_last_arg,
    "url": _text_last_arg,
    "href": _text_href,
    "textsuperscript": _text_superscript,
    "textsubscript": _text_subscript,
    "eqref": _text_eqref,
    **{name: _text_last_arg for name in ("ref", "autoref", "cref", "Cref", "pageref")},  # the label's key
    **{
        name: _text_cite
        for name in _names(
            "cite citep citet citealp citealt citeauthor citeyear citenum Citep Citet Citealp Citealt Citeauthor"
        )
    },
    **{  # dropped with their arguments (other macros keep their arguments' text)
        name: None
        for name in _names(
            """
            maketitle includegraphics label thanks nocite today color pagecolor definecolor colorlet providecolor
            hypersetup documentclass usepackage RequirePackage newcommand renewcommand providecommand newenvironment
            renewenvironment provideenvironment DeclareMathOperator setlength setcounter addlength addcounter
            rowcolors selectlanguage hphantom vphantom phantom bibliography bibliographystyle vspace hspace
            """
        )
    },
    **{
        name: _text_last_arg
        for name in _names(
            """
            multicolumn multirow makecell thead shortstack caption captionof title author date minisec fbox parbox
            makebox raisebox resizebox scalebox adjustbox rotatebox
            """
        )
        | frozenset(HEADING_LEVELS)
    },
}


@functools.lru_cache(maxsize=1)
def _text_context() -> Any:
    db = latex2text.get_default_latex_context_db()
    db.add_context_category(
        "qwen_ocr",
        macros=[
            latex2text.MacroTextSpec(name, simplify_repl=repl, discard=repl is None)
            for name, repl in _TEXT_MACROS.items()
        ],
        specials=[latex2text.SpecialsTextSpec("&", "&")],  # outside a tabular, an unescaped & is an ampersand
        prepend=True,
    )
    db.set_unknown_macro_spec(latex2text.MacroTextSpec("", discard=False))  # \texttt{x}, \mbox{x}: keep x
    return db


def _clean(text: str) -> str:
    """Whitespace collapsed to single spaces; forced line breaks (``\\\\``) kept as newlines."""
    parts = (" ".join(part.split()) for part in text.split(_BR))
    return "\n".join(part for part in parts if part)


# --------------------------------------------------------------------------------------------------------------
# LaTeX to blocks


@dataclass
class _Pending:
    """Paragraph under construction: nodes for the text, source pieces for ``latex``."""

    nodes: list[Any] = field(default_factory=list)
    source: list[str] = field(default_factory=list)


class _LatexReader:
    """Walks pylatexenc's node tree once, emitting blocks in reading order."""

    def __init__(self, text: str) -> None:
        self._html: list[list[Table]] = []
        self._source = self._prepare(text)
        self._conv = latex2text.LatexNodes2Text(latex_context=_text_context(), math_mode="text")
        self.blocks: list[Block] = []
        self._path: list[tuple[int, str]] = []
        self._para = _Pending()
        self._list_depth = 0
        self._item_open = False
        self._item_label = ""
        self._title: tuple[str, str] | None = None  # text, source
        self._front: list[tuple[str, str]] = []  # author, date (text, source): paragraphs after the title

    def _prepare(self, text: str) -> str:
        """Embedded HTML tables become placeholders (their ``&`` and ``%`` are not LaTeX); ``\\cmidrule(lr)`` loses
        its trim (the parser cannot read it); ``50%`` is a percent sign, not a comment (models forget the ``\\``)."""

        def keep(match: re.Match[str]) -> str:
            self._html.append(parse_tables(match.group(0)))
            return f"\n\n\\{_HTML_MACRO}{{{len(self._html) - 1}}}\n\n"

        text = _HTML_TABLE.sub(keep, text)
        text = re.sub(r"(?<=\d)%", r"\\%", text)
        return re.sub(r"\\cmidrule\s*\([^)]*\)", r"\\cmidrule", text)

    def read(self) -> list[Block]:
        walker = latexwalker.LatexWalker(self._source, latex_context=_walker_context(), tolerant_parsing=True)
        nodes, _, _ = walker.get_latex_nodes()
        self._walk(nodes)
        self._flush()
        self._emit_title()
        return self.blocks

    # ---- emitting

    def _emit(self, kind: BlockKind, text: str, **extra: Any) -> None:
        if kind != "title":
            self._emit_title()
        path = tuple(name for _, name in self._path)
        self.blocks.append(Block(kind=kind, text=text, index=len(self.blocks), heading_path=path, **extra))

    def _emit_title(self) -> None:
        title, front = self._title, self._front
        self._title, self._front = None, []
        if title:
            self.blocks.append(Block(kind="title", text=title[0], index=len(self.blocks), latex=title[1]))
        for text, source in front:
            self._emit("paragraph", text, latex=source)

    def _heading(self, level: int, text: str, latex: str | None) -> None:
        self._flush()
        self._emit_title()  # before the path changes: the title's paragraphs sit above this heading
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        self._emit("heading", text, level=level, latex=latex)

    def _flush(self) -> None:
        pending, self._para = self._para, _Pending()
        label, self._item_label = self._item_label, ""
        text = self._text(pending.nodes)
        if label:
            text = f"{label}: {text}" if text else label
        if not text:
            return
        latex = "".join(pending.source).strip()
        if self._item_open:
            self._emit("list_item", text, level=max(self._list_depth, 1), latex=latex)
        else:
            self._emit("paragraph", text, latex=latex)

    def _add(self, node: Any, source: str | None = None) -> None:
        self._para.nodes.append(node)
        self._para.source.append(source if source is not None else _verbatim(node))

    def _text(self, nodes: list[Any]) -> str:
        return _clean(str(self._conv.nodelist_to_text(nodes))) if nodes else ""

    # ---- walking

    def _walk(self, nodes: Iterable[Any]) -> None:
        for node in nodes:
            if node is None or isinstance(node, latexwalker.LatexCommentNode):
                continue
            if isinstance(node, latexwalker.LatexCharsNode):
                self._chars(node)
            elif isinstance(node, latexwalker.LatexMathNode):
                if node.displaytype == "display":
                    self._flush()
                    inner = "".join(_verbatim(n) for n in node.nodelist or []).strip()
                    if inner:
                        self._emit("formula", inner, latex=_verbatim(node))
                else:
                    self._add(node)
            elif isinstance(node, latexwalker.LatexEnvironmentNode):
                self._environment(node)
            elif isinstance(node, latexwalker.LatexMacroNode):
                self._macro(node)
            elif isinstance(node, latexwalker.LatexGroupNode) and _has_blocks(node.nodelist or []):
                self._walk(node.nodelist or [])
            else:
                self._add(node)

    def _chars(self, node: Any) -> None:
        pieces = _BLANK_LINE.split(node.chars)
        for i, piece in enumerate(pieces):
            if i:
                self._flush()
                if self._list_depth == 0:
                    self._item_open = False
            if piece:
                piece_node = latexwalker.LatexCharsNode(
                    chars=piece, parsing_state=node.parsing_state, pos=node.pos, len=len(piece)
                )
                self._add(piece_node, piece)

    def _macro(self, node: Any) -> None:
        name = node.macroname
        if name in HEADING_LEVELS or name == "minisec":
            text = self._text(_arg_nodes(_last_arg(node)))
            if text:
                self._heading(HEADING_LEVELS.get(name, 6), text, _verbatim(node))
        elif name == "title":
            text = self._text(_arg_nodes(_last_arg(node)))
            self._title = (text, _verbatim(node)) if text else None
        elif name in ("author", "date"):
            text = self._text(_arg_nodes(_last_arg(node)))
            if text:
                self._front.append((text, _verbatim(node)))
        elif name == "maketitle":
            self._flush()
            self._emit_title()
        elif name == "par":
            self._flush()
        elif name in ("item", "bibitem"):
            self._flush()
            self._item_open = True
            self._item_label = self._text(_arg_nodes(_last_arg(node))) if name == "item" else ""
        elif name in ("caption", "captionof"):
            self._flush()
            text = self._text(_arg_nodes(_last_arg(node)))
            if text:
                self._emit("caption", text, latex=_verbatim(node))
        elif name == _HTML_MACRO:
            self._flush()
            for table in self._html_tables(node):
                self._emit("table", table.to_markdown(), table=table)
        elif name in _IGNORED_MACROS:
            return
        else:
            blocky = [arg for arg in _args(node) if arg is not None and _has_blocks(_arg_nodes(arg))]
            if blocky:
                for arg in blocky:
                    self._walk(_arg_nodes(arg))
            else:
                self._add(node)

    def _html_tables(self, node: Any) -> list[Table]:
        digits = re.sub(r"\D", "", _verbatim(node))
        index = int(digits) if digits and len(digits) < 9 else -1
        return self._html[index] if 0 <= index < len(self._html) else []

    def _environment(self, node: Any) -> None:
        name = node.environmentname
        body = node.nodelist or []
        if name in _MATH_ENVS:
            self._flush()
            source = _verbatim(node).strip()
            self._emit("formula", source, latex=source)
        elif name in _TABULAR_ENVS:
            self._flush()
            table = _tabular_to_table(node, self._text)
            self._emit("table", table.to_markdown(), table=table, latex=_verbatim(node))
        elif name in _LIST_ENVS:
            self._list(body)
        elif name == "abstract":
            self._flush()
            saved = list(self._path)
            self._heading(HEADING_LEVELS["section"], "Abstract", None)
            self._walk(body)
            self._flush()
            self._path = saved
        elif name in _FLOAT_ENVS:
            self._float(body)
        elif name in _VERBATIM_ENVS:
            self._flush()
            code = _VERBATIM_BODY.sub("", _verbatim(node))
            if code.strip():
                self._emit("paragraph", code.strip("\n"), latex=_verbatim(node))
        elif name in _BOX_ENVS or name == "document":
            self._flush()
            self._walk(body)
            self._flush()
        else:  # unknown (theorem, proof, ...): a block of its own, arguments and content kept
            self._flush()
            for arg in _args(node):
                if arg is not None:
                    self._walk(_arg_nodes(arg))
            self._walk(body)
            self._flush()

    def _list(self, body: list[Any]) -> None:
        self._flush()
        outer_item = self._item_open
        self._list_depth += 1
        self._item_open = False
        self._walk(body)
        self._flush()
        self._list_depth -= 1
        self._item_open = outer_item  # text after a nested list still belongs to the outer item

    def _float(self, body: list[Any]) -> None:
        """A table or figure: its content in place; its captions also name the tables in it."""
        self._flush()
        start = len(self.blocks)
        self._walk(body)
        self._flush()
        captions = [i for i in range(start, len(self.blocks)) if self.blocks[i].kind == "caption"]
        if not captions:
            return
        for i in range(start, len(self.blocks)):
            block = self.blocks[i]
            if block.kind != "table" or block.table is None or block.table.caption:
                continue
            nearest = min(captions, key=lambda c: (abs(c - i), c > i))
            table = block.table.model_copy(update={"caption": self.blocks[nearest].text})
            self.blocks[i] = dataclasses.replace(block, table=table, text=table.to_markdown())


_VERBATIM_BODY = re.compile(
    r"^\\begin\{(?:lstlisting|minted)\}(?:\[[^\]\n]*\])?(?:\{[^}\n]*\})?|^\\begin\{[^}]*\}|\\end\{[^}]*\}\s*$"
)


def _verbatim(node: Any) -> str:
    try:
        return str(node.latex_verbatim())
    except (TypeError, AttributeError):
        return ""


_BLOCK_MACROS = frozenset({*HEADING_LEVELS, "minisec", "par", "caption", "captionof", "maketitle", _HTML_MACRO})


def _has_blocks(nodes: Iterable[Any]) -> bool:
    """Whether a node list holds anything that makes its own block (so it cannot be inline text)."""
    for node in nodes:
        if isinstance(node, latexwalker.LatexEnvironmentNode):
            name = node.environmentname
            if name in _MATH_ENVS | _TABULAR_ENVS | _LIST_ENVS | _FLOAT_ENVS | _BOX_ENVS | _VERBATIM_ENVS:
                return True
            if name in ("abstract", "document") or _has_blocks(node.nodelist or []):
                return True
        elif isinstance(node, latexwalker.LatexMathNode):
            if node.displaytype == "display":
                return True
        elif isinstance(node, latexwalker.LatexMacroNode):
            if node.macroname in _BLOCK_MACROS:
                return True
            if any(_has_blocks(_arg_nodes(arg)) for arg in _args(node)):
                return True
        elif isinstance(node, latexwalker.LatexGroupNode):
            if _has_blocks(node.nodelist or []):
                return True
        elif isinstance(node, latexwalker.LatexCharsNode) and _BLANK_LINE.search(node.chars):
            return True
    return False


# --------------------------------------------------------------------------------------------------------------
# tabular to Table


@dataclass
class _RawCell:
    nodes: list[Any] = field(default_factory=list)


def _tabular_to_table(node: Any, to_text: Callable[[list[Any]], str]) -> Table:
    """A tabular-like environment as a :class:`Table`: ``&`` and ``\\\\`` split cells and rows, rules are skipped,
    ``\\multicolumn``/``\\multirow`` become spans (the empty cells LaTeX needs under a ``\\multirow`` are dropped).
    An environment cut off before ``\\end`` is ``truncated`` and keeps its complete rows only."""
    name = node.environmentname
    truncated = not _verbatim(node).rstrip().endswith(f"\\end{{{name}}}")
    rows: list[list[_RawCell]] = []
    row: list[_RawCell] = [_RawCell()]
    captions: list[str] = []
    ended = True
    for child in node.nodelist or []:
        if child is None or isinstance(child, latexwalker.LatexCommentNode):
            continue
        if isinstance(child, latexwalker.LatexSpecialsNode) and child.specials_chars == "&":
            row.append(_RawCell())
            ended = False
        elif isinstance(child, latexwalker.LatexMacroNode) and child.macroname in _ROW_END_MACROS:
            rows.append(row)
            row = [_RawCell()]
            ended = True
        elif isinstance(child, latexwalker.LatexMacroNode) and child.macroname in _RULE_MACROS:
            continue
        elif isinstance(child, latexwalker.LatexMacroNode) and child.macroname in ("caption", "captionof"):
            text = to_text(_arg_nodes(_last_arg(child)))
            if text:
                captions.append(text)
        else:
            row[-1].nodes.append(child)
            if not (isinstance(child, latexwalker.LatexCharsNode) and not child.chars.strip()):
                ended = False
    if not ended and not truncated:
        rows.append(row)
    cells = [[_cell(raw.nodes, to_text) for raw in r] for r in rows]
    cells = [r for r in cells if len(r) > 1 or r[0].text or r[0].colspan > 1 or r[0].rowspan > 1]
    return Table(rows=_drop_spanned(cells), caption=captions[0] if captions else None, truncated=truncated)


def _cell(nodes: list[Any], to_text: Callable[[list[Any]], str]) -> TableCell:
    rowspan = colspan = 1
    content = [n for n in nodes if not (isinstance(n, latexwalker.LatexCharsNode) and not n.chars.strip())]
    for _ in range(3):  # \multicolumn{2}{c}{\multirow{2}{*}{x}} and the like
        if len(content) != 1 or not isinstance(content[0], latexwalker.LatexMacroNode):
            break
        macro = content[0]
        if macro.macroname == "multicolumn":
            colspan = _span_of(_args(macro)[:1], to_text)
        elif macro.macroname == "multirow":
            rowspan = _span_of(_args(macro)[1:2], to_text)
        elif macro.macroname not in ("makecell", "thead", "shortstack", "textbf", "textit", "emph"):
            break
        nodes = _arg_nodes(_last_arg(macro))
        content = [n for n in nodes if not (isinstance(n, latexwalker.LatexCharsNode) and not n.chars.strip())]
    return TableCell(text=to_text(nodes), rowspan=rowspan, colspan=colspan)


def _span_of(args: list[Any], to_text: Callable[[list[Any]], str]) -> int:
    text = to_text(_arg_nodes(args[0])) if args and args[0] is not None else ""
    match = re.match(r"\s*(\d{1,4})", text)
    return max(1, min(int(match.group(1)), 1000)) if match else 1


def _drop_spanned(rows: list[list[TableCell]]) -> list[list[TableCell]]:
    """Remove the empty placeholder cells LaTeX writes in the slots a ``\\multirow`` above already covers.

    An :attr:`~qwen_ocr.results.Table.oversized` table is returned as it is: finding the placeholders means laying
    the table out, which is what its size forbids (it is shown as its HTML, placeholders and all)."""
    if Table(rows=rows).oversized:
        return rows
    covered: dict[int, int] = {}  # column -> the last row a \multirow above covers in it
    out: list[list[TableCell]] = []
    for r, row in enumerate(rows):
        kept: list[TableCell] = []
        col = 0
        for cell in row:
            slots = range(col, col + cell.colspan)
            if cell.rowspan == 1 and not cell.text and all(covered.get(c, -1) >= r for c in slots):
                col += cell.colspan
                continue
            while covered.get(col, -1) >= r and cell.text:  # the model left the placeholder out
                col += 1
            kept.append(cell)
            if cell.rowspan > 1:
                for c in range(col, col + cell.colspan):
                    covered[c] = r + cell.rowspan - 1
            col += cell.colspan
        out.append(kept)
    return out
