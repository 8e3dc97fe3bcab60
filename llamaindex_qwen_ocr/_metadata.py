"""What a page ``Document`` and its nodes carry: core's key set made flat, and LlamaIndex's own keys.

The keys are core's (:mod:`qwen_ocr.page_metadata`: the same names as the LangChain loader's), with every list or
object value as its JSON text, since LlamaIndex metadata is flat (``json.loads(doc.metadata["fields"])``). Each key
is declared once with its "embed / hide" flag (:data:`KEYS`: core's keys, plus the ones only LlamaIndex writes,
below); ``excluded_embed_metadata_keys`` and ``excluded_llm_metadata_keys`` are derived from those flags
(:func:`hidden_keys`), and a key this package writes without declaring it is an error, not a silent addition to
the embedded text.

Example::

    meta = flat_page_metadata(page_result)          # page_result: a qwen_ocr.PageResult
    hidden = hidden_keys(meta, own=meta)       # what embeddings and LLM prompts leave out
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qwen_ocr.page_metadata import KEYS as CORE_KEYS
from qwen_ocr.page_metadata import FlatValue, MetadataKey, declare, excluded_keys, flat_metadata
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import ContentFormat

__all__ = ["KEYS", "MetadataValue", "flat_page_metadata", "hidden_keys"]

MetadataValue = FlatValue
"""A metadata value: flat, so every LlamaIndex vector store accepts it."""

KEYS: dict[str, MetadataKey] = {
    **CORE_KEYS,
    **declare(
        # what the reader names the file by (SimpleDirectoryReader's choice: the path is context, the name is not)
        MetadataKey("file_path", True, "the file's path (or the sha256 key of bytes without a name)"),
        MetadataKey("file_name", False, "the file's name"),
        # what SimpleDirectoryReader adds
        MetadataKey("file_type", False, "the file's MIME type"),
        MetadataKey("file_size", False, "the file's size in bytes"),
        MetadataKey("creation_date", False, "when the file was created"),
        MetadataKey("last_modified_date", False, "when the file was last modified"),
        MetadataKey("last_accessed_date", False, "when the file was last read"),
        # what the node parser adds
        MetadataKey("node_kind", False, "section, text, list, table, table_summary, formula, fields, title..."),
        MetadataKey("block_index", False, "the reading-order index of the node's first block on the page"),
        MetadataKey("heading_level", False, "a section's LaTeX depth (\\section is 1)"),
        MetadataKey("table_index", False, "0-based index of the table on the page"),
        MetadataKey("table_part", False, "1-based part of a table split into several nodes"),
        MetadataKey("table_parts", False, "how many parts the table was split into"),
        MetadataKey("row_start", False, "first body row (1-based) of this part"),
        MetadataKey("row_end", False, "last body row of this part"),
        MetadataKey("n_rows", False, "the table's body rows (header and blank rows not counted)"),
        MetadataKey("n_cols", False, "the table's columns"),
        MetadataKey("caption", False, "the table's title (also the first line of its text)"),
    ),
}
"""Every key a page ``Document`` or node of this package may carry, with its "embed / hide" flag."""


def flat_page_metadata(page: PageResult, content_format: ContentFormat = "markdown") -> dict[str, MetadataValue]:
    """A page's metadata for a LlamaIndex ``Document``: :meth:`PageResult.metadata`, flat
    (:func:`qwen_ocr.page_metadata.flat_metadata`), without ``source`` (the reader names the file by
    ``file_path``).

    >>> flat_page_metadata(PageResult(source="a.pdf", index=0, label="1", total_pages=2))["page_label"]
    '1'
    """
    meta = flat_metadata(page.metadata(content_format=content_format))
    meta.pop("source", None)
    return meta


def hidden_keys(metadata: Mapping[str, Any], *, own: Iterable[str] = ()) -> list[str]:
    """The keys of ``metadata`` to exclude from the embedding and LLM text, sorted: those declared in :data:`KEYS`
    with ``embed=False``. ``own`` (the keys this package wrote) must all be declared; others (a caller's
    ``extra_info``) are embedded unless declared hidden."""
    return excluded_keys(metadata, KEYS, own=own)
