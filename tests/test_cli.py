"""The qwen-ocr command, end to end in a subprocess: success, a bad file, a missing key."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr.testing import Emulator
from tests.conftest import make_image


def run(*args: str, key: str | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL")}
    env["HOME"] = env.get("TMPDIR", "/tmp")  # no credentials file of the developer's
    if key is not None:
        env["DASHSCOPE_API_KEY"] = key
    if stdin is not None:
        done = subprocess.run(
            [sys.executable, "-m", "qwen_ocr.cli", *args], input=stdin, capture_output=True, env=env, timeout=120
        )
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())
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
    summary = done.stderr.splitlines()
    assert len(summary) == 1
    assert re.fullmatch(r"qwen-ocr: 1 file, 1 page, 0 failed, [\d,]+ tokens, ~\$0\.\d{4}", summary[0])


def test_read_formats_and_out_dir(emulator: Any, png_path: Path, tmp_path: Path) -> None:
    base = ("--provider", "dashscope", "--base-url", emulator.base_url)
    table = run("read", str(png_path), "--task", "table_parsing", "--format", "markdown", *base, key="k")
    assert table.returncode == 0, table.stderr
    assert "| --- |" in table.stdout
    as_json = run("read", str(png_path), "--task", "key_information_extraction", "--format", "json", *base, key="k")
    record = json.loads(as_json.stdout)[0]
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
    assert len(lines) == 2  # the error, then the summary line
    assert lines[1].startswith("qwen-ocr: 1 file, 0 pages, 1 failed")
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


# -- a good Unix tool: one JSON document, JSON Lines, standard input, folders, a cache, progress, a summary ----------

BORN_DIGITAL = Path(__file__).parent / "data" / "corpus" / "py-pdf" / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"


@pytest.fixture
def service(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """In-process runs against the emulator: the options, with a key in the environment."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-cli")
    emulator.reset()
    return ["--provider", "dashscope", "--base-url", emulator.base_url, "--no-progress"]


