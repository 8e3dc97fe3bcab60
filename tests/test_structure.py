"""Document structure: LaTeX, HTML tables and every task's result as ordered blocks with heading paths."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwen_ocr.structure
import qwen_ocr.testing
from qwen_ocr import QwenOCRError, Task
from qwen_ocr.rendering import without_table_captions
from qwen_ocr.results import OCRResult, Table, TableCell, TextLine, build_result
from qwen_ocr.structure import HEADING_LEVELS, Block, blocks_from_result, latex_to_blocks, latex_to_text

RECORDINGS = Path(qwen_ocr.testing.__file__).parent / "recordings" / "docs"
KINDS = {"title", "heading", "paragraph", "list_item", "table", "formula", "caption", "fields", "line"}


def recorded_text(name: str) -> tuple[str, str | None]:
    """(text, finish_reason) of a recorded reply, native or OpenAI-compatible."""
    data: Any = json.loads((RECORDINGS / name).read_text(encoding="utf-8-sig"))
    if "output" in data:
        choice = data["output"]["choices"][0]
        return choice["message"]["content"][0]["text"], choice.get("finish_reason")
    choice = data["choices"][0]
    return choice["message"]["content"], choice.get("finish_reason")


def recorded_result(name: str, task: Task | None) -> OCRResult:
    text, finish = recorded_text(name)
    return build_result(text, task=task, model="qwen-vl-ocr", finish_reason=finish)


def check_blocks(blocks: list[Block]) -> None:
    """Invariants every block list keeps."""
    assert isinstance(blocks, list)
    for i, block in enumerate(blocks):
        assert isinstance(block, Block)
        assert block.index == i
        assert block.kind in KINDS
        assert isinstance(block.text, str)
        assert isinstance(block.heading_path, tuple)
        assert all(isinstance(name, str) for name in block.heading_path)
        if block.kind == "heading":
            assert block.heading_path[-1] == block.text
        if block.kind == "table":
            assert isinstance(block.table, Table)
            assert block.text == block.table.to_markdown()


def kinds_and_texts(blocks: list[Block]) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in blocks]


# --------------------------------------------------------------------------------------------------------------
# Recorded replies


def test_recorded_document_parsing() -> None:
    result = recorded_result("native_document_parsing.response.json", Task.DOCUMENT_PARSING)
    blocks = blocks_from_result(result)
    check_blocks(blocks)
    assert blocks == latex_to_blocks(result.raw_text)  # fences are removed either way

    title, author = blocks[0], blocks[1]
    assert title.kind == "title" and title.level == 0 and title.heading_path == ()
    assert title.text.startswith("Qwen2-VL: Enhancing Vision-Language Model's Perception")
    assert author.kind == "paragraph" and author.heading_path == ()
    assert author.text.startswith("Peng Wang* Shuai Bai*")
    assert "Qwen Team Alibaba Group" in author.text
    assert "\n" in author.text  # the \\ line breaks of \author are kept
    assert "$" not in author.text and "\\" not in author.text

    headings = [b for b in blocks if b.kind == "heading"]
    assert [(h.text, h.level, h.heading_path) for h in headings] == [
        ("Abstract", 1, ("Abstract",)),
        ("Introduction", 1, ("Introduction",)),
    ]
    paragraphs = [b for b in blocks if b.kind == "paragraph"][1:]
    assert [p.heading_path for p in paragraphs] == [("Abstract",), ("Introduction",), ("Introduction",)]
    assert paragraphs[0].text.startswith("We present the Qwen2-VL Series")
    assert paragraphs[0].text.endswith("https://github.com/QwenLM/Qwen2-VL.")
    assert "visual encoder → cross-modal connector → LLM" in paragraphs[2].text
    assert paragraphs[2].latex is not None and "\\texttt{visual encoder}" in paragraphs[2].latex
    for block in blocks:
        assert "\\texttt" not in block.text and "\\rightarrow" not in block.text and "\\section" not in block.text
        assert "```" not in block.text
    # The reply stops mid-sentence (its tail was cut off); the last paragraph keeps what is there.
    assert blocks[-1].text.endswith("Chen et al., 2023b;")


def test_recorded_table_parsing_is_one_truncated_table() -> None:
    result = recorded_result("native_table_parsing.response.json", Task.TABLE_PARSING)
    assert result.raw_text.rstrip().endswith("</```")  # cut off mid-tag
    blocks = blocks_from_result(result)
    check_blocks(blocks)
    assert [b.kind for b in blocks] == ["table"]
    table = blocks[0].table
    assert table is not None
    assert table is result.tables[0]
    assert table.truncated
    assert table.n_cols == 5
    assert table.rows[0][0].text.startswith("Case name")
    assert [c.text for c in table.rows[2]] == ["V02", "V1", "Live Load", "147.95", "0.815"]
    # complete rows only: every row the model closed, none cut in half
    assert all(len(row) == 5 for row in table.rows[1:])
    assert table.n_rows == result.raw_text.count("</tr>") + 1  # the last row's cells are closed, its </tr> is not
    assert blocks[0].text.splitlines()[0].startswith("Case name")  # a title row reads as the caption


def test_recorded_plain_tasks() -> None:
    text = blocks_from_result(recorded_result("native_text_recognition.response.json", Task.TEXT_RECOGNITION))
    check_blocks(text)
    assert [b.kind for b in text] == ["paragraph"]  # no blank lines: one paragraph, its line breaks kept
    assert text[0].text.splitlines()[0] == "Audience"

    multi = blocks_from_result(recorded_result("native_multi_lan.response.json", Task.MULTI_LAN))
    check_blocks(multi)
    assert "Привіт!" in multi[0].text.splitlines()

    formula = blocks_from_result(recorded_result("native_formula_recognition.response.json", Task.FORMULA_RECOGNITION))
    check_blocks(formula)
    assert [b.kind for b in formula] == ["formula"]
    assert formula[0].text.startswith("\\tilde { Q } ( x )") and "$$" not in formula[0].text
    assert formula[0].latex == formula[0].text

    kie = blocks_from_result(
        recorded_result("compatible_key_information_extraction_prompted.response.json", Task.KEY_INFORMATION_EXTRACTION)
    )
    check_blocks(kie)
    assert [b.kind for b in kie] == ["fields"]
    assert kie[0].fields == {"Ride Date": "2013-06-29", "Invoice Code": "221021325353", "Invoice Number": "10283819"}
    assert kie[0].text == "Ride Date: 2013-06-29\nInvoice Code: 221021325353\nInvoice Number: 10283819"


# --------------------------------------------------------------------------------------------------------------
# Synthetic LaTeX

DOCUMENT = r"""```latex
\documentclass[11pt]{article}
\usepackage{amsmath,booktabs}
\newcommand{\R}{\mathbb{R}}
\title{A \textbf{Study} of Things}
\author{Ann One \and Bob Two\\ Some University}
\date{}

\begin{document}
\maketitle

\begin{abstract}
We study \emph{things}. Caf\'e~na\"ive costs 5\% of \$10 --- roughly.
\end{abstract}

\section{Introduction}\label{sec:intro}
Text with $x^2$ and \textit{italics}, see~\cite{knuth} and Eq.~\eqref{eq:1}. % a comment
It continues\\ after a forced break.

A second paragraph with \texttt{code\_name} and \underline{under}.
\footnote{A footnote.}

\subsection*{Background}
\begin{itemize}
  \item First point.
  \item Second point
  \begin{enumerate}
    \item nested one
    \item nested two
  \end{enumerate}
  \item[$\star$] Starred point.
\end{itemize}
\begin{description}
  \item[Term] its definition
\end{description}

\subsubsection{Deeper}
\[ E = mc^2 \]
$$ a^2 + b^2 = c^2 $$
\begin{equation}\label{eq:1}
  \int_0^1 f(x)\,dx
\end{equation}
\begin{align*}
  x &= 1 \\
  y &= 2
\end{align*}

\paragraph{Notes} A run-in paragraph.

\subsection{Method}
Back at level two.

\section{Results}
\begin{table}[ht]
  \centering
  \caption{Scores by \textbf{model}}
  \label{tab:scores}
  \begin{tabular}{|l|c|c|}
    \hline
    \textbf{Model} & \multicolumn{2}{c|}{\textbf{Score}} \\
    \hline
    \multirow{2}{*}{Qwen} & 91.5 & 88.0 \\
                          & 92.1 & 89.3 \\
    \hline
    Other & 80 & 70 \\
    \hline
  \end{tabular}
  \small Note: higher is better.
\end{table}

<table><tr><th>Item</th><th>Share</th></tr><tr><td>A & B</td><td>50%</td></tr></table>

\begin{figure}[h]
  \centering
  \includegraphics[width=0.5\textwidth]{plot.png}
  \caption{A plot.}
\end{figure}

\begin{theorem}[Main]
Every unknown environment keeps its text.
\end{theorem}
\mystery{kept argument}

\end{document}
```"""


@pytest.fixture(scope="module")
def document() -> list[Block]:
    blocks = latex_to_blocks(DOCUMENT)
    check_blocks(blocks)
    return blocks


def test_title_and_front_matter(document: list[Block]) -> None:
    assert kinds_and_texts(document[:2]) == [
        ("title", "A Study of Things"),
        ("paragraph", "Ann One\nBob Two\nSome University"),
    ]
    assert document[0].latex == r"\title{A \textbf{Study} of Things}"
    assert all("documentclass" not in b.text and "usepackage" not in b.text for b in document)
    assert all("mathbb" not in b.text for b in document)  # \newcommand is preamble, not text


def test_abstract_and_paragraph_text(document: list[Block]) -> None:
    abstract = document[2:4]
    assert [(b.kind, b.text, b.heading_path) for b in abstract] == [
        ("heading", "Abstract", ("Abstract",)),
        ("paragraph", "We study things. Café naïve costs 5% of $10 — roughly.", ("Abstract",)),
    ]
    intro = [b for b in document if b.heading_path == ("Introduction",) and b.kind == "paragraph"]
    assert intro[0].text == "Text with x^2 and italics, see [knuth] and Eq. (eq:1). It continues\nafter a forced break."
    assert intro[0].latex is not None and intro[0].latex.startswith("Text with $x^2$")
    assert intro[1].text == "A second paragraph with code_name and under. [A footnote.]"


def test_heading_paths_follow_nesting(document: list[Block]) -> None:
    headings = [(b.text, b.level, b.heading_path) for b in document if b.kind == "heading"]
    assert headings == [
        ("Abstract", 1, ("Abstract",)),
        ("Introduction", 1, ("Introduction",)),
        ("Background", 2, ("Introduction", "Background")),
        ("Deeper", 3, ("Introduction", "Background", "Deeper")),
        ("Notes", 4, ("Introduction", "Background", "Deeper", "Notes")),
        ("Method", 2, ("Introduction", "Method")),
        ("Results", 1, ("Results",)),
    ]
    method = next(b for b in document if b.text == "Back at level two.")
    assert method.heading_path == ("Introduction", "Method")
    notes = next(b for b in document if b.text == "A run-in paragraph.")
    assert notes.heading_path == ("Introduction", "Background", "Deeper", "Notes")


def test_lists(document: list[Block]) -> None:
    items = [(b.text, b.level) for b in document if b.kind == "list_item"]
    assert items == [
        ("First point.", 1),
        ("Second point", 1),
        ("nested one", 2),
        ("nested two", 2),
        ("⋆: Starred point.", 1),
        ("Term: its definition", 1),
    ]
    assert all(b.heading_path == ("Introduction", "Background") for b in document if b.kind == "list_item")


def test_formulas(document: list[Block]) -> None:
    formulas = [b for b in document if b.kind == "formula"]
    assert [f.text for f in formulas] == [
        "E = mc^2",
        "a^2 + b^2 = c^2",
        "\\begin{equation}\\label{eq:1}\n  \\int_0^1 f(x)\\,dx\n\\end{equation}",
        "\\begin{align*}\n  x &= 1 \\\\\n  y &= 2\n\\end{align*}",
    ]
    assert formulas[0].latex == r"\[ E = mc^2 \]"
    assert formulas[1].latex == "$$ a^2 + b^2 = c^2 $$"
    assert all(f.heading_path == ("Introduction", "Background", "Deeper") for f in formulas)


def test_tabular_with_spans_and_caption(document: list[Block]) -> None:
    tables = [b for b in document if b.kind == "table"]
    assert len(tables) == 2
    latex_table = tables[0].table
    assert latex_table is not None
    assert latex_table.caption == "Scores by model"
    assert not latex_table.truncated
    assert latex_table.grid() == [
        ["Model", "Score", "Score"],
        ["Qwen", "91.5", "88.0"],
        ["Qwen", "92.1", "89.3"],
        ["Other", "80", "70"],
    ]
    assert latex_table.rows[0][1] == TableCell(text="Score", colspan=2)
    assert latex_table.rows[1][0] == TableCell(text="Qwen", rowspan=2)
    assert len(latex_table.rows[2]) == 2  # the empty placeholder under \multirow is not a cell
    assert tables[0].latex is not None and tables[0].latex.startswith("\\begin{tabular}")
    assert tables[0].heading_path == ("Results",)

    # the caption is a block as well, and the rest of the table environment is kept
    index = tables[0].index
    assert kinds_and_texts(document[index - 1 : index + 2]) == [
        ("caption", "Scores by model"),
        ("table", tables[0].text),
        ("paragraph", "Note: higher is better."),
    ]


def test_html_table_inside_latex(document: list[Block]) -> None:
    html = [b for b in document if b.kind == "table"][1]
    assert html.table is not None
    assert html.table.grid() == [["Item", "Share"], ["A & B", "50%"]]
    assert html.table.rows[0][0].header
    assert html.heading_path == ("Results",)


def test_figure_unknown_environment_and_macro(document: list[Block]) -> None:
    tail = kinds_and_texts(document[-3:])
    assert tail == [
        ("caption", "A plot."),
        ("paragraph", "Main Every unknown environment keeps its text."),
        ("paragraph", "kept argument"),
    ]
    assert not any("plot.png" in b.text for b in document)


def test_latex_to_text(document: list[Block]) -> None:
    text = latex_to_text(DOCUMENT)
    assert text == "\n\n".join(b.text for b in without_table_captions(document) if b.text)
    assert text.startswith("A Study of Things\n\nAnn One")
    assert latex_to_text(r"\textbf{x} \textit{y} \texttt{z} \'e \`a \^o \"u \c{c} \~n a~b \{c\} \& \# \_") == (
        "x y z é à ô ü ç ñ a b {c} & # _"
    )
    assert latex_to_text("Inline $\\alpha + \\beta^2$ math") == "Inline α + β^2 math"
    assert latex_to_text("") == ""


def test_what_models_forget_to_escape_is_kept() -> None:
    # "50%" is a percent sign, not the start of a comment; a real comment is still dropped
    blocks = latex_to_blocks("Accuracy of 50% on R&D tests. % a comment\nnext line")
    assert kinds_and_texts(blocks) == [("paragraph", "Accuracy of 50% on R&D tests. next line")]
    table = one_table("\\begin{tabular}{ll} a & 5% \\\\ b & c \\end{tabular}")
    assert table.grid() == [["a", "5%"], ["b", "c"]]


def test_macros_keep_or_drop_their_arguments() -> None:
    text = latex_to_text(
        r"\mbox{boxed} \textsf{sans} \color{red}\textcolor{blue}{blue} \url{https://x.y} \href{https://a.b}{link} "
        r"\hspace{1em}\vspace{2pt}\label{l}\ref{fig:1} \S 2 \LaTeX{} \verb|a{b| \unknownmacro{kept}"
    )
    assert text == "boxed sans blue https://x.y link (https://a.b) fig:1 §2 LaTeX a{b kept"


def test_fragment_without_document_environment() -> None:
    blocks = latex_to_blocks("\\section{Only}\nBody text.\n\n\\subsection{Sub}\nMore.")
    check_blocks(blocks)
    assert [(b.kind, b.text, b.heading_path) for b in blocks] == [
        ("heading", "Only", ("Only",)),
        ("paragraph", "Body text.", ("Only",)),
        ("heading", "Sub", ("Only", "Sub")),
        ("paragraph", "More.", ("Only", "Sub")),
    ]


def test_heading_levels_and_starred_forms() -> None:
    latex = r"""
