"""QwenOCRNodeParser on recorded replies (through the emulator) and on crafted ones: structure, tables, ids."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import get_leaf_nodes
from llama_index.core.schema import BaseNode, Document, IndexNode, MetadataMode, NodeRelationship, TextNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict

from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader
from qwen_ocr import QwenOCR
from qwen_ocr.results import Table, TableCell
from qwen_ocr.tables import TableLayout
from qwen_ocr.testing import Emulator

from .conftest import CROM, KEY, MULTIPAGE

Reader = Callable[..., QwenOCRReader]

HEADER = "| Measurechannel | Load point | Load method | Actual Load(%) | Actual Load(kN) |"
CHANNELS = [f"V0{i}" for i in range(2, 10)] + [f"L0{i}" for i in range(1, 9)] + [f"T{i:02d}" for i in range(1, 14)]


def kinds(nodes: Sequence[BaseNode]) -> list[str]:
    return [str(n.metadata["node_kind"]) for n in nodes]


def of_kind(nodes: Sequence[BaseNode], kind: str) -> list[BaseNode]:
    return [n for n in nodes if n.metadata["node_kind"] == kind]


def related_id(node: BaseNode, rel: NodeRelationship) -> str | None:
    info = node.relationships.get(rel)
    assert not isinstance(info, list)
    return info.node_id if info is not None else None


def relations(node: BaseNode) -> dict[str, list[str]]:
    out = {}
    for rel, info in node.relationships.items():
        out[rel.name] = [i.node_id for i in info] if isinstance(info, list) else [info.node_id]
    return out


def child_ids(node: BaseNode) -> list[str]:
    info = node.relationships.get(NodeRelationship.CHILD) or []
    assert isinstance(info, list)
    return [i.node_id for i in info]


# -- document_parsing ---------------------------------------------------------------------------------------------


def test_recorded_document_parsing_gives_sections_with_their_paragraphs(make_reader: Reader) -> None:
    docs = make_reader("document_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)

    assert kinds(nodes) == ["title", "text", "section", "text", "section", "text"]
    title, authors, abstract, abstract_text, intro, intro_text = nodes
    assert title.get_content().startswith("Qwen2-VL: Enhancing Vision-Language Model")
    assert "heading_path" not in title.metadata and "heading_path" not in authors.metadata

    assert abstract.metadata["heading_path"] == "Abstract" and abstract.metadata["heading_level"] == 1
    assert intro.metadata["heading_path"] == "Introduction"
    assert abstract_text.metadata["heading_path"] == "Abstract"
    assert intro_text.metadata["heading_path"] == "Introduction"
    # A section's text is its heading and everything under it.
    assert abstract.get_content().startswith("Abstract\n\nWe present the Qwen2-VL Series")
    assert intro.get_content() == "Introduction\n\n" + intro_text.get_content()

    # Paragraphs in plain readable form: LaTeX markup gone, the arrows read as arrows.
    intro_plain = intro_text.get_content()
    assert "visual encoder → cross-modal connector → LLM" in intro_plain
    assert "\\texttt" not in intro_plain and "$" not in intro_plain
    assert "In the realm of artificial intelligence" in intro_plain and "Recent advancements" in intro_plain

    # PARENT/CHILD between sections and their parts.
    assert child_ids(abstract) == [abstract_text.node_id]
    assert child_ids(intro) == [intro_text.node_id]
    assert related_id(abstract_text, NodeRelationship.PARENT) == abstract.node_id
    assert related_id(intro_text, NodeRelationship.PARENT) == intro.node_id
    assert NodeRelationship.PARENT not in title.relationships and NodeRelationship.PARENT not in abstract.relationships

    # PREVIOUS/NEXT in reading order over the content nodes; sections are not in that chain.
    chain = [title, authors, abstract_text, intro_text]
    for before, after in itertools.pairwise(chain):
        assert related_id(before, NodeRelationship.NEXT) == after.node_id
        assert related_id(after, NodeRelationship.PREVIOUS) == before.node_id
    assert (
        NodeRelationship.PREVIOUS not in title.relationships and NodeRelationship.NEXT not in intro_text.relationships
    )
    for section in (abstract, intro):
        assert NodeRelationship.PREVIOUS not in section.relationships
        assert NodeRelationship.NEXT not in section.relationships

    # SOURCE and page provenance on every node; the page's raw LaTeX stays on the page document.
    for node in nodes:
        assert node.ref_doc_id == docs[0].id_
        assert node.metadata["page"] == 0 and node.metadata["page_label"] == "1"
        assert node.metadata["file_name"] == "crom.png"
        assert "latex" not in node.metadata
        assert "node_kind" in node.excluded_embed_metadata_keys
        assert "request_id" in node.excluded_llm_metadata_keys


def test_ids_are_the_same_when_the_same_file_is_read_and_parsed_again(make_reader: Reader) -> None:
    reader = make_reader("document_parsing")
    parser = QwenOCRNodeParser()
    first = parser.get_nodes_from_documents(reader.load_data(MULTIPAGE))
    second = parser.get_nodes_from_documents(reader.load_data(MULTIPAGE))

    assert len(first) == 6 * 6
    assert [n.node_id for n in first] == [n.node_id for n in second]
    assert len({n.node_id for n in first}) == len(first)  # unique across pages
    for a, b in zip(first, second, strict=True):  # the same structure, node for node
        assert relations(a) == relations(b)
    # Every page's nodes name their page.
    assert {n.metadata["page_label"] for n in first} == {"1", "2", "3", "4", "5", "6"}
    assert all(n.ref_doc_id == f"{MULTIPAGE}_part_{n.metadata['page']}" for n in first)


LATEX = r"""```latex
\section{Results}
We measured three loads with \textbf{care}.
\subsection{Loads}
\begin{table}[h]
\caption{Measured loads}
\begin{tabular}{lll}
\hline
Channel & Point & Load (kN) \\
\hline
V02 & V1 & 0.815 \\
V03 & V2 & 0.615 \\
V04 & V3 & 1.007 \\
\hline
\end{tabular}
\end{table}
The energy is
\begin{equation}
E = mc^2
\end{equation}
\begin{itemize}
\item first point
\item second point
\end{itemize}
\section{Conclusion}
Done.
```"""


def test_latex_tables_formulas_lists_and_subsections(fake_reader: Reader) -> None:
    docs = fake_reader(LATEX, task="document_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)

    assert kinds(nodes) == [
        "section",
        "text",
        "section",
        "table_summary",
        "table",
        "text",
        "formula",
        "list",
        "section",
        "text",
    ]
    results, measured, loads, summary, table, energy, formula, items, conclusion, done = nodes
    assert loads.metadata["heading_path"] == "Results > Loads" and loads.metadata["heading_level"] == 2
    assert related_id(loads, NodeRelationship.PARENT) == results.node_id
    assert child_ids(results) == [measured.node_id, loads.node_id]
    assert child_ids(loads) == [table.node_id, energy.node_id, formula.node_id, items.node_id]
    assert child_ids(conclusion) == [done.node_id]
    assert measured.get_content() == "We measured three loads with care."

    # The caption travels with its table (no separate caption node).
    assert table.get_content() == (
        "Measured loads\n\n| Channel | Point | Load (kN) |\n| --- | --- | --- |\n"
        "| V02 | V1 | 0.815 |\n| V03 | V2 | 0.615 |\n| V04 | V3 | 1.007 |"
    )
    assert table.metadata["caption"] == "Measured loads" and table.metadata["heading_path"] == "Results > Loads"
    assert isinstance(summary, IndexNode) and summary.index_id == table.node_id
    assert summary.get_content() == (
        "Table Measured loads: columns Channel, Point, Load (kN); 3 rows; page 1; Channel: V02, V03, V04"
    )
    assert formula.metadata["latex"].startswith("\\begin{equation}") and "E = mc^2" in formula.get_content()
    assert items.get_content() == "- first point\n- second point"
    # The section holds the whole subsection, its table once.
    assert results.get_content().count("| V02 | V1 | 0.815 |") == 1
    assert "Loads" in results.get_content() and "second point" in results.get_content()

    chain = [measured, table, energy, formula, items, done]
    for before, after in itertools.pairwise(chain):
        assert related_id(before, NodeRelationship.NEXT) == after.node_id
    assert NodeRelationship.NEXT not in summary.relationships

    assert {n.node_id for n in get_leaf_nodes(nodes)} == {n.node_id for n in nodes} - {
        results.node_id,
        loads.node_id,
        conclusion.node_id,
    }


def test_a_long_paragraph_is_split_under_its_section(fake_reader: Reader) -> None:
    sentences = " ".join(f"Sentence number {i} talks about load channel V{i:02d}." for i in range(60))
    docs = fake_reader(f"\\section{{Long}}\n{sentences}", task="document_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser(chunk_size=64).get_nodes_from_documents(docs)

    section, *parts = nodes
    assert section.metadata["node_kind"] == "section" and len(parts) > 3
    assert all(p.metadata["node_kind"] == "text" and p.metadata["heading_path"] == "Long" for p in parts)
    assert child_ids(section) == [p.node_id for p in parts]
    assert "Sentence number 0 " in parts[0].get_content() and "V59." in parts[-1].get_content()
    assert section.get_content().count("Sentence number 30 ") == 1


# -- table_parsing ------------------------------------------------------------------------------------------------


def test_the_recorded_cut_off_table_is_marked_truncated(emulator: Emulator) -> None:
    with QwenOCR(api_key=KEY, base_url=emulator.base_url) as client:
        result = client.ocr(CROM, task="table_parsing")
    # The reply ends mid-tag ("</") with finish_reason "stop": the table knows it was cut off.
    assert result.finish_reason == "stop" and result.truncated is True
    assert result.tables[0].truncated is True


@pytest.mark.parametrize(("max_rows", "parts"), [(10, 3), (20, 2), (29, 1), (100, 1)])
def test_recorded_table_keeps_its_complete_rows_and_repeats_the_header(
    make_reader: Reader, max_rows: int, parts: int
) -> None:
    docs = make_reader("table_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser(table_max_rows=max_rows).get_nodes_from_documents(docs)

    tables = of_kind(nodes, "table")
    summaries = of_kind(nodes, "table_summary")
    assert len(tables) == len(summaries) == parts
    assert kinds(nodes) == ["table_summary", "table"] * parts

    rows: list[str] = []
    for i, table in enumerate(tables):
        text = table.get_content()
        caption, markdown = text.split("\n\n")
        assert caption.startswith("Case nameTest No.3ConductorruputreGL+GR(max angle); Last load grade: 0%")
        lines = markdown.splitlines()
        assert lines[0] == HEADER and lines[1] == "| --- | --- | --- | --- | --- |"  # header on every part
        rows.extend(lines[2:])
        meta = table.metadata
        assert meta["n_rows"] == 29 and meta["n_cols"] == 5 and meta["truncated"] is True
        assert meta["table_index"] == 0 and meta["table_part"] == i + 1 and meta["table_parts"] == parts
        assert meta["row_start"] == i * max_rows + 1 and meta["row_end"] == min((i + 1) * max_rows, 29)
        assert "<td>T13</td>" in meta["table_html"] and meta["table_html"].startswith("<table>")
        assert meta["page_label"] == "1" and meta["page"] == 0
        assert len(lines) - 2 <= max_rows
        for key in ("table_html", "n_rows", "truncated", "table_index"):
            assert key in table.excluded_embed_metadata_keys and key in table.excluded_llm_metadata_keys
        assert "<table>" not in table.get_content(metadata_mode=MetadataMode.EMBED)

    # Every complete row once, in order; the blank rows and the cut-off row are gone.
    assert [r.split(" | ")[0].strip("| ") for r in rows] == CHANNELS
    assert rows[-1] == "| T13 | WT5 | Live Load | 30.48 | 4.524 |"

    for summary, table in zip(summaries, tables, strict=True):
        assert isinstance(summary, IndexNode) and summary.index_id == table.node_id
        text = summary.get_content()
        assert text.startswith(
            "Table Case nameTest No.3ConductorruputreGL+GR(max angle); Last load grade: 0%; Current load grade: "
            "columns Measurechannel, Load point, Load method, Actual Load(%), Actual Load(kN); 29 rows; page 1"
        )
        assert ("part " in text) == (parts > 1)
        assert summary.metadata["truncated"] is True and "table_html" not in summary.metadata
    if parts > 1:  # the row labels lead a question about a row to its part
        assert "Measurechannel: " in summaries[-1].get_content() and "T13" in summaries[-1].get_content()
        assert "T13" not in summaries[0].get_content()


def test_table_nodes_on_later_pages_name_their_page(make_reader: Reader) -> None:
    docs = make_reader("table_parsing", pages="2,5").load_data(MULTIPAGE)
    nodes = QwenOCRNodeParser(table_summaries=False).get_nodes_from_documents(docs)

    assert kinds(nodes) == ["table", "table", "table", "table"]
    assert [n.metadata["page_label"] for n in nodes] == ["2", "2", "5", "5"]
    assert [n.ref_doc_id for n in nodes] == [f"{MULTIPAGE}_part_1"] * 2 + [f"{MULTIPAGE}_part_4"] * 2
    # PREVIOUS/NEXT stay within a page.
    assert NodeRelationship.NEXT not in nodes[1].relationships
    assert NodeRelationship.PREVIOUS not in nodes[2].relationships


# -- key_information_extraction and advanced_recognition -----------------------------------------------------------


def test_key_information_extraction_gives_one_fields_node(make_reader: Reader) -> None:
    docs = make_reader("key_information_extraction").load_data(CROM)
    (node,) = QwenOCRNodeParser().get_nodes_from_documents(docs)

    assert node.metadata["node_kind"] == "fields"
    assert node.get_content() == "乘车日期: 2013-06-29\n发票.发票代码: 221021325353\n发票.发票号码: 10283819"
    assert json.loads(node.metadata["fields"]) == {
        "乘车日期": "2013-06-29",
        "发票": {"发票代码": "221021325353", "发票号码": "10283819"},
    }
    assert "fields" in node.excluded_embed_metadata_keys
    assert node.metadata["page_label"] == "1"


def test_advanced_recognition_nodes_carry_the_box_around_their_lines(make_reader: Reader) -> None:
    docs = make_reader("advanced_recognition").load_data(CROM)
    (whole,) = QwenOCRNodeParser().get_nodes_from_documents(docs)
    pieces = QwenOCRNodeParser(chunk_size=8).get_nodes_from_documents(docs)

    lines = json.loads(docs[0].metadata["lines"])
    assert whole.get_content().splitlines() == [line["text"] for line in lines]
    boxes = [line["bbox"] for line in lines]
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    assert json.loads(whole.metadata["bbox"]) == union
    assert "lines" in whole.metadata and "bbox" in whole.excluded_embed_metadata_keys

    assert len(pieces) > 1
    assert "\n".join(p.get_content() for p in pieces) == whole.get_content()
    for piece in pieces:
        own = [line["bbox"] for line in json.loads(piece.metadata["lines"])]
        box = json.loads(piece.metadata["bbox"])
        assert box == [min(b[0] for b in own), min(b[1] for b in own), max(b[2] for b in own), max(b[3] for b in own)]
        assert piece.metadata["page_label"] == "1"


# -- other inputs -------------------------------------------------------------------------------------------------


def test_documents_from_other_readers_give_paragraph_and_table_nodes() -> None:
    doc = Document(
        id_="notes",
        text="First paragraph.\n\nSecond paragraph.\n\n"
        "<table><tr><th>Item</th><th>Qty</th></tr><tr><td>pen</td><td>2</td></tr></table>\n\nAfter the table.",
        metadata={"file_name": "notes.txt"},
    )
    nodes = QwenOCRNodeParser().get_nodes_from_documents([doc, Document(id_="empty", text="")])

    assert kinds(nodes) == ["text", "table_summary", "table", "text"]
    assert nodes[0].get_content() == "First paragraph.\n\nSecond paragraph."
    assert nodes[2].get_content() == "| Item | Qty |\n| --- | --- |\n| pen | 2 |"
    assert nodes[1].get_content() == "Table: columns Item, Qty; 1 row; Item: pen"
    assert nodes[3].get_content() == "After the table."
    assert all(n.ref_doc_id == "notes" and n.metadata["file_name"] == "notes.txt" for n in nodes)


def test_the_optional_llm_describes_tables(make_reader: Reader) -> None:
    docs = make_reader("table_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser(llm=MockLLM(max_tokens=3), table_max_rows=100).get_nodes_from_documents(docs)

    (summary,) = of_kind(nodes, "table_summary")
    assert summary.get_content().startswith("text text text\nTable Case nameTest No.3")
    assert "llm" not in QwenOCRNodeParser(llm=MockLLM()).to_dict()


async def test_async_parsing_matches_sync(make_reader: Reader) -> None:
    docs = make_reader("table_parsing").load_data(CROM)
    parser = QwenOCRNodeParser(llm=MockLLM(max_tokens=2))
    sync = parser.get_nodes_from_documents(docs)
    asynchronous = await parser.aget_nodes_from_documents(docs)

    assert [(n.node_id, n.get_content()) for n in asynchronous] == [(n.node_id, n.get_content()) for n in sync]


# -- metadata, helpers, serialisation -----------------------------------------------------------------------------


def test_node_metadata_is_flat_for_vector_stores(make_reader: Reader, fake_reader: Reader) -> None:
    docs = [
        *make_reader("table_parsing").load_data(CROM),
        *make_reader("advanced_recognition").load_data(CROM),
        *make_reader("key_information_extraction").load_data(CROM),
        *fake_reader(LATEX, task="document_parsing").load_data(CROM),
    ]
    for node in QwenOCRNodeParser().get_nodes_from_documents(docs):
        node_to_metadata_dict(node, flat_metadata=True)  # raises on a value that is not flat
        json.dumps(node.metadata)
        for key in ("tables_html", "latex", "lines", "fields"):
            if key in node.metadata:
                assert key in node.excluded_embed_metadata_keys and key in node.excluded_llm_metadata_keys


def test_base_nodes_and_mappings_for_recursive_retrieval(make_reader: Reader) -> None:
    docs = make_reader("table_parsing").load_data(CROM)
    nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)
    tables = of_kind(nodes, "table")

    base, mapping = QwenOCRNodeParser.get_base_nodes_and_mappings(nodes)
    assert set(mapping) == {t.node_id for t in tables}
    assert all(isinstance(n, IndexNode) for n in base)

    plain, objects = QwenOCRNodeParser.get_nodes_and_objects(nodes)
    assert plain == [] and [o.obj for o in objects] == tables


def test_parser_serialises_with_a_stable_name() -> None:
    parser = QwenOCRNodeParser(table_max_rows=7)
    data = parser.to_dict()
    assert data["class_name"] == "QwenOCRNodeParser" and data["table_max_rows"] == 7
    json.loads(parser.to_json())


# -- table layout -------------------------------------------------------------------------------------------------


def cells(*texts: str, header: bool = False) -> list[TableCell]:
    return [TableCell(text=t, header=header) for t in texts]


def test_layout_merges_header_rows_and_drops_blank_rows() -> None:
    table = Table(
        rows=[
            [TableCell(text="Name", rowspan=2, header=True), TableCell(text="Scores", colspan=2, header=True)],
            cells("Math", "Art", header=True),
            cells("Ann", "1", "2"),
            cells("", "", ""),
            cells("Bob|Jr", "3", "4\n5"),
        ]
    )
    layout = TableLayout.of(table)

    assert layout.header == ("Name", "Scores / Math", "Scores / Art")
    assert layout.body == (("Ann", "1", "2"), ("Bob|Jr", "3", "4\n5"))
    assert layout.caption == "" and layout.n_cols == 3
    assert layout.markdown(layout.body).splitlines()[-1] == "| Bob\\|Jr | 3 | 4<br>5 |"


def test_layout_reads_title_rows_as_the_caption() -> None:
    spanning = Table(rows=[[TableCell(text="Quarterly sales", colspan=2)], cells("Q", "Sales"), cells("Q1", "10")])
    assert TableLayout.of(spanning).caption == "Quarterly sales"
    assert TableLayout.of(spanning).header == ("Q", "Sales")

    captioned = Table(rows=[cells("Q", "Sales"), cells("Q1", "10")], caption="Sales by quarter")
    assert TableLayout.of(captioned).caption == "Sales by quarter"
    assert TableLayout.of(captioned).header == ("Q", "Sales")

    single = Table(rows=[cells("only")])
    assert TableLayout.of(single).header == ("only",) and TableLayout.of(single).body == ()


def test_nodes_are_text_nodes_with_the_page_templates(make_reader: Reader) -> None:
    docs = make_reader("document_parsing").load_data(CROM)
    for node in QwenOCRNodeParser().get_nodes_from_documents(docs):
        assert isinstance(node, TextNode)
        embedded = node.get_content(metadata_mode=MetadataMode.EMBED)
        assert embedded.startswith(f"file_path: {CROM}\npage_label: 1")