def images(folder: Path, *names: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(make_image(text=name))
    return [str(folder / name) for name in names]


def test_json_is_one_document_through_a_pipe(emulator: Any, tmp_path: Path) -> None:
    """Done when: ``qwen-ocr read a.png b.png --format json | python -c 'import json,sys; json.load(sys.stdin)'``."""
    a, b = images(tmp_path, "a.png", "b.png")
    done = run("read", a, b, "--format", "json", "--provider", "dashscope", "--base-url", emulator.base_url, key="k")
    assert done.returncode == 0, done.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import json,sys; print(len(json.load(sys.stdin)))"],
        input=done.stdout, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert check.stdout.strip() == "2"
    records = json.loads(done.stdout)
    assert [r["source"] for r in records] == [a, b]
    assert all(r["error"] is None and r["result"]["text"] for r in records)


def test_json_is_valid_with_no_record_and_with_failed_pages(
    service: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    assert main(["read", str(tmp_path / "missing.png"), "--format", "json", *service]) == 1
    assert json.loads(capsys.readouterr().out) == []
    (good,) = images(tmp_path, "good.png")
    assert main(["read", good, "--pages", "1-2", "--format", "json", *service]) == 1  # page 2 does not exist
    assert json.loads(capsys.readouterr().out) == []  # the file failed as a whole: named on stderr, no record


def test_jsonl_is_one_record_per_line(service: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qwen_ocr.cli import main

    paths = images(tmp_path, "a.png", "b.png", "c.png")
    assert main(["read", *paths, "--format", "jsonl", *service]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["source"] for line in lines] == paths
    out = tmp_path / "out"
    assert main(["read", *paths[:1], "--format", "json", "--out", str(out), *service]) == 0
    assert main(["read", *paths[:1], "--format", "jsonl", "--out", str(out), *service]) == 0
    assert json.loads((out / "a.json").read_text(encoding="utf-8"))[0]["source"] == paths[0]
    assert json.loads((out / "a.jsonl").read_text(encoding="utf-8").splitlines()[0])["source"] == paths[0]


def test_read_standard_input(emulator: Any, png_bytes: bytes, tmp_path: Path) -> None:
    base = ("--provider", "dashscope", "--base-url", emulator.base_url)
    done = run("read", "-", "--format", "jsonl", *base, key="k", stdin=png_bytes)
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["source"] == "<stdin>"
    assert record["result"]["text"]
    out = tmp_path / "out"
    written = run("read", "-", "--out", str(out), *base, key="k", stdin=png_bytes)
    assert written.returncode == 0, written.stderr
    assert (out / "stdin.txt").read_text(encoding="utf-8").strip()


def test_standard_input_is_refused_when_it_is_a_terminal_or_given_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["read", "-", "--provider", "local"]) == 2
    assert "pipe a file in" in capsys.readouterr().err
    assert main(["read", "-", "-", "--provider", "local"]) == 2
    assert "once" in capsys.readouterr().err


def test_read_a_folder_and_its_subfolders(
    service: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    top = images(tmp_path / "scans", "a.png", "b.png")
    deep = images(tmp_path / "scans" / "old", "c.png")
    (tmp_path / "scans" / "notes.txt").write_text("not read: not a PDF or an image by its name")
    folder = str(tmp_path / "scans")
    assert main(["read", folder, "--format", "jsonl", *service]) == 0
    assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == top
    assert main(["read", folder, "--recursive", "--format", "jsonl", *service]) == 0
    assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == [*top, *deep]
    assert main(["read", str(tmp_path / "scans" / "old" / ".."), "--format", "jsonl", *service]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty"
    images(empty / "sub", "d.png")
    assert main(["read", str(empty), *service]) == 1
    assert "--recursive" in capsys.readouterr().err  # the option's name on the command line, not recursive=True


def test_cache_serves_a_second_run(
    service: list[str], emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = images(tmp_path, "a.png", "b.png")
    cache = str(tmp_path / "cache")
    assert main(["read", *paths, "--cache", cache, *service]) == 0
    first = capsys.readouterr()
    sent = emulator.stats.requests
    assert sent == 2
    assert main(["read", *paths, "--cache", cache, *service]) == 0
    second = capsys.readouterr()
    assert emulator.stats.requests == sent  # nothing sent again
    assert second.out == first.out
    assert "2 pages (2 from the cache), 0 failed, 0 tokens" in second.err


def test_default_concurrency_is_the_librarys(capsys: pytest.CaptureFixture[str]) -> None:
    from qwen_ocr.cli import main
    from qwen_ocr.options import DEFAULT_MAX_CONCURRENCY

    with pytest.raises(SystemExit):
        main(["read", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULT_MAX_CONCURRENCY}, the library's)" in shown
    for word in ("ONE JSON document", "jsonl", "JSON Lines", "- (stdin)", "--recursive", "--cache", "tqdm"):
        assert word in shown
    with pytest.raises(SystemExit) as info:
        main(["read", "x.png", "--concurrency", "0"])
    assert info.value.code == 2


class _Terminal(io.StringIO):
    """A stderr that is a terminal (of no known width)."""

    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_counts_the_selected_pages(
    service: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with_bar = [s for s in service if s != "--no-progress"]
    assert main(["read", str(BORN_DIGITAL), "--pages", "1-3", "--text-layer", "never", *with_bar]) == 0
    shown = terminal.getvalue()
    states = [s for s in re.split(r"[\r\n]", shown) if "%|" in s]
    assert states, shown
    assert "3/3" in states[-1]
    assert "page/s" in states[-1]  # the rate
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", states[-1])  # elapsed<time left
    assert "/4" not in shown  # never the whole document's pages
    assert shown.rstrip().splitlines()[-1].startswith("qwen-ocr: 1 file, 3 pages, 0 failed")
    assert capsys.readouterr().out.count("==>") == 3


def test_no_progress_on_a_pipe_and_none_with_quiet(
    service: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    with_bar = [s for s in service if s != "--no-progress"]
    assert main(["read", str(BORN_DIGITAL), "--text-layer", "never", *with_bar]) == 0
    err = capsys.readouterr().err
    assert "%|" not in err and "\r" not in err  # stderr is not a terminal here
    assert err.splitlines() == [err.strip()]  # the summary line only
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["read", str(BORN_DIGITAL), "--quiet", *with_bar]) == 0
    assert terminal.getvalue() == ""


def test_markdown_keeps_the_line_breaks_of_plain_text(service: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A page read as plain text (here from the PDF's text layer) is several lines; Markdown would join them into
    one paragraph unless each ends in a hard break."""
    from qwen_ocr.cli import hard_breaks, main

    assert main(["read", str(BORN_DIGITAL), "--pages", "1", "--format", "markdown", *service]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) > 3
    assert all(line.endswith("  ") for line in lines[:-1] if not line.startswith("#"))
    assert hard_breaks("a\nb\n\nc\n") == "a  \nb\n\nc\n"
    assert hard_breaks("| a |\n| --- |") == "| a |  \n| --- |"  # (tables never get here: see the next test)


def test_markdown_leaves_tables_as_they_are(
    service: list[str], png_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    assert main(["read", str(png_path), "--task", "table_parsing", "--format", "markdown", *service]) == 0
    out = capsys.readouterr().out
    assert "| --- |" in out
    assert not any(line.endswith("  ") for line in out.splitlines())


def test_summary_line_and_exit_code(service: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qwen_ocr.cli import main

    good = images(tmp_path, "a.png", "b.png")
    assert main(["read", *good, str(tmp_path / "missing.png"), *service]) == 1
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r"qwen-ocr: 3 files, 2 pages, 1 failed, [\d,]+ tokens, ~\$0\.\d{4}", summary), summary
    tokens = int(re.search(r"([\d,]+) tokens", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert tokens > 0
    assert main(["read", str(BORN_DIGITAL), *service]) == 0  # every page from the text layer: nothing sent
    assert "4 pages (4 from the text layer), 0 failed, 0 tokens, $0" in capsys.readouterr().err


def test_estimate_reads_folders_and_goes_on_after_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = images(tmp_path / "in", "a.png", "b.png")
    (tmp_path / "in" / "broken.pdf").write_bytes(b"%PDF-1.7 cut short")
    assert main(["estimate", str(tmp_path / "in")]) == 1
    captured = capsys.readouterr()
    assert "broken.pdf" in captured.err
    assert all(path in captured.out for path in paths)
    assert captured.out.splitlines()[-1].startswith("total")
