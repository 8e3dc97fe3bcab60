"""``qwen-ocr batch`` against the emulator: submit, status, wait, results, cancel, in-process through ``main``, and
once through ``python -m qwen_ocr.cli`` to prove the wiring; exit codes, one-line errors, the cache hand-off."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qwen_ocr
from qwen_ocr import QwenOCR
from qwen_ocr.batch import BatchJob, _job
from qwen_ocr.cli import main
from qwen_ocr.cli_batch import NOT_FINISHED
from qwen_ocr.errors import APIConnectionError
from qwen_ocr.testing import Emulator

from .conftest import png

ROOT = Path(qwen_ocr.__file__).parents[2]
WAIT = ["--poll-interval", "0.02", "--timeout", "20"]


@pytest.fixture
def service(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The submit options of a Beijing client of the emulator, with a key in the environment."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-batch-cli")
    for name in ("DASHSCOPE_BASE_URL", "DASHSCOPE_API_REGION", "DASHSCOPE_WORKSPACE_ID", "DASHSCOPE_HTTP_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return ["--base-url", emulator.base_url, "--region", "cn"]


def _order(scans: list[str]) -> list[tuple[str, int]]:
    return [(path, 0) for path in scans[:24]] + [(scans[24], i) for i in range(6)]


def test_submit_status_wait_results_end_to_end(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.batches.configure(fail_share=0.2)
    job = tmp_path / "jobs" / "june"
    folder = str(Path(scans[0]).parent)

    assert main(["batch", "submit", folder, "--job", str(job), *service, "--metadata", "ds_name=june"]) == 0
    out = capsys.readouterr().out
    assert (
        "submitted: 30 pages in 30 lines, 1 batch (model qwen-vl-ocr, region cn-beijing, completion window 24h)" in out
    )
    assert "estimated cost: ~$" in out and "at the Batch price" in out
    stats = emulator.batches.stats
    assert stats.uploads == 1 and stats.batches_created == 1 and stats.chat_requests == 0

    assert main(["batch", "status", str(job)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("job ") and "30 pages" in table[0]
    assert table[1].split() == ["round", "part", "batch", "status", "lines", "completed", "failed"]
    assert table[2].split()[:2] == ["1", "0"] and table[2].split()[2].startswith("batch_")
    assert table[-1].split()[0] == "total"

    assert main(["batch", "wait", str(job), *WAIT]) == 0
    err = capsys.readouterr().err
    assert "finished in 2 rounds: 30 pages, 0 failed; 30 lines billed" in err, "the retryable failures: round 2"
    assert "at the Batch price" in err and "qwen-ocr batch results" in err

    target = tmp_path / "out" / "june.jsonl"
    assert main(["batch", "results", str(job), "--format", "jsonl", "--out", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote {target}" in captured.err and "30 pages, 0 failed" in captured.err
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(r["source"], r["page"]) for r in records] == _order(scans), "input order"
    assert all(r["error"] is None and r["result"]["text"] for r in records)
    assert set(records[0]) == {"source", "page", "page_label", "total_pages", "text_source", "result", "error"}
    assert records[0]["result"]["metadata"]["batch"].startswith("batch_")
    assert not list(target.parent.glob(".*.part")), "no temporary file left"
    with QwenOCR(api_key="k", base_url=emulator.base_url) as client:
        pages = list(BatchJob.open(job, client=client).results())
    assert [r["result"]["text"] for r in records] == [p.text for p in pages]

    assert main(["batch", "status", str(job)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    total = rows[-1]
    assert total[:2] == ["total", "done"]
    assert [int(v) for v in total[2:]] == [sum(int(row[4 + i]) for row in rows[:-1]) for i in range(3)], "they add up"
    assert int(total[2]) > 30 and int(total[3]) == 30, "the retried lines count again; each page completed once"

    assert main(["batch", "status", str(job), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["done"] is True and status["rounds"] == 2 and status["pages"] == 30
    assert emulator.batches.stats.chat_requests == 0, "no real-time request"


def test_results_text_and_markdown_stream_to_stdout_and_mark_failed_pages(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.batches.configure(permanent_share=0.3)
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:10], "--job", str(job), *service, "--json"]) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["status"]["lines"] == 10 and submitted["estimate"]["lines_billed"] == 10
    assert submitted["estimate"]["usd"] == pytest.approx(submitted["estimate"]["realtime_usd"] / 2)
    assert main(["batch", "wait", str(job), *WAIT, "--quiet"]) == 0
    assert capsys.readouterr().err == ""

    assert main(["batch", "results", str(job), "--format", "txt", "--out", "-"]) == 1
    text = capsys.readouterr()
    headers = [line for line in text.out.splitlines() if line.startswith("==> ")]
    assert headers == [f"==> {path} (page 1) <==" for path in scans[:10]], "every page, in input order"
    marked = text.out.count("[not read: BadRequestError, invalid_parameter: The image cannot be decoded")
    named = [line for line in text.err.splitlines() if line.startswith("qwen-ocr: error: ")]
    assert 1 <= marked == len(named) < 10, "each failed page marked in place and named on stderr"
    assert text.err.rstrip().endswith(f"qwen-ocr: 10 pages, {marked} failed")

    assert main(["batch", "results", str(job), "--format", "md"]) == 1
    markdown = capsys.readouterr().out
    assert (
        markdown.count("## ") == 10 and markdown.count("> **Not read** (BadRequestError, invalid_parameter)") == marked
    )
    assert f"## {scans[0]}, page 1" in markdown


def test_a_job_not_finished_exits_3_and_cancel_marks_the_rest(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.batches.configure(stall_after=3)  # the batch runs 3 of its lines, then waits to be cancelled
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:6], "--job", str(job), *service]) == 0
    capsys.readouterr()

    assert main(["batch", "wait", str(job), "--poll-interval", "0.02", "--timeout", "0.2", "--no-progress"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not finished after 0.2 s" in err[0] and "batch wait" in err[0]
    assert main(["batch", "results", str(job)]) == NOT_FINISHED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "call job.wait() first" in err[0]

    assert main(["batch", "cancel", str(job)]) == 0
    cancelled = capsys.readouterr()
    assert "cancel" in cancelled.out and "qwen-ocr batch wait" in cancelled.err
    assert main(["batch", "wait", str(job), *WAIT, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["batch", "results", str(job)]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source"] for r in records] == scans[:6]
    read = [r for r in records if r["error"] is None]
    marked = [r for r in records if r["error"] is not None]
    assert len(read) == 3 and {r["error"]["type"] for r in marked} == {"BatchCancelledError"}


def test_progress_lines_on_stderr_when_it_is_not_a_terminal(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.batches.configure(in_progress=0.3)
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:4], "--job", str(job), *service]) == 0
    capsys.readouterr()
    assert main(["batch", "wait", str(job), *WAIT]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    progress = [line for line in lines if "lines)" in line]
    assert progress and all(line.startswith("qwen-ocr: job ") for line in progress)
    assert len(set(progress)) == len(progress), "a line only when something changed"
    assert "finished" in lines[-1]


class _Terminal(io.StringIO):
    """A stderr that is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_progress_bar_of_lines_on_a_terminal(
    emulator: Emulator,
    service: list[str],
    scans: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator.batches.configure(in_progress=0.3)
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:4], "--job", str(job), *service]) == 0
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["batch", "wait", str(job), *WAIT]) == 0
    shown = terminal.getvalue()
    states = [s for s in re.split(r"[\r\n]", shown) if "%|" in s]
    assert states and all("/4 " in s and "line" in s for s in states), shown
    assert shown.rstrip().splitlines()[-1].startswith("qwen-ocr: job ")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["batch", "wait", str(job), *WAIT, "--quiet"]) == 0
    assert terminal.getvalue() == ""


