"""``ReadSettings``: the options of a reading as pydantic fields, for integrations whose settings are fields.

The LlamaIndex reader inherits these fields (with :class:`qwen_ocr.settings.ClientSettings`'s) and reads with
``read_documents(client, sources, **self.read_arguments())``; :func:`qwen_ocr.read_documents` checks the values
(:class:`qwen_ocr.engine.ReadOptions`). ``password`` is a ``SecretStr``, never serialised.

Example::

    from qwen_ocr import read_documents
    from qwen_ocr.read_settings import ReadSettings
    from qwen_ocr.settings import ClientHolder

    class MyReader(ReadSettings, ClientHolder):
        def read(self, sources):
            return list(read_documents(self.get_client(), sources, **self.read_arguments()))

    MyReader(task="table_parsing", recursive=True).read("scans/")
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from .budget import Resolution
from .engine import OnError
from .rendering import ContentFormat
from .tasks import Task, resolve_task

__all__ = ["ReadSettings"]

_PASSED = (
    "prompt",
    "max_tokens",
    "min_pixels",
    "max_pixels",
    "resolution",
    "enable_rotate",
    "pages",
    "text_layer",
    "glob",
)


class ReadSettings(BaseModel):
    """What to read and how, as fields (see :func:`qwen_ocr.read_documents`); ``content_format`` is the page text's
    format for the integration (:mod:`qwen_ocr.rendering`).

    >>> ReadSettings(schema={"Total": ""}).read_arguments()["task"]
    <Task.KEY_INFORMATION_EXTRACTION: 'key_information_extraction'>
    """

    task: Task | None = Field(
        default=Task.TEXT_RECOGNITION,
        description="The Qwen-OCR task: text_recognition, document_parsing, table_parsing, "
        "key_information_extraction, advanced_recognition, formula_recognition, multi_lan; None for a plain read. "
        "Left unset, a schema implies key_information_extraction and a custom prompt no task.",
    )
    extraction_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="For key_information_extraction: the fields to fill (a JSON-able dict, at most 3 levels).",
    )
    prompt: str | None = Field(default=None, description="A custom instruction (when no task is set).")
    pages: str | int | list[int] | None = Field(
        default=None, description="Pages to read, 1-based: '1-3,7', 5 or [1, 3]; all by default."
    )
    password: SecretStr | None = Field(
        default=None, exclude=True, description="Password of encrypted PDFs (never serialised)."
    )
    text_layer: Literal["never", "auto", "only"] | None = Field(
        default=None,
        description="'auto' uses a PDF page's own good text instead of OCR, 'only' never sends a page, 'never' OCRs "
        "every page. Default: 'auto' for plain text, 'never' for the structured tasks and custom prompts.",
    )
    on_error: OnError = Field(
        default="raise",
        description="A failed page or file: 'raise' its error, 'skip' it, or 'mark' it (empty text, error metadata).",
    )
    recursive: bool = Field(default=False, description="Also read the subfolders of a folder.")
    glob: str | None = Field(default=None, description="Which files of a folder to read (default: PDFs, images).")
    max_tokens: int | None = Field(default=None, ge=1, description="Output token limit per page.")
    min_pixels: int | None = Field(default=None, ge=1, description="Lower pixel budget of a page image.")
    max_pixels: int | None = Field(default=None, ge=1, description="Upper pixel budget of a page image.")
    resolution: Resolution | None = Field(
        default=None,
        description="Pixel budget level of a page image: 'standard' (default, 2,560 tokens), 'high' (small print) "
        "or 'max' (large pages).",
    )
    enable_rotate: bool | None = Field(default=None, description="Let the service straighten rotated pages.")
    content_format: ContentFormat = Field(
        default="markdown", description="The page text: 'markdown' (default), 'text' or the model's 'raw' text."
    )

    def read_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`qwen_ocr.read_documents`: the settings that are set, the task resolved
        (``text_recognition`` unless a task, a schema or a custom prompt says otherwise: :func:`resolve_task`), and
        ``max_concurrency`` when it was set on this object (else the client's own limit)."""
        explicit = "task" in self.model_fields_set
        task = resolve_task(
            self.task if explicit else None,
            self.extraction_schema,
            self.prompt,
            default=None if explicit else Task.TEXT_RECOGNITION,
        )
        options = {name: getattr(self, name) for name in _PASSED}
        options.update(
            task=task,
            schema=self.extraction_schema,
            password=self.password.get_secret_value() if self.password is not None else None,
            max_concurrency=getattr(self, "max_concurrency", None)
            if "max_concurrency" in self.model_fields_set
            else None,
        )
        return {
            "recursive": self.recursive,
            "on_error": self.on_error,
            **{k: v for k, v in options.items() if v is not None},
        }
