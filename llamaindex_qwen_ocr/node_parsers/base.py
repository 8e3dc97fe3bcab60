"""``QwenOCRNodeParser``: page ``Document`` objects of :class:`~llamaindex_qwen_ocr.QwenOCRReader` into structured
nodes: sections with their parts, paragraphs, tables (with summary ``IndexNode`` objects), formulas and fields."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import LLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.node_parser.interface import IdFuncCallable, NodeParser
from llama_index.core.schema import BaseNode, Document, IndexNode, NodeRelationship, TextNode
from llama_index.core.utils import get_tokenizer, get_tqdm_iterable

from qwen_ocr.engine import StrictSettings
from qwen_ocr.page_metadata import STRUCTURE_KEYS, flat_metadata, result_from_metadata
from qwen_ocr.rendering import without_table_captions
from qwen_ocr.structure import Block, blocks_from_result
from qwen_ocr.tables import TableLayout

from .._metadata import hidden_keys

__all__ = ["QwenOCRNodeParser", "stable_id_func"]

_NAMESPACE = uuid.UUID("5b0f3a52-9a3c-4d3e-8f7e-6a1c0de0c0a1")
_NOT_IN_READING_ORDER = frozenset({"section", "table_summary"})
_FLOW = frozenset({"paragraph", "list_item"})
_PAGE_KEYS = ("page", "page_label", "file_name", "file_path")


def stable_id_func(i: int, doc: BaseNode) -> str:
    """The node parser's default ``id_func``: a UUID derived from the source document's id and the node's position
    among that document's nodes, so parsing the same page again gives the same ids.

    >>> stable_id_func(0, Document(id_="a.pdf_part_0", text="x")) == stable_id_func(0, Document(id_="a.pdf_part_0"))
    True
    """
    return str(uuid.uuid5(_NAMESPACE, f"{doc.node_id}\x00{i}"))


@dataclass(eq=False)
class _Draft:
    """A node before it has an id: its text, own metadata and place in the structure (drafts refer to each other
    by reference; ids are given when the page's nodes are built)."""

    kind: str
    text: str
    metadata: dict[str, Any]
    parent: _Draft | None = None
    children: list[_Draft] = field(default_factory=list)
    summary_of: _Draft | None = None  # for a table summary: the table node it stands for
    section_text: str | None = None  # what this draft adds to its enclosing sections' text
    table_markdown: str = ""  # for a summary: the table the optional LLM describes

    def summary_prompt(self) -> str:
        """What the optional LLM is asked about a summary's table."""
        return (
            "Here is a table from a scanned document.\n\n"
            f"{self.table_markdown}\n\n"
            "Describe in one or two sentences what this table is about, naming what its rows and columns hold, so "
            "that it can be found by search. Answer with the sentences only."
        )

    def describe(self, description: str) -> None:
        """Put the LLM's description of a summary's table first, on its own line."""
        description = description.strip()
        if description:
            self.text = f"{description}\n{self.text}"


class QwenOCRNodeParser(StrictSettings, NodeParser):
    """Turns Qwen-OCR page documents into structured nodes, dispatching on the page's ``task`` metadata.

    - ``document_parsing``: the page's LaTeX is read with a LaTeX parser (:mod:`qwen_ocr.structure`, pylatexenc)
      into a **section** node per heading (its text: the heading and everything under it; its ``heading_path``
      includes itself) with its parts as children: **text** nodes (paragraphs and lists in plain readable form,
      packed up to ``chunk_size`` tokens), **table** nodes, **formula** nodes (LaTeX text) and **caption** nodes.
      Subsections are children of their section. The title and text before the first heading have no parent.
    - ``table_parsing`` (and tables in any other output): **table** nodes, see below.
    - ``key_information_extraction``: one **fields** node (``key: value`` lines; ``fields`` in metadata, as JSON).
    - ``advanced_recognition``: **text** nodes of lines packed up to ``chunk_size`` tokens, each with the box
      around its lines (``bbox``) and the lines with their boxes (``lines``), as JSON.
    - anything else (plain OCR, text-layer pages, documents from other readers): **text** nodes of paragraphs.

    Table nodes: Markdown text laid out as everywhere (:mod:`qwen_ocr.tables`: the caption or title rows on the
    first line when there are any, then the header row and at most
    ``table_max_rows`` body rows; a longer table becomes several nodes, each repeating caption and header), with
    metadata ``table_html``, ``n_rows`` (body rows: header and blank rows not counted), ``n_cols``,
    ``truncated`` (the model's output was cut off inside the table: only its complete rows are there),
    ``table_index`` (0-based on the page), ``table_part``/``table_parts`` and ``row_start``/``row_end`` (1-based
    body rows of this node) and ``caption``. A table too large to lay out as a grid (``Table.oversized``: its spans
    would expand it past ``MAX_TABLE_CELLS`` slots) is one node whose text is a note and its HTML, with
    ``table_oversized`` ``True`` (its ``n_rows`` and ``n_cols`` count cells as written; its summary says it is too large
    to lay out). Each table node has a **table_summary** ``IndexNode`` whose ``index_id`` is that table node's id
    (a split table has one summary per part, so that a question about a row leads to the part holding it) and
    whose text is ``"Table <caption>: columns <header>; <n> rows; page <page_label>"`` (``"1 row"`` for one; no
    page without a ``page_label``), then for a split table ``"; part <i> of <k>, rows <a>-<b>"``, then the first
    column's values in that part (the row labels). It is built without an LLM; with ``llm=`` the LLM's description
    of the table comes first, on its own line. ``RecursiveRetriever`` follows an ``IndexNode`` to its table node
    (see :meth:`get_base_nodes_and_mappings`).

    Every node has ``node_kind``, ``page`` (0-based), ``page_label``, ``file_name``/``file_path`` and, if it has them,
    ``heading_path`` (``" > "``-joined), ``heading_level``, ``block_index`` (the reading-order index of its first
    block) and ``bbox``; the page document's metadata is merged in (``include_metadata``), except its structured
    output (``latex``, ``tables_html``, ``lines``, ...: :data:`qwen_ocr.page_metadata.STRUCTURE_KEYS`), which stays
    on the page document. The keys' names are core's (:mod:`qwen_ocr.page_metadata`), lists and objects as JSON
    text; which of them are embedded follows each key's flag (:data:`llamaindex_qwen_ocr._metadata.KEYS`).
    Relationships: ``SOURCE`` is the page document; ``PARENT``/``CHILD`` link sections to their parts;
    ``PREVIOUS``/``NEXT`` link the page's content nodes in reading order (sections and summaries are not in that
    chain). Ids come from ``id_func``, by default :func:`stable_id_func`: parsing the same page again gives the
    same ids, so an ``IngestionPipeline`` with a docstore stores each node once.

    Which nodes to index: every node is returned. To embed leaves and look the rest up, index
    ``get_leaf_nodes(nodes)`` (from ``llama_index.core.node_parser``), or for ``RecursiveRetriever`` the base
    nodes of :meth:`get_base_nodes_and_mappings` (summaries instead of their tables).

    An unknown setting is refused (:class:`~qwen_ocr.errors.InvalidArgumentError` naming the closest one, e.g.
    ``chunk_sise`` -> ``chunk_size``), as by the reader.

    Example::

        from llama_index.core.ingestion import IngestionPipeline
        from llama_index.core.storage.docstore import SimpleDocumentStore
        from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader

        docs = QwenOCRReader(task="document_parsing").load_data("paper.pdf")
        nodes = QwenOCRNodeParser(table_max_rows=20).get_nodes_from_documents(docs)
        [(n.metadata["node_kind"], n.metadata.get("heading_path")) for n in nodes]

        pipeline = IngestionPipeline(transformations=[QwenOCRNodeParser()], docstore=SimpleDocumentStore())
    """

    table_max_rows: int = Field(default=20, ge=1, description="Body rows per table node; longer tables are split.")
    chunk_size: int = Field(default=1024, gt=0, description="Tokens per text node (paragraphs and lines packed).")
    chunk_overlap: int = Field(default=0, ge=0, description="Tokens shared by consecutive pieces of a long text.")
    table_summaries: bool = Field(default=True, description="Emit a summary IndexNode for every table node.")
    llm: LLM | None = Field(
        default=None, exclude=True, description="Optional LLM that describes each table in its summary."
    )
    id_func: IdFuncCallable = Field(
        default=stable_id_func, description="Node ids from (position, source document); stable by default."
    )

    @classmethod
    def class_name(cls) -> str:
        """The stable name used in serialisation."""
        return "QwenOCRNodeParser"

    # -- NodeParser --------------------------------------------------------------------------------------------

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        pages = [(node, self._drafts(node)) for node in get_tqdm_iterable(nodes, show_progress, "Parsing pages")]
        if self.llm is not None:
            for draft in _summaries(pages):
                draft.describe(self.llm.complete(draft.summary_prompt()).text)
        return [built for node, drafts in pages for built in self._build(drafts, node)]

    async def _aparse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        pages = [(node, self._drafts(node)) for node in get_tqdm_iterable(nodes, show_progress, "Parsing pages")]
        if self.llm is not None:
            for draft in _summaries(pages):
                draft.describe((await self.llm.acomplete(draft.summary_prompt())).text)
        return [built for node, drafts in pages for built in self._build(drafts, node)]

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]) -> list[BaseNode]:
        """The base class's work (``SOURCE``, character offsets, the page's metadata merged in), then: the page's
        structured output is dropped from the nodes, the hidden keys are updated, and ``PREVIOUS``/``NEXT`` follow the
        reading order of each page's content nodes."""
        own = [set(node.metadata) for node in nodes]
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node, keys in zip(nodes, own, strict=True):
            for key in STRUCTURE_KEYS:
                if key not in keys:
                    node.metadata.pop(key, None)
            hidden = set(hidden_keys(node.metadata))
            node.excluded_embed_metadata_keys = _excluded(node.excluded_embed_metadata_keys, hidden)
            node.excluded_llm_metadata_keys = _excluded(node.excluded_llm_metadata_keys, hidden)
            node.relationships.pop(NodeRelationship.PREVIOUS, None)
            node.relationships.pop(NodeRelationship.NEXT, None)
        if self.include_prev_next_rel:
            last: dict[str, BaseNode] = {}
            for node in nodes:
                if node.metadata.get("node_kind") in _NOT_IN_READING_ORDER or node.source_node is None:
                    continue
                source = node.source_node.node_id
                previous = last.get(source)
                if previous is not None:
                    node.relationships[NodeRelationship.PREVIOUS] = previous.as_related_node_info()
                    previous.relationships[NodeRelationship.NEXT] = node.as_related_node_info()
                last[source] = node
        return nodes

    # -- helpers for retrievers --------------------------------------------------------------------------------

    @staticmethod
    def get_base_nodes_and_mappings(nodes: Sequence[BaseNode]) -> tuple[list[BaseNode], dict[str, BaseNode]]:
        """Split parsed nodes for ``RecursiveRetriever``: the nodes to index (every node that no ``IndexNode``
        points to) and ``{index_id: node}`` for the nodes the summaries point to (the ``node_dict``).

        Example::

            base, mapping = QwenOCRNodeParser.get_base_nodes_and_mappings(get_leaf_nodes(nodes))
            retriever = RecursiveRetriever("vector", retriever_dict={"vector": BM25Retriever.from_defaults(
                nodes=base)}, node_dict=mapping)
        """
        by_id = {node.node_id: node for node in nodes}
        mapping = {
            node.index_id: by_id[node.index_id]
            for node in nodes
            if isinstance(node, IndexNode) and node.index_id in by_id
        }
        return [node for node in nodes if node.node_id not in mapping], mapping

    @staticmethod
    def get_nodes_and_objects(nodes: Sequence[BaseNode]) -> tuple[list[BaseNode], list[IndexNode]]:
        """Like ``BaseElementNodeParser.get_nodes_and_objects``: the text nodes, and the summary ``IndexNode``
        objects with ``obj`` set to their table node (for ``VectorStoreIndex(nodes + objects)``)."""
        base, mapping = QwenOCRNodeParser.get_base_nodes_and_mappings(nodes)
        objects: list[IndexNode] = []
        plain: list[BaseNode] = []
        for node in base:
            if isinstance(node, IndexNode):
                node.obj = mapping.get(node.index_id)
                objects.append(node)
            else:
                plain.append(node)
        return plain, objects

    # -- drafting ----------------------------------------------------------------------------------------------

    def _drafts(self, doc: BaseNode) -> list[_Draft]:
        meta = doc.metadata
        text = doc.get_content()
        result = result_from_metadata(meta, text)
        if not text.strip() and not any(meta.get(key) for key in STRUCTURE_KEYS):
            return []
        blocks = blocks_from_result(result)
        base = {key: meta[key] for key in _PAGE_KEYS if key in meta}
        return _Drafter(self, base, str(meta.get("page_label", ""))).run(blocks)

    def _build(self, drafts: list[_Draft], doc: BaseNode) -> list[BaseNode]:
        """The page's nodes: ids by position (``id_func``), relationships from the drafts' references."""
        source = {NodeRelationship.SOURCE: doc.as_related_node_info()}
        excluded_embed = set(doc.excluded_embed_metadata_keys)
        excluded_llm = set(doc.excluded_llm_metadata_keys)
        ids = {draft: self.id_func(i, doc) for i, draft in enumerate(drafts)}
        built: dict[_Draft, TextNode] = {}
        for draft in drafts:
            hidden = set(hidden_keys(draft.metadata, own=draft.metadata))
            common: dict[str, Any] = {
                "id_": ids[draft],
                "text": draft.text,
                "metadata": draft.metadata,
                "excluded_embed_metadata_keys": _excluded(excluded_embed, hidden),
                "excluded_llm_metadata_keys": _excluded(excluded_llm, hidden),
                "metadata_template": getattr(doc, "metadata_template", "{key}: {value}"),
                "metadata_separator": getattr(doc, "metadata_separator", "\n"),
                "text_template": getattr(doc, "text_template", "{metadata_str}\n\n{content}"),
                "relationships": dict(source),
            }
            if draft.summary_of is None:
                built[draft] = TextNode(**common)
            else:
                built[draft] = IndexNode(index_id=ids[draft.summary_of], **common)
        for draft, node in built.items():
            if draft.parent is not None:
                node.relationships[NodeRelationship.PARENT] = built[draft.parent].as_related_node_info()
            if draft.children:
                node.relationships[NodeRelationship.CHILD] = [built[c].as_related_node_info() for c in draft.children]
        return list(built.values())


