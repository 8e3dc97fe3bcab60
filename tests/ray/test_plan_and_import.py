"""How a reading is cut into tasks (a long PDF spread over workers, small files grouped), the row schema, and the
import rules: ``import qwen_ocr`` never imports Ray; ``qwen_ocr.ray`` without Ray says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qwen_ocr import PageResult
from qwen_ocr.ray._plan import plan
from qwen_ocr.ray._rows import COLUMNS, page_row, row_schema, rows_table
from qwen_ocr.sources import expand_sources
from tests.ray.conftest import page_png, pdf_of


def test_a_long_pdf_is_sliced_and_small_files_are_grouped(tmp_path: Path) -> None:
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(pdf_of(50))
    sources = [("a.png", page_png(1)), str(pdf), ("b.png", page_png(2)), ("c.png", page_png(3))]
    units, in_memory = plan(expand_sources(sources), pages=None, password=None, pages_per_task=None, workers=2)
    slices = [unit for unit in units if unit.slice]
    assert [page for unit in slices for page in unit.pages] == list(range(1, 51))  # every page once, in order
    assert len(slices) == 4 and {len(unit.pages) for unit in slices[:-1]} == {14}  # 53 pages / (2 x 2 workers)
    groups = [unit for unit in units if not unit.slice]
    assert [part.item.label for unit in groups for part in unit.parts] == ["a.png", "b.png", "c.png"]
    assert len(in_memory) == 3 and all(part.item.data is None for unit in groups for part in unit.parts)


def test_a_page_selection_is_kept_and_uncountable_files_go_whole(tmp_path: Path) -> None:
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(pdf_of(20))
    sources = [str(pdf), "https://example.com/x.pdf", str(tmp_path / "missing.pdf"), ("bad.pdf", b"%PDF-1.4 junk")]
    units, _ = plan(expand_sources(sources), pages="2-7", password=None, pages_per_task=4)
    assert [unit.pages for unit in units if unit.slice] == [[2, 3, 4, 5], [6, 7]]
    whole = [part.item.label for unit in units if not unit.slice for part in unit.parts]
    assert whole == ["https://example.com/x.pdf", str(tmp_path / "missing.pdf"), "bad.pdf"]
    assert all(unit.pages == "2-7" for unit in units if not unit.slice)


def test_rows_have_one_schema_whatever_the_values() -> None:
    empty = rows_table([])
    failed = PageResult(source="x.pdf", index=0, label="", total_pages=0, file_failed=True)
    table = rows_table([page_row(failed)])
    assert empty.schema == table.schema == row_schema() and table.column_names == list(COLUMNS)
    assert table.to_pylist()[0]["file_failed"] is True and table.to_pylist()[0]["input_tokens"] is None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_importing_the_core_does_not_import_ray() -> None:
    out = _run("import sys, qwen_ocr; qwen_ocr.QwenOCR; print('ray' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr


def test_without_ray_the_import_error_names_the_extra() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from qwen_ocr.errors import MissingDependencyError\n"
        "try:\n"
        "    import qwen_ocr.ray\n"
        "except MissingDependencyError as exc:\n"
        "    print(isinstance(exc, ImportError), exc.code, exc.message)\n"
    )
    out = _run(code)
    assert out.stdout.startswith('True MissingDependency qwen_ocr.ray needs Ray Data: pip install "qwen-ocr[ray]"')