\part{P}\chapter{C}\section*{S}\subsection{SS}\subsubsection*{SSS}\paragraph{Pa}\subparagraph{Sp}
\section{T}\paragraph*{Q}
\chapter{D}
"""
    blocks = latex_to_blocks(latex)
    check_blocks(blocks)
    assert [(b.text, b.level, b.heading_path) for b in blocks] == [
        ("P", -1, ("P",)),
        ("C", 0, ("P", "C")),
        ("S", 1, ("P", "C", "S")),
        ("SS", 2, ("P", "C", "S", "SS")),
        ("SSS", 3, ("P", "C", "S", "SS", "SSS")),
        ("Pa", 4, ("P", "C", "S", "SS", "SSS", "Pa")),
        ("Sp", 5, ("P", "C", "S", "SS", "SSS", "Pa", "Sp")),
        ("T", 1, ("P", "C", "T")),
        ("Q", 4, ("P", "C", "T", "Q")),
        ("D", 0, ("P", "D")),
    ]
    assert HEADING_LEVELS["section"] == 1 and HEADING_LEVELS["subsection"] == 2
    # a short title in [..] does not replace the heading's text
    assert latex_to_blocks(r"\section[Short]{The long title}")[0].text == "The long title"


def test_abstract_does_not_leak_into_what_follows() -> None:
    blocks = latex_to_blocks("\\begin{abstract}Sum.\\end{abstract}\nAfter the abstract.")
    assert [(b.kind, b.text, b.heading_path) for b in blocks] == [
        ("heading", "Abstract", ("Abstract",)),
        ("paragraph", "Sum.", ("Abstract",)),
        ("paragraph", "After the abstract.", ()),
    ]


# --------------------------------------------------------------------------------------------------------------
# Tables from LaTeX


def one_table(latex: str) -> Table:
    blocks = latex_to_blocks(latex)
    check_blocks(blocks)
    tables = [b.table for b in blocks if b.table is not None]
    assert len(tables) == 1
    return tables[0]


def test_booktabs_rules_and_bold_cells() -> None:
    table = one_table(
        r"""\begin{tabular}{@{}lrr@{}}
