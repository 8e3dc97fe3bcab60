"""The qwen-ocr command, end to end in a subprocess: success, a bad file, a missing key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr.testing import Emulator


def run(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL")}
    env["HOME"] = env.get("TMPDIR", "/tmp")  # no credentials file of the developer's
    if key is not None:
        env["DASHSCOPE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "qwen_ocr.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def emulator() -> Any:
    with Emulator() as emu:
        yield emu


def test_read_an_image_through_the_service(emulator: Any, png_path: Path) -> None:
    done = run("read", str(png_path), "--provider", "dashscope", "--base-url", emulator.base_url, key="sk-cli")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""


def test_read_formats_and_out_dir(emulator: Any, png_path: Path, tmp_path: Path) -> None:
    base = ("--provider", "dashscope", "--base-url", emulator.base_url)
    table = run("read", str(png_path), "--task", "table_parsing", "--format", "markdown", *base, key="k")
    assert table.returncode == 0, table.stderr
    assert "| --- |" in table.stdout
    as_json = run("read", str(png_path), "--task", "key_information_extraction", "--format", "json", *base, key="k")
    record = json.loads(as_json.stdout.splitlines()[0])
    assert record["result"]["fields"]
    assert record["page"] == 0
    out = tmp_path / "out"
    written = run("read", str(png_path), "--format", "html", "--out", str(out), *base, key="k")
    assert written.returncode == 0, written.stderr
    assert (out / "sample.html").read_text(encoding="utf-8").startswith("<pre>")


def test_a_bad_file_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("<html>not an image</html>")
    done = run("read", str(bad), "--provider", "dashscope", key="k")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("qwen-ocr: error:")
    assert "HTML page" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_missing_key_is_one_clear_line(png_path: Path) -> None:
    done = run("read", str(png_path), "--provider", "dashscope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "DASHSCOPE_API_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2() -> None:
    done = run("read", "x.png", "--task", "not-a-task")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_estimate_prints_pages_tokens_and_price(png_path: Path) -> None:
    done = run("estimate", str(png_path), str(png_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["file", "pages", "to"]
    assert len(lines) == 4  # header, two files, total
    assert lines[-1].startswith("total")
