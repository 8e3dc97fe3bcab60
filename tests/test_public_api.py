"""Every public name imports, every package declares __all__, and the version is exposed."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import qwen_ocr

PACKAGES = ["qwen_ocr", "langchain_qwen_ocr", "llamaindex_qwen_ocr"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_import(package: str) -> None:
    module = importlib.import_module(package)
    assert hasattr(module, "__all__")
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_every_core_module_declares_all() -> None:
    for info in pkgutil.walk_packages(qwen_ocr.__path__, "qwen_ocr."):
        if info.name.endswith(("__main__", ".demo")) or ".samples" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra that is not installed
            pytest.skip(f"{info.name}: {exc}")
        assert hasattr(module, "__all__"), info.name


def test_version() -> None:
    assert qwen_ocr.__version__.count(".") == 2


def test_importing_the_core_does_not_import_frameworks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qwen_ocr; print(any(m.startswith(('langchain', 'llama_index', 'rapidocr')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