\toprule
\textbf{Name} & \textbf{A} & B \\ \midrule
x & 1 & 2 \\
\cmidrule(lr){2-3}
y & \textit{3} & 4 \\[2pt]
\bottomrule
\end{tabular}"""
    )
    assert table.grid() == [["Name", "A", "B"], ["x", "1", "2"], ["y", "3", "4"]]
    assert not table.truncated


def test_multicolumn_multirow_together() -> None:
    table = one_table(
        r"""\begin{tabular}{llll}
\multicolumn{2}{c}{\multirow{2}{*}{Big}} & a & b \\
\multicolumn{2}{c}{} & c & d \\
e & f & \multirow{2}{*}{g} & h \\
i & j & & k \\
\end{tabular}"""
    )
    assert table.grid() == [
        ["Big", "Big", "a", "b"],
        ["Big", "Big", "c", "d"],
        ["e", "f", "g", "h"],
        ["i", "j", "g", "k"],
    ]
    assert table.rows[0][0] == TableCell(text="Big", rowspan=2, colspan=2)


def test_multirow_without_placeholder_and_odd_spans() -> None:
    # the model sometimes leaves the placeholder cell out, HTML-style
    table = one_table("\\begin{tabular}{ll}\\multirow{2}{*}{X} & a \\\\ b \\\\\\end{tabular}")
    assert table.grid() == [["X", "a"], ["X", "b"]]
    # a negative or unreadable span counts as 1
    table = one_table("\\begin{tabular}{ll}\\multirow{-2}{*}{X} & a \\\\ \\multicolumn{z}{c}{Y} & b\\end{tabular}")
    assert table.grid() == [["X", "a"], ["Y", "b"]]


def test_caption_inside_longtable_and_after_tabular() -> None:
    table = one_table("\\begin{longtable}{ll}\\caption{Long one}\\\\ a & b \\\\ c & d\\end{longtable}")
    assert table.caption == "Long one"
    assert table.grid() == [["a", "b"], ["c", "d"]]
    blocks = latex_to_blocks("\\begin{table}\\begin{tabular}{l} a \\\\ \\end{tabular}\\caption{Below}\\end{table}")
    captions = [(b.kind, b.table.caption if b.table else b.text) for b in blocks]
    assert captions == [("table", "Below"), ("caption", "Below")]


def test_truncated_tabular_keeps_complete_rows() -> None:
    table = one_table("\\begin{tabular}{lll}\n a & b & c \\\\\n d & e & f \\\\\n g & h")
    assert table.truncated
    assert table.grid() == [["a", "b", "c"], ["d", "e", "f"]]
    table = one_table("\\begin{table}\\caption{Cut}\\begin{tabular}{ll} a & b \\\\ c & \\textbf{d")
    assert table.truncated and table.caption == "Cut"
    assert table.grid() == [["a", "b"]]


# --------------------------------------------------------------------------------------------------------------
# Robustness


def test_truncated_documents_degrade_gracefully() -> None:
    blocks = latex_to_blocks("\\section{Intro}\nSome text \\begin{itemize}\\item one \\item tw")
    assert [(b.kind, b.text) for b in blocks] == [
        ("heading", "Intro"),
        ("paragraph", "Some text"),
        ("list_item", "one"),
        ("list_item", "tw"),
    ]
    assert kinds_and_texts(latex_to_blocks("Text \\textbf{cut off in bo")) == [("paragraph", "Text cut off in bo")]
    assert kinds_and_texts(latex_to_blocks("\\section{Cut")) == [("heading", "Cut")]
    assert latex_to_blocks("\\begin{equation} x = ")[0].kind == "formula"
    assert kinds_and_texts(latex_to_blocks("\\title{Only a title")) == [("title", "Only a title")]


def test_every_prefix_of_a_document_reads() -> None:
    for end in range(0, len(DOCUMENT), 11):
        check_blocks(latex_to_blocks(DOCUMENT[:end]))


@pytest.mark.parametrize(
    "text",
    [
        "a } b } c",
        "{{{ a",
        "price $5 and $",
        "$$",
        "\\end{itemize} stray end",
        "\\begin{",
        "\\",
        "%",
        "&&&",
        "\\item outside a list",
        "\\multicolumn{2}{c}{x} & y \\\\ z",
        "<table><tr><td>a",
        "\\qwenocrhtmltable{7} not ours",
        "```latex\n\\section{Fenced}\n```",
        "\x00\ufeff\u202e",
    ],
)
def test_strange_input_reads(text: str) -> None:
    check_blocks(latex_to_blocks(text))


def test_pathological_nesting_falls_back_to_paragraphs() -> None:
    deep = "{" * 3000 + "x" + "}" * 3000
    blocks = latex_to_blocks(deep + "\n\nnext")
    check_blocks(blocks)
    assert blocks and all(b.kind == "paragraph" for b in blocks)
    assert blocks[-1].text == "next"
    check_blocks(latex_to_blocks("\\begin{itemize}" * 500))
    check_blocks(latex_to_blocks("\\section{" * 2000))


def test_non_string_input_is_a_qwen_ocr_error() -> None:
    with pytest.raises(QwenOCRError):
        latex_to_blocks(None)  # type: ignore[arg-type]


LATEX_TOKENS = st.sampled_from(
    [
        "\\section{",
        "\\subsection*{",
        "\\title{",
        "\\author{",
        "\\maketitle",
        "\\begin{document}",
        "\\end{document}",
        "\\begin{itemize}",
        "\\end{itemize}",
        "\\item",
        "\\item[",
        "\\begin{tabular}{ll}",
        "\\end{tabular}",
        "\\begin{table}",
        "\\end{table}",
        "\\caption{",
        "\\multicolumn{2}{c}{",
        "\\multirow{2}{*}{",
        "\\hline",
        "\\begin{equation}",
        "\\end{equation}",
        "\\begin{abstract}",
        "\\begin{verbatim}",
        "\\verb|",
        "\\[",
        "\\]",
        "$$",
        "$",
        "{",
        "}",
        "[",
        "]",
        "&",
        "\\\\",
        "%",
        "\n\n",
        "\n",
        " ",
        "word",
        "\\textbf{",
        "\\'e",
        "~",
        "<table>",
        "<tr><td>",
        "</td>",
        "</table>",
        "```",
        "\\",
        "#",
        "^",
        "_",
    ]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(LATEX_TOKENS | st.text(max_size=5), max_size=60).map("".join))
def test_fuzz_latex_like_text(text: str) -> None:
    blocks = latex_to_blocks(text)
    check_blocks(blocks)
    latex_to_text(text)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_any_text(text: str) -> None:
    check_blocks(latex_to_blocks(text))
    for task in [None, *Task]:
        check_blocks(blocks_from_result(build_result(text, task=task, model="m")))


# --------------------------------------------------------------------------------------------------------------
# blocks_from_result, task by task


def test_document_parsing_result() -> None:
    result = build_result(DOCUMENT, task=Task.DOCUMENT_PARSING, model="m")
    assert blocks_from_result(result) == latex_to_blocks(DOCUMENT)
    # without latex (a result built by hand), the text is read as LaTeX
    assert blocks_from_result(OCRResult(text="\\section{A} b", task=Task.DOCUMENT_PARSING))[0].kind == "heading"


def test_table_parsing_with_text_around_the_tables() -> None:
    raw = (
        "```html\nSales by region\n\n<table><caption>Q1</caption><tr><th>Region</th><th>Total</th></tr>"
        "<tr><td rowspan='2'>North</td><td>10</td></tr><tr><td>20</td></tr></table>\n"
        "Between\n<table><tr><td>x</td></tr><tr><td>y\n```"
    )
    result = build_result(raw, task=Task.TABLE_PARSING, model="m", finish_reason="length")
    blocks = blocks_from_result(result)
    check_blocks(blocks)
    assert [b.kind for b in blocks] == ["paragraph", "table", "paragraph", "table"]
    assert blocks[0].text == "Sales by region" and blocks[2].text == "Between"
    assert blocks[1].table is result.tables[0] and blocks[3].table is result.tables[1]
    assert blocks[1].table.caption == "Q1"
    assert blocks[1].table.grid() == [["Region", "Total"], ["North", "10"], ["North", "20"]]
    assert not blocks[1].table.truncated
    assert blocks[3].table is not None and blocks[3].table.truncated
    assert blocks[3].table.grid() == [["x"]]


def test_table_parsing_rows_without_a_table_tag() -> None:
    rows = "<tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr>"
    result = build_result(rows, task=Task.TABLE_PARSING, model="m")
    blocks = blocks_from_result(result)
    assert [b.kind for b in blocks] == ["table"]
    assert blocks[0].table is not None and blocks[0].table.grid() == [["a", "b"], ["c", "d"]]


def test_table_parsing_tables_without_html_in_the_text() -> None:
    table = Table(rows=[[TableCell(text="only")]])
    blocks = blocks_from_result(OCRResult(text="", task=Task.TABLE_PARSING, tables=[table]))
    assert [(b.kind, b.table) for b in blocks] == [("table", table)]


def test_key_information_extraction_fields() -> None:
    raw = "```json\n{'Seller': 'ACME', 'Paid': true, 'Tip': 'null', 'Items': [{'name': 'pen', 'price': 2}], "
    raw += "'Notes': {}}"
    result = build_result(raw, task=Task.KEY_INFORMATION_EXTRACTION, model="m")
    blocks = blocks_from_result(result)
    assert [b.kind for b in blocks] == ["fields"]
    assert blocks[0].fields is result.fields
    assert blocks[0].text.splitlines() == [
        "Seller: ACME",
        "Paid: true",
        "Tip: ",
        "Items[0].name: pen",
        "Items[0].price: 2",
        "Notes: ",
    ]
    listed = blocks_from_result(OCRResult(task=Task.KEY_INFORMATION_EXTRACTION, fields=[{"a": 1}, "b"]))
    assert listed[0].text == "[0].a: 1\n[1]: b"
    empty = blocks_from_result(OCRResult(task=Task.KEY_INFORMATION_EXTRACTION, fields={}))
    assert [(b.kind, b.text, b.fields) for b in empty] == [("fields", "", {})]
    # no JSON in the reply: the text as paragraphs
    nothing = blocks_from_result(build_result("no json here", task=Task.KEY_INFORMATION_EXTRACTION, model="m"))
    assert kinds_and_texts(nothing) == [("paragraph", "no json here")]


def test_advanced_recognition_lines_with_boxes() -> None:
    words_info = [
        {"text": "Hello", "location": [10, 20, 110, 20, 110, 40, 10, 40], "rotate_rect": [60, 30, 100, 20, 0]},
        {"text": "World", "location": [10, 50, 120, 50, 120, 70, 10, 70], "rotate_rect": [65, 60, 110, 20, 0]},
    ]
    result = build_result("Hello\nWorld", task=Task.ADVANCED_RECOGNITION, model="m", words_info=words_info)
    blocks = blocks_from_result(result)
    check_blocks(blocks)
    assert [(b.kind, b.text, b.bbox) for b in blocks] == [
        ("line", "Hello", (10, 20, 110, 40)),
        ("line", "World", (10, 50, 120, 70)),
    ]
    # advanced_recognition whose lines could not be read: the text as paragraphs
    assert kinds_and_texts(blocks_from_result(OCRResult(text="raw", task=Task.ADVANCED_RECOGNITION))) == [
        ("paragraph", "raw")
    ]


def test_any_result_with_lines_gives_line_blocks() -> None:
    line = TextLine(text="local", location=(0, 0, 10, 0, 10, 5, 0, 5), rotate_rect=(5, 2.5, 10, 5, 0), score=0.9)
    result = OCRResult(text="local", task=None, lines=[line], provider="local")
    assert [(b.kind, b.text, b.bbox) for b in blocks_from_result(result)] == [("line", "local", (0, 0, 10, 5))]
    result = OCRResult(text="local", task=Task.TEXT_RECOGNITION, lines=[line], provider="local")
    assert [b.kind for b in blocks_from_result(result)] == ["line"]


def test_formula_recognition() -> None:
    result = build_result("$$x^2$$\n$$\\frac{a}{b}$$", task=Task.FORMULA_RECOGNITION, model="m")
    assert [(b.kind, b.text, b.latex) for b in blocks_from_result(result)] == [
        ("formula", "x^2", "x^2"),
        ("formula", "\\frac{a}{b}", "\\frac{a}{b}"),
    ]
    bare = build_result("E = mc^2", task=Task.FORMULA_RECOGNITION, model="m")
    assert kinds_and_texts(blocks_from_result(bare)) == [("formula", "E = mc^2")]
    assert blocks_from_result(build_result("", task=Task.FORMULA_RECOGNITION, model="m")) == []


@pytest.mark.parametrize("task", [None, Task.TEXT_RECOGNITION, Task.MULTI_LAN])
def test_plain_text_paragraphs_with_tables_in_place(task: Task | None) -> None:
    raw = "First line\nsecond line\n\n  Second paragraph  \n\n\n<table><tr><td>a</td></tr></table>\nAfter"
    blocks = blocks_from_result(build_result(raw, task=task, model="m"))
    check_blocks(blocks)
    assert kinds_and_texts(blocks) == [
        ("paragraph", "First line\nsecond line"),
        ("paragraph", "Second paragraph"),
        ("table", "| a |\n| --- |"),
        ("paragraph", "After"),
    ]
    assert blocks_from_result(build_result("", task=task, model="m")) == []


def test_blocks_are_hashable_values() -> None:
    blocks = latex_to_blocks("\\section{A}\n\\begin{tabular}{l} x \\end{tabular}")
    assert len({hash(b) for b in blocks}) == 2
    with pytest.raises(AttributeError):
        blocks[0].text = "changed"  # type: ignore[misc]


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(qwen_ocr.structure, raise_on_error=False, verbose=False)
    assert tried >= 2 and failures == 0