def _summaries(pages: Sequence[tuple[BaseNode, list[_Draft]]]) -> Iterator[_Draft]:
    """The table summaries among the pages' drafts (what the optional LLM describes)."""
    return (draft for _, drafts in pages for draft in drafts if draft.summary_of is not None)


def _excluded(keys: Sequence[str] | set[str], hidden: set[str]) -> list[str]:
    """``keys`` (the page document's excluded keys, without its structured output, which nodes do not carry) and
    ``hidden``, sorted."""
    return sorted(set(keys) - set(STRUCTURE_KEYS) | hidden)


def _continues(last: Block, block: Block) -> bool:
    """Whether ``block`` joins the run that ``last`` ends (same section; lines with lines, text with text)."""
    if block.heading_path != last.heading_path:
        return False
    if last.kind == "line":
        return block.kind == "line"
    return block.kind in _FLOW


class _Drafter:
    """Walks a page's blocks in reading order and drafts its nodes."""

    def __init__(self, parser: QwenOCRNodeParser, base: dict[str, Any], page_label: str) -> None:
        self.parser = parser
        self.base = base
        self.page_label = page_label
        self.drafts: list[_Draft] = []
        self.sections: dict[tuple[str, ...], _Draft] = {}  # heading path -> its section draft (the latest)
        self.tables = 0
        self._splitter: SentenceSplitter | None = None
        self._tokenizer = get_tokenizer()

    # -- walking

    def run(self, blocks: list[Block]) -> list[_Draft]:
        run: list[Block] = []  # consecutive paragraphs and list items, or consecutive lines, of one section
        # a caption that names a table is read with the table (its text starts with it): no node of its own
        for block in without_table_captions(blocks):
            if run and not _continues(run[-1], block):
                self._flush(run)
                run = []
            if block.kind in _FLOW or block.kind == "line":
                run.append(block)
            elif block.kind == "heading":
                self._section(block)
            elif block.kind == "table" and block.table is not None:
                self._table(block)
            elif block.kind == "fields":
                self._add("fields", block.text, block, extra={"fields": block.fields})
            elif block.kind == "formula":
                self._add("formula", block.text, block, extra={"latex": block.latex or block.text})
            elif block.text:  # title, caption of a figure
                self._add(block.kind, block.text, block)
        self._flush(run)
        self._section_texts()
        return self.drafts

    def _flush(self, run: list[Block]) -> None:
        if not run:
            return
        if run[0].kind == "line":
            self._lines(run)
            return
        parts: list[str] = []
        for block in run:
            if block.kind == "list_item":
                item = "  " * max(block.level - 1, 0) + f"- {block.text}"
                if parts and parts[-1].lstrip().startswith("- "):
                    parts[-1] += "\n" + item
                else:
                    parts.append(item)
            else:
                parts.append(block.text)
        text = "\n\n".join(p for p in parts if p)
        kind = "list" if all(block.kind == "list_item" for block in run) else "text"
        chunks = self._split(text)
        for i, chunk in enumerate(chunks):
            self._add(kind, chunk, run[0], section_text=text if i == 0 else "")

    def _lines(self, run: list[Block]) -> None:
        """Lines packed into nodes of up to ``chunk_size`` tokens, each with the box around its lines."""
        group: list[Block] = []
        tokens = 0
        for block in run:
            size = len(self._tokenizer(block.text)) + 1
            if group and tokens + size > self.parser.chunk_size:
                self._line_node(group)
                group, tokens = [], 0
            group.append(block)
            tokens += size
        if group:
            self._line_node(group)

    def _line_node(self, group: list[Block]) -> None:
        boxes = [block.bbox for block in group if block.bbox is not None]
        extra: dict[str, Any] = {}
        if boxes:
            extra["bbox"] = [
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            ]
            extra["lines"] = [{"text": b.text, "bbox": list(b.bbox)} for b in group if b.bbox is not None]
        self._add("text", "\n".join(block.text for block in group), group[0], extra=extra)

    def _split(self, text: str) -> list[str]:
        if len(self._tokenizer(text)) <= self.parser.chunk_size:
            return [text]
        if self._splitter is None:
            self._splitter = SentenceSplitter(
                chunk_size=self.parser.chunk_size,
                chunk_overlap=min(self.parser.chunk_overlap, self.parser.chunk_size - 1),
                include_metadata=False,
            )
        return [chunk for chunk in self._splitter.split_text(text) if chunk.strip()] or [text]

    # -- drafts

    def _metadata(self, kind: str, block: Block, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A node's own keys, flat (lists and objects as JSON text, as on the page document)."""
        meta: dict[str, Any] = {**self.base, "node_kind": kind, "block_index": block.index}
        if block.heading_path:
            meta["heading_path"] = " > ".join(block.heading_path)
        if block.bbox is not None:
            meta["bbox"] = list(block.bbox)
        meta.update(extra or {})
        return flat_metadata(meta)

    def _place(self, draft: _Draft, path: tuple[str, ...]) -> _Draft:
        """Append ``draft`` in reading order, as a child of the section of ``path`` (if any)."""
        draft.parent = self.sections.get(path) if path else None
        if draft.parent is not None:
            draft.parent.children.append(draft)
        self.drafts.append(draft)
        return draft

    def _add(
        self,
        kind: str,
        text: str,
        block: Block,
        *,
        extra: dict[str, Any] | None = None,
        section_text: str | None = None,
    ) -> _Draft:
        section_text = text if section_text is None else section_text
        draft = _Draft(kind, text, self._metadata(kind, block, extra), section_text=section_text)
        return self._place(draft, block.heading_path)

    def _section(self, block: Block) -> None:
        meta = self._metadata("section", block, {"heading_level": block.level})
        self.sections[block.heading_path] = self._place(_Draft("section", block.text, meta), block.heading_path[:-1])

    def _table(self, block: Block) -> None:
        """A table's nodes: one per ``table_max_rows`` body rows, the caption and header repeated; a table too
        large to lay out is one node, its text a note and the HTML (bounded by the model's output). Each is led by
        its summary."""
        assert block.table is not None
        table = block.table
        layout = TableLayout.of(table)
        body = layout.body
        if layout.oversized:
            slices = [body]
            texts = [table.to_markdown()]
        else:
            size = self.parser.table_max_rows
            slices = [body[i : i + size] for i in range(0, len(body), size)] or [()]
            texts = [layout.markdown(rows, caption=True) for rows in slices]
        common: dict[str, Any] = {
            "table_html": table.to_html(),
            "n_rows": len(body),
            "n_cols": layout.n_cols,
            "truncated": table.truncated,
            "table_oversized": True if layout.oversized else None,
            "table_index": self.tables,
            "caption": layout.caption or None,
        }
        whole = texts[0] if layout.oversized else layout.markdown(body, caption=True)
        start = 0
        for part, (rows, text) in enumerate(zip(slices, texts, strict=True)):
            extra = {
                **common,
                "table_part": part + 1,
                "table_parts": len(slices),
                "row_start": start + 1 if rows else 0,
                "row_end": start + len(rows),
            }
            node = _Draft("table", text, self._metadata("table", block, extra), section_text=whole if part == 0 else "")
            if self.parser.table_summaries:
                summary = self._summary_text(layout, rows, part, len(slices), start)
                if layout.oversized:
                    summary += "; too large to lay out, shown as its HTML"
                meta = self._metadata("table_summary", block, {**extra, "table_html": None})
                self.drafts.append(
                    _Draft("table_summary", summary, meta, summary_of=node, section_text="", table_markdown=text)
                )
            self._place(node, block.heading_path)
            start += len(rows)
        self.tables += 1

    def _summary_text(
        self, layout: TableLayout, rows: Sequence[Sequence[str]], part: int, parts: int, start: int
    ) -> str:
        columns = ", ".join(name for name in layout.header if name) or "none"
        title = f"Table {layout.caption.rstrip(':; ')}" if layout.caption else "Table"
        n = len(layout.body)
        text = f"{title}: columns {columns}; {n} {'row' if n == 1 else 'rows'}"
        if self.page_label:
            text += f"; page {self.page_label}"
        if parts > 1:
            text += f"; part {part + 1} of {parts}, rows {start + 1}-{start + len(rows)}"
        labels = [row[0].strip() for row in rows if row and row[0].strip()]
        if labels:
            name = layout.header[0] if layout.header and layout.header[0] else "first column"
            listing = ", ".join(labels)
            if len(listing) > 300:
                listing = listing[:300].rsplit(", ", 1)[0] + ", ..."
            text += f"; {name}: {listing}"
        return text

    def _section_texts(self) -> None:
        """A section's text: its heading and the text of everything under it, in reading order."""

        def full(draft: _Draft) -> str:
            parts = [draft.text]
            for child in draft.children:
                piece = full(child) if child.kind == "section" else child.section_text
                if piece:
                    parts.append(piece)
            return "\n\n".join(parts)

        texts = {draft: full(draft) for draft in self.drafts if draft.kind == "section"}
        for draft, text in texts.items():
            draft.text = text
