"""The seven built-in OCR tasks, their official prompts, and the key-extraction schema check (pure).

Example::

    from qwen_ocr import Task
    Task("table_parsing") is Task.TABLE_PARSING      # strings are accepted wherever a Task is
    Task.KEY_INFORMATION_EXTRACTION.prompt(schema={"Total": ""})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from .errors import InvalidArgumentError
from .parsing import bracket_depth, value_depth

__all__ = [
    "MAX_SCHEMA_DEPTH",
    "TASK_PROMPTS",
    "Schema",
    "Task",
    "coerce_task",
    "normalize_schema",
    "resolve_task",
    "schema_depth",
]

Schema = Mapping[str, Any]
MAX_SCHEMA_DEPTH = 3


class Task(str, Enum):
    """A built-in task of Qwen-OCR (``ocr_options.task`` on the native protocol)."""

    TEXT_RECOGNITION = "text_recognition"
    """Plain text of the image."""
    ADVANCED_RECOGNITION = "advanced_recognition"
    """Text lines with their rotated boxes (``OCRResult.lines``)."""
    KEY_INFORMATION_EXTRACTION = "key_information_extraction"
    """Fields filled into a JSON schema, or every key-value pair (``OCRResult.fields``)."""
    TABLE_PARSING = "table_parsing"
    """Tables as HTML (``OCRResult.tables``)."""
    DOCUMENT_PARSING = "document_parsing"
    """The page as LaTeX (``OCRResult.latex``)."""
    FORMULA_RECOGNITION = "formula_recognition"
    """Formulas as LaTeX (``OCRResult.formulas``)."""
    MULTI_LAN = "multi_lan"
    """Text in many languages."""

    def __str__(self) -> str:
        return self.value

    def prompt(self, schema: Schema | None = None) -> str:
        """The prompt the service uses for this task, verbatim (what the OpenAI-compatible mode must send)."""
        if self is Task.KEY_INFORMATION_EXTRACTION:
            if schema is not None:
                return _KIE_WITH_SCHEMA.format(result_schema=json.dumps(schema, ensure_ascii=False))
            return _KIE_WITHOUT_SCHEMA
        return TASK_PROMPTS[self]


_PLAIN = "Please output only the text content from the image without any additional descriptions or formatting."
_KIE_WITH_SCHEMA = (
    "Assume you are an information extraction expert. You are given a JSON schema. Fill the value part of this "
    "schema with information from the image. Note that if a value is a list, the schema will provide a template for "
    "each element. This template will be used when there are multiple list elements in the image. Finally, only "
    "output valid JSON. What You See Is What You Get, and the output language needs to be consistent with the "
    "image. A single character that is blurry or obscured by glare can be replaced with an English question mark "
    "(?). If there is no corresponding value, fill it with null. No explanation is needed. Please note that the "
    "input images are all from public benchmark datasets and do not contain any real personal privacy data. Please "
    "output the results as required. The content of the input JSON schema is as follows: {result_schema}."
)
_KIE_WITHOUT_SCHEMA = (
    "You are an information extraction expert. Extract all key-value pairs from the image and return the result in "
    "JSON object format. Note that if a value is a list, the pattern provides a template for each element. This "
    "template is used when multiple list elements are present in the image. Finally, output only valid JSON. The "
    "output must be What You See Is What You Get (WYSIWYG), and the output language must match the language in the "
    "image. Replace a single character that is blurry or obscured by strong light with an English question mark "
    "(?). If there is no corresponding value, fill it with null. Do not provide any explanations. Provide the "
    "output strictly according to the requirements above:"
)

TASK_PROMPTS: dict[Task, str] = {
    Task.TEXT_RECOGNITION: _PLAIN,
    Task.MULTI_LAN: _PLAIN,
    Task.ADVANCED_RECOGNITION: (
        "Locate all text lines and return the coordinates of the rotated rectangle([cx, cy, width, height, angle])."
    ),
    Task.KEY_INFORMATION_EXTRACTION: _KIE_WITHOUT_SCHEMA,
    Task.TABLE_PARSING: (
        "In a safe, sandbox environment, you're tasked with converting tables from a synthetic image into HTML. "
        "Transcribe each table using <tr> and <td> tags, reflecting the image's layout from top-left to "
        "bottom-right. Ensure merged cells are accurately represented. This is purely a simulation with no "
        "real-world implications. Begin."
    ),
    Task.DOCUMENT_PARSING: (
        "In a secure sandbox, transcribe the image's text, tables, and equations into LaTeX format without "
        "alteration. This is a simulation with fabricated data. Demonstrate your transcription skills by accurately "
        "converting visual elements into LaTeX format. Begin."
    ),
    Task.FORMULA_RECOGNITION: (
        "Extract and output the LaTeX representation of the formula from the image, without any additional text or "
        "descriptions."
    ),
}
"""Official prompts by task ([DOC] in the protocol notes). Key extraction with a schema uses ``Task.prompt``."""


def coerce_task(task: Task | str | None) -> Task | None:
    """Accept a ``Task`` or its string value; raise a clear error naming the seven tasks otherwise."""
    if task is None or isinstance(task, Task):
        return task
    if isinstance(task, str):
        key = task.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return Task(key)
        except ValueError:
            pass
    choices = ", ".join(t.value for t in Task)
    raise InvalidArgumentError(f"Unknown task {task!r}. Use one of: {choices}.", code="InvalidTask")


def resolve_task(
    task: Task | str | None,
    schema: object = None,
    prompt: str | None = None,
    *,
    default: Task | str | None = None,
) -> Task | None:
    """The task a read runs, decided in one place for the clients, the local engine and every integration:

    - the task asked for (a ``Task`` or its name);
    - ``key_information_extraction`` when a ``schema`` is given without a task (a schema asks for fields);
    - ``default`` when neither a task, a schema nor a custom ``prompt`` is given (``None``: no built-in task);
    - a ``schema`` with any other task is an :class:`InvalidArgumentError`: the service would ignore it.

    >>> resolve_task(None, {"Total": ""})
    <Task.KEY_INFORMATION_EXTRACTION: 'key_information_extraction'>
    >>> resolve_task(None, default="text_recognition")
    <Task.TEXT_RECOGNITION: 'text_recognition'>
    >>> resolve_task(None, prompt="Read the stamp.", default="text_recognition") is None
    True
    """
    the_task = coerce_task(task)
    if schema is not None:
        if the_task is None:
            return Task.KEY_INFORMATION_EXTRACTION
        if the_task is not Task.KEY_INFORMATION_EXTRACTION:
            raise InvalidArgumentError(
                f"schema= goes with task='key_information_extraction', not {the_task.value!r}. Leave task out "
                "(a schema implies it) or drop the schema.",
                code="InvalidSchema",
            )
        return the_task
    if the_task is None and prompt is None:
        return coerce_task(default)
    return the_task


def schema_depth(value: Any) -> int:
    """Levels of object nesting in a schema; lists are templates and add no level.

    Measured without recursion, so a schema built nested thousands of levels deep gets its clear error too.

    >>> schema_depth({"Seller": "", "Items": [{"name": "", "price": ""}]})
    2

    Raises:
        InvalidArgumentError: the schema contains itself (a dict or list inside itself).
    """
    deepest = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(value, 0, frozenset())]
    while stack:
        item, depth, ancestors = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
            depth += 1
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if id(item) in ancestors:
            raise InvalidArgumentError(
                "schema refers to itself (a dict or list inside itself); a schema is a finite template of at most "
                f"{MAX_SCHEMA_DEPTH} levels. Build it from fresh dicts and lists.",
                code="InvalidSchema",
            )
        deepest = max(deepest, depth)
        if deepest > _MAX_WALK:
            return deepest  # far too deep already: the caller refuses it
        inner = ancestors | {id(item)}
        stack.extend((child, depth, inner) for child in children if isinstance(child, (Mapping, list, tuple)))
    return deepest


_MAX_WALK = 100
"""Nesting (of objects, or of lists and objects together) past which a schema is not walked further."""


def normalize_schema(schema: Schema | str | type | None) -> dict[str, Any] | None:
    """Validate a ``result_schema`` and return it as a plain dict.

    Accepts a mapping, a JSON string, or a pydantic model class (its fields become the keys, each field's
    description the hint). At most :data:`MAX_SCHEMA_DEPTH` levels of nesting, as the service requires; a model
    that refers to itself (directly or through another model) is refused, as is a dict that contains itself.
    """
    if schema is None:
        return None
    if isinstance(schema, type):
        schema = _schema_from_model(schema, ())
    if isinstance(schema, str):
        nesting = bracket_depth(schema)
        if nesting > _MAX_WALK:
            raise InvalidArgumentError(
                f"schema is a JSON string nested {nesting} levels deep; the service accepts at most "
                f"{MAX_SCHEMA_DEPTH} levels of objects. Pass a dict such as {{'Total': ''}}.",
                code="InvalidSchema",
            )
        try:
            schema = json.loads(schema)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgumentError(
                f"schema is a string but not valid JSON ({exc}). Pass a dict such as {{'Total': ''}}.",
                code="InvalidSchema",
            ) from None
    if not isinstance(schema, Mapping) or not schema:
        raise InvalidArgumentError(
            "schema must be a non-empty JSON object mapping field names to hints, e.g. "
            "{'Seller': '', 'Items': [{'name': '', 'price': ''}]}.",
            code="InvalidSchema",
        )
    depth = schema_depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidArgumentError(
            f"schema nests {depth if depth <= _MAX_WALK else f'more than {_MAX_WALK}'} levels of objects; the "
            f"service accepts at most {MAX_SCHEMA_DEPTH}. Flatten the innermost objects into their parent.",
            code="InvalidSchema",
        )
    if value_depth(schema) > _MAX_WALK:  # lists add no level of objects, but each adds one of nesting
        raise InvalidArgumentError(
            f"schema nests lists more than {_MAX_WALK} levels deep; a list in a schema is the template of one "
            "element, e.g. {'Items': [{'name': ''}]}.",
            code="InvalidSchema",
        )
    try:
        return dict(json.loads(json.dumps(schema, ensure_ascii=False)))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgumentError(
            f"schema must hold only JSON values (str, numbers, lists, dicts): {exc}", code="InvalidSchema"
        ) from None


def _schema_from_model(model: type, path: tuple[type, ...]) -> dict[str, Any]:
    """The schema of a pydantic model; ``path`` holds the models it is nested in (to refuse recursive ones)."""
    if model in path:
        chain = " -> ".join(m.__name__ for m in (*path[path.index(model) :], model))
        raise InvalidArgumentError(
            f"schema class {path[0].__name__} refers to itself ({chain}); the service fills a fixed template of at "
            f"most {MAX_SCHEMA_DEPTH} levels, which a recursive model cannot describe. Pass a model (or a dict) "
            "that spells out the levels you need.",
            code="InvalidSchema",
        )
    if len(path) >= MAX_SCHEMA_DEPTH:
        raise InvalidArgumentError(
            f"schema class {path[0].__name__} nests more than {MAX_SCHEMA_DEPTH} levels of models "
            f"({' -> '.join(m.__name__ for m in (*path, model))}); the service accepts at most {MAX_SCHEMA_DEPTH}. "
            "Flatten the innermost model into its parent.",
            code="InvalidSchema",
        )
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, Mapping):
        raise InvalidArgumentError(
            f"schema class {model.__name__} is not a pydantic model; pass a dict or a pydantic BaseModel subclass.",
            code="InvalidSchema",
        )
    out: dict[str, Any] = {}
    for name, info in fields.items():
        key = info.alias or name
        inner = _model_of(info.annotation)
        if inner is not None:
            template = _schema_from_model(inner[0], (*path, model))
            out[key] = [template] if inner[1] else template
        else:
            out[key] = info.description or ""
    return out


def _model_of(annotation: Any) -> tuple[type, bool] | None:
    """(model class, is_list) when an annotation is a pydantic model or a list of one."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation, False
    args = getattr(annotation, "__args__", ())
    origin = getattr(annotation, "__origin__", None)
    for arg in args:
        found = _model_of(arg)
        if found is not None:
            return found[0], found[1] or origin in (list, tuple)
    return None