def test_submit_shows_its_progress_bars_on_a_terminal_not_with_quiet(
    service: list[str], scans: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["batch", "submit", *scans[:5], "--job", str(tmp_path / "a"), *service]) == 0
    shown = re.split(r"[\r\n]", terminal.getvalue())
    assert any("preparing" in s and "5/5" in s and "page" in s for s in shown), shown
    assert any("uploading" in s and "5/5" in s and "line" in s for s in shown), shown
    for quiet in ("--quiet", "-q", "--no-progress"):
        terminal = _Terminal()
        monkeypatch.setattr("sys.stderr", terminal)
        assert main(["batch", "submit", *scans[:2], "--job", str(tmp_path / quiet), *service, quiet]) == 0
        assert terminal.getvalue() == ""
    not_a_terminal = io.StringIO()
    monkeypatch.setattr("sys.stderr", not_a_terminal)
    assert main(["batch", "submit", *scans[:2], "--job", str(tmp_path / "b"), *service]) == 0
    assert not_a_terminal.getvalue() == ""


def test_a_batch_refused_at_validation_names_its_line_and_page(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.batches.refuse_next("duplicate_custom_id", line=2)
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:3], "--job", str(job), *service]) == 0
    capsys.readouterr()
    assert main(["batch", "wait", str(job), *WAIT, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0] and "line 2" in err[0] and scans[1] in err[0]
    assert "duplicate_custom_id" in err[0]
    assert main(["batch", "status", str(job)]) == 0
    shown = capsys.readouterr().out
    assert "refused at validation: line 2 (page 1 of " in shown and "failed" in shown
    assert main(["batch", "results", str(job)]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["error"]["type"] for r in records] == ["BatchValidationError"] * 3, "nothing of the batch ran"


def test_the_region_is_checked_before_anything_is_uploaded(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    code = main(["batch", "submit", scans[0], "--job", str(job), "--base-url", emulator.base_url, "--region", "intl"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qwen-ocr: error: OCR batch jobs are served in the Beijing region only")
    assert "--region cn" in err[0] and "region='cn'" not in err[0]
    assert emulator.batches.stats.uploads == 0 and not job.exists()

    assert main(["batch", "submit", scans[0], "--job", str(job), *service, "--model", "qwen-vl-max"]) == 1
    refused = capsys.readouterr().err
    assert "does not serve 'qwen-vl-max'" in refused and "--model qwen-vl-ocr" in refused


def test_usage_errors_exit_2_and_typed_errors_are_one_line(
    emulator: Emulator,
    service: list[str],
    scans: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = tmp_path / "job"
    assert main(["batch", "submit", scans[0], "--job", str(job), *service, "--metadata", "june"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["batch", "submit", "-", "--job", str(job), *service]) == 2
    assert "standard input" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["batch", "wait", str(job), "--poll-interval", "0"])
    assert bad.value.code == 2
    capsys.readouterr()

    assert main(["batch", "status", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no batch job" in err[0]

    assert main(["batch", "submit", scans[0], "--job", str(job), *service, "--model", "batch-test-model"]) == 0
    capsys.readouterr()
    assert main(["batch", "submit", scans[0], "--job", str(job), *service]) == 2
    assert "holds a batch job already" in capsys.readouterr().err
    assert main(["batch", "wait", str(job), *WAIT, "-q"]) == 0
    existing = tmp_path / "out.txt"
    existing.write_text("keep me")
    assert main(["batch", "results", str(job), "--out", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_text() == "keep me"
    assert main(["batch", "results", str(job), "--format", "text", "--out", str(existing), "--overwrite"]) == 0
    assert "This is a test result." in existing.read_text()
    capsys.readouterr()

    monkeypatch.delenv("DASHSCOPE_API_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials file of the machine's user
    assert main(["batch", "submit", scans[0], "--job", str(tmp_path / "other"), *service]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DASHSCOPE_API_KEY" in err[0]


def test_wait_with_a_cache_hands_the_answers_to_qwen_ocr_read(
    emulator: Emulator, service: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.png").write_bytes(png(i))
    job, cache = tmp_path / "job", tmp_path / "cache"
    assert main(["batch", "submit", str(folder), "--job", str(job), *service]) == 0
    assert main(["batch", "wait", str(job), *WAIT, "--cache", str(cache), "-q"]) == 0
    capsys.readouterr()
    before = emulator.batches.stats.chat_requests
    read = ["read", str(folder), "--base-url", emulator.base_url, "--region", "cn", "--cache", str(cache)]
    assert main([*read, "--provider", "dashscope", "--no-progress"]) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert "3 pages (3 from the cache)" in summary
    assert emulator.batches.stats.chat_requests == before, "every page answered from the batch's answers"


def test_a_file_named_batch_is_still_read_in_real_time(
    emulator: Emulator,
    service: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("batch").write_bytes(png(7))
    assert main(["read", "batch", "--provider", "dashscope", "--base-url", emulator.base_url, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() and "1 file, 1 page, 0 failed" in captured.err


def test_the_command_is_wired(emulator: Emulator, scans: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env.update(
        DASHSCOPE_API_KEY="sk-batch-cli",
        HOME=str(tmp_path),
        PYTHONPATH=os.pathsep.join([str(ROOT / "core"), str(ROOT)]),
    )
    job = tmp_path / "job"
    base = [sys.executable, "-m", "qwen_ocr.cli", "batch"]
    submit = [*base, "submit", *scans[:2], "--job", str(job), "--base-url", emulator.base_url, "--region", "cn"]
    done = subprocess.run(submit, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 pages in 2 lines, 1 batch" in done.stdout
    done = subprocess.run([*base, "wait", str(job), *WAIT], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*base, "results", str(job)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["source"] for line in done.stdout.splitlines()] == scans[:2]
    done = subprocess.run([*base, "status", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("qwen-ocr: error: ") and len(done.stderr.strip().splitlines()) == 1


def test_the_submit_estimate_is_qwen_ocr_estimate_batch_of_the_same_inputs(
    emulator: Emulator, service: list[str], scans: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = [scans[0], scans[1], scans[24]]  # two images and the 6-page PDF
    assert main(["batch", "submit", *inputs, "--job", str(tmp_path / "job"), *service, "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)["estimate"]
    assert main(["estimate", *inputs, "--region", "cn", "--batch"]) == 0
    table = capsys.readouterr().out.splitlines()
    total = table[-1].split()
    assert total[0] == "total" and int(total[1].replace(",", "")) == estimate["image_tokens"]
    assert float(total[2]) == pytest.approx(estimate["usd"], abs=1e-4)
    assert estimate["lines_billed"] == 8 and estimate["output_tokens"] == 8 * 1000


def test_ctrl_c_in_wait_says_how_to_pick_the_job_up(
    emulator: Emulator,
    service: list[str],
    scans: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator.batches.configure(stall_after=0)
    job = tmp_path / "job"
    assert main(["batch", "submit", scans[0], "--job", str(job), *service]) == 0
    capsys.readouterr()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("qwen_ocr.cli_batch.time.sleep", interrupted)
    assert main(["batch", "wait", str(job), "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"qwen-ocr: interrupted; every step taken is kept in {job}: qwen-ocr batch wait {job} picks the job up"
    ]
    monkeypatch.setattr("qwen_ocr.cli_batch.time.sleep", time.sleep)
    emulator.batches.configure(stall_after=None)
    assert main(["batch", "wait", str(job), *WAIT, "-q"]) == 0


def test_a_submit_that_fails_after_saving_the_job_says_how_to_resume_it(
    emulator: Emulator,
    service: list[str],
    scans: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def connection_lost(where: str, part: object) -> None:
        if where == "upload:before":
            raise APIConnectionError("the connection to the service was lost.")

    monkeypatch.setattr(_job, "_checkpoint", connection_lost)
    job = tmp_path / "job"
    assert main(["batch", "submit", *scans[:2], "--job", str(job), *service]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the connection to the service was lost. The job is saved in" in err[0]
    assert f"qwen-ocr batch wait {job} sends what was not sent" in err[0]
    assert emulator.batches.stats.uploads == 0

    monkeypatch.setattr(_job, "_checkpoint", lambda where, part: None)
    assert main(["batch", "wait", str(job), *WAIT, "-q"]) == 0
    assert main(["batch", "results", str(job), "-q"]) == 0
    assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == scans[:2]
    assert emulator.batches.stats.uploads == emulator.batches.stats.batches_created == 1
