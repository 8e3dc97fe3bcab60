"""The core never imports a framework or an adapter: the adapters depend on the core, never the other way round.

Checked on the source (every ``import`` statement of every module under ``core/``, at any depth, lazy ones
inside functions included), not on what happens to be loaded, so a lazy import in a rarely used path is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parents[1] / "core" / "qwen_ocr"
FORBIDDEN = ("langchain", "langchain_core", "langgraph", "llama_index", "langchain_qwen_ocr", "llamaindex_qwen_ocr")


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


MODULES = sorted(CORE.rglob("*.py"))


def test_the_core_has_modules() -> None:
    assert len(MODULES) > 30


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_imports_a_framework_or_an_adapter(path: Path) -> None:
    bad = [name for name in _imported_modules(path) if name.split(".")[0] in FORBIDDEN or name.startswith("langchain")]
    assert bad == [], f"{path.relative_to(CORE)} imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_only_qwen_ocr_ray_imports_ray(path: Path) -> None:
    """Ray is an optional extra: ``qwen_ocr.ray`` alone imports it (``import qwen_ocr`` never does)."""
    if path.relative_to(CORE).parts[0] == "ray":
        return
    bad = [name for name in _imported_modules(path) if name.split(".")[0] == "ray"]
    assert bad == [], f"{path.relative_to(CORE)} imports {bad}"
