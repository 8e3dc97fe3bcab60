"""Public names imported on first use (PEP 562), for the packages' ``__init__`` modules.

``import qwen_ocr`` (or ``langchain_qwen_ocr``) then loads nothing else, and ``from qwen_ocr import QwenOCR`` loads
the client, not PDFium or the document layer.

Example::

    _LAZY = {"QwenOCR": "._client"}
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__``: ``where`` maps each public name to the module (relative
    to ``package``) that defines it; a name is imported on first use and kept in ``namespace``.

    >>> getattr_, dir_ = lazy_exports("qwen_ocr", {"Task": ".tasks"}, {})
    >>> getattr_("Task").__name__, dir_()
    ('Task', ['Task'])
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
