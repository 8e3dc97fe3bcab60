"""Batch jobs end to end against the emulator: the issue's "Done when", resuming after a crash at each remote step,
cancellation, validation failures, refusals, the cache, the cost, the free test model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import qwen_ocr
from qwen_ocr import QwenOCR, read_documents
from qwen_ocr.batch import (
    TEST_ENDPOINT,
    BatchCancelledError,
    BatchExpiredError,
    BatchJob,
    BatchJobError,
    BatchLineTooLargeError,
    BatchNotFinishedError,
    BatchPage,
    BatchUnavailableError,
    BatchValidationError,
    Limits,
    _job,
)
from qwen_ocr.cost import price_usd
from qwen_ocr.errors import BadRequestError
from qwen_ocr.testing import Emulator, FakeTransport

from .conftest import FAST, png

WAIT = {"poll_interval": 0.02, "timeout": 20.0}
"""Polling fast, and never hanging."""

ROOT = Path(qwen_ocr.__file__).parents[2]


def _sources_order(scans: list[str]) -> list[tuple[str, int]]:
    return [(path, 0) for path in scans[:24]] + [(scans[24], i) for i in range(6)]


# -- the "Done when" ----------------------------------------------------------------------------------------


def test_a_job_submitted_by_a_process_that_exits_is_finished_by_another(
    emulator: Emulator, scans: list[str], tmp_path: Path
) -> None:
    emulator.batches.configure(fail_share=0.2)
    job_dir = tmp_path / "job"
    script = textwrap.dedent(
        f"""
        import os
        from qwen_ocr import QwenOCR, RetryPolicy
        client = QwenOCR(api_key="k", base_url={emulator.base_url!r}, retry=RetryPolicy(initial_delay=0, jitter=0))
        job = client.batch.submit({scans!r}, job_dir={str(job_dir)!r})
        print(job.job_id, flush=True)
        os._exit(0)  # dropped at once: nothing waits for the job
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "core"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert emulator.batches.stats.uploads == 1 and emulator.batches.stats.batches_created == 1

    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        job = BatchJob.open(job_dir, client=client)
        assert job.job_id == done.stdout.strip()
        status = job.wait(**WAIT)
        pages = list(job.results())

    stats = emulator.batches.stats
    assert [(p.source, p.index) for p in pages] == _sources_order(scans)
    assert all(p.ok and p.text for p in pages)
    assert sorted(stats.billed) == sorted(f"p{n}" for n in range(30))
    assert set(stats.billed.values()) == {1}, "each page billed once"
    retried = [cid for cid, attempts in stats.attempts.items() if attempts > 1]
    assert 2 <= len(retried) <= 12, "about 20% of the lines failed their first try and were sent again"
    assert status.rounds == 2 and len(status.batches) == 2
    assert stats.uploads == stats.batches_created == 2, "each batch uploaded and created once"
    assert stats.chat_requests == 0, "no real-time request"
    assert status.done and status.pages == 30 and status.lines == 30
    # The follow-up batch read the retried pages, the first batch the others; each page names its batch.
    by_batch = {p.metadata()["batch"] for p in pages}
    assert by_batch == {b.batch_id for b in status.batches}


def test_results_match_a_real_time_read_with_the_same_metadata_keys_plus_batch(
    emulator: Emulator, scans: list[str], tmp_path: Path
) -> None:
    sources = [scans[0], scans[1], scans[24]]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST, protocol="openai") as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job", task="table_parsing")
        job.wait(**WAIT)
        batch_pages = list(job.results())
        live = list(read_documents(client, sources, task="table_parsing"))
        assert job.options["task"] == "table_parsing" and job.model == "qwen-vl-ocr"
    assert len(batch_pages) == len(live) == 8
    for ours, theirs in zip(batch_pages, live, strict=True):
        assert (ours.source, ours.index, ours.label, ours.total_pages, ours.file_index) == (
            theirs.source,
            theirs.index,
            theirs.label,
            theirs.total_pages,
            theirs.file_index,
        )
        assert ours.text == theirs.text and ours.result is not None and theirs.result is not None
        assert ours.result.tables == theirs.result.tables
        assert set(ours.metadata()) == set(theirs.metadata()) | {"batch"}
        assert ours.metadata()["request_id"] and ours.metadata()["input_tokens"] > 0


# -- resuming ---------------------------------------------------------------------------------------------------------


class _Crash(BaseException):
    """The process dying at a remote step."""


@pytest.mark.parametrize("step", ["upload:before", "upload:after", "create:before", "create:after"])
def test_a_crash_at_any_remote_step_resumes_without_uploading_or_creating_twice(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setattr(_job, "LIMITS", Limits(max_lines=4))  # 10 pages: three batches
    sources = [(f"p{i}.png", png(i)) for i in range(10)]
    crashed: list[str] = []

    def checkpoint(where: str, part: Any) -> None:
        if where == step and part.part == 1 and not crashed:
            crashed.append(where)
            raise _Crash(where)

    monkeypatch.setattr(_job, "_checkpoint", checkpoint)
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        with pytest.raises(_Crash):
            client.batch.submit(sources, job_dir=tmp_path / "job")
        job = BatchJob.open(tmp_path / "job", client=client)
        status = job.wait(**WAIT)
        pages = list(job.results())
    stats = emulator.batches.stats
    assert len(status.batches) == 3
    assert stats.uploads == 3 and stats.batches_created == 3, "one upload and one create per batch"
    assert len({b.batch_id for b in status.batches}) == 3
    assert [p.source for p in pages] == [f"p{i}.png" for i in range(10)] and all(p.ok for p in pages)
    assert set(stats.billed.values()) == {1}


def test_two_processes_following_one_job_send_each_batch_once(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_job, "LIMITS", Limits(max_lines=3))
    monkeypatch.setattr(_job, "_checkpoint", _crash_at("upload:before"))
    sources = [(f"p{i}.png", png(i)) for i in range(9)]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        with pytest.raises(_Crash):
            client.batch.submit(sources, job_dir=tmp_path / "job")
        monkeypatch.setattr(_job, "_checkpoint", lambda where, part: None)
        jobs = [BatchJob.open(tmp_path / "job", client=client) for _ in range(2)]  # two followers, one job
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda job: job.wait(**WAIT), jobs))
        assert all(s.done for s in statuses)
        assert [p.ok for p in jobs[1].results()] == [True] * 9
    stats = emulator.batches.stats
    assert stats.uploads == stats.batches_created == 3 and set(stats.billed.values()) == {1}


def _crash_at(step: str) -> Any:
    def checkpoint(where: str, part: Any) -> None:
        if where == step:
            raise _Crash(where)

    return checkpoint


def test_a_lost_reply_to_a_create_is_found_not_created_again(emulator: Emulator, tmp_path: Path) -> None:
    class LosesFirstCreateReply(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()
            self.lost = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.method == "POST" and request.url.path.endswith("/batches") and not self.lost:
                self.lost += 1
                response.read()
                raise httpx.ReadError("connection reset after the batch was created")
            return response

    transport = LosesFirstCreateReply()
    http = httpx.Client(transport=transport)
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST, http_client=http) as client:
        job = client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job")
        job.wait(**WAIT)
        assert [p.ok for p in job.results()] == [True]
    assert transport.lost == 1
    assert emulator.batches.stats.batches_created == 1


# -- cancelling, failing, expiring ------------------------------------------------------------------------------------


def test_cancelling_mid_way_returns_the_finished_pages_and_marks_the_rest(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.configure(stall_after=4)  # the batch runs 4 of its 10 lines, then waits to be cancelled
    sources = [(f"p{i}.png", png(i)) for i in range(10)]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job")
        with pytest.raises(qwen_ocr.errors.BatchWaitTimeoutError):
            job.wait(poll_interval=0.02, timeout=0.3)
        assert job.status().batches[0].request_counts.completed == 4
        job.cancel()
        status = job.wait(**WAIT)
        pages = list(job.results())
    assert status.cancelled and status.batches[0].status == "cancelled"
    assert [p.source for p in pages] == [f"p{i}.png" for i in range(10)]
    finished = [p for p in pages if p.ok]
    marked = [p for p in pages if not p.ok]
    assert len(finished) == 4 and all(p.text for p in finished)
    assert len(marked) == 6 and all(isinstance(p.error, BatchCancelledError) for p in marked)
    assert marked[0].metadata()["error_type"] == "BatchCancelledError"
    stats = emulator.batches.stats
    assert stats.uploads == 1 and stats.batches_created == 1, "cancelled pages are not sent again"
    assert stats.lines_billed == 4


def test_a_job_cancelled_before_its_batch_was_created_never_creates_it(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def checkpoint(where: str, part: Any) -> None:
        if where == "create:before":
            raise _Crash(where)

    monkeypatch.setattr(_job, "_checkpoint", checkpoint)
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        with pytest.raises(_Crash):
            client.batch.submit([("a.png", png(1)), ("b.png", png(2))], job_dir=tmp_path / "job")
        monkeypatch.setattr(_job, "_checkpoint", lambda where, part: None)
        job = BatchJob.open(tmp_path / "job", client=client)
        assert job.status().batches[0].status == "uploaded"
        job.cancel()
        job.wait(**WAIT)
        pages = list(job.results())
    assert [type(p.error) for p in pages] == [BatchCancelledError, BatchCancelledError]
    assert emulator.batches.stats.batches_created == 0


def test_a_validation_failure_is_a_typed_error_naming_the_line(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.refuse_next("duplicate_custom_id", line=3, message="The custom_id 'p2' is used more than once.")
    sources = [(f"p{i}.png", png(i)) for i in range(5)]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job")
        with pytest.raises(BatchValidationError) as caught:
            job.wait(**WAIT)
        pages = list(job.results())
    error = caught.value
    assert error.line == 3 and error.code == "duplicate_custom_id"
    assert "line 3 (page 1 of p2.png)" in error.message
    assert error.errors[0]["line"] == 3
    assert all(isinstance(p.error, BatchValidationError) for p in pages), "every page marked, none dropped"
    assert "this page (line 1) was not run" in str(pages[0].error)
    assert pages[2].error is not None and "line 3" in pages[2].error.message
    assert emulator.batches.stats.lines_billed == 0


def test_expired_lines_are_sent_again_until_max_rounds_then_marked(emulator: Emulator, tmp_path: Path) -> None:
    # Each batch runs 3 lines, then expires: 10 -> 7 -> 4 -> 1 left after the third round.
    emulator.batches.configure(stall_after=3, expire_after=0.05)
    sources = [(f"p{i}.png", png(i)) for i in range(10)]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job", max_rounds=3)
        status = job.wait(**WAIT)
        pages = list(job.results())
    assert [b.status for b in status.batches] == ["expired"] * 3
    assert [b.lines for b in status.batches] == [10, 7, 4]
    assert sum(p.ok for p in pages) == 9
    (left,) = [p for p in pages if not p.ok]
    assert isinstance(left.error, BatchExpiredError)
    assert set(emulator.batches.stats.billed.values()) == {1}


def test_permanent_failures_are_not_sent_again(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.configure(permanent_share=0.3, fail_share=0.2)
    sources = [(f"p{i}.png", png(i)) for i in range(20)]
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job")
        job.wait(**WAIT)
        pages = list(job.results())
        with pytest.raises(BadRequestError):
            list(job.results(on_error="raise"))
        assert len(list(job.results(on_error="skip"))) == sum(p.ok for p in pages)
    stats = emulator.batches.stats
    refused = [p for p in pages if not p.ok]
    assert refused and all(isinstance(p.error, BadRequestError) for p in refused)
    for page in refused:
        assert stats.attempts[f"p{pages.index(page)}"] == 1, "a bad image is not sent again"
    assert sum(p.ok for p in pages) == stats.lines_billed == 20 - len(refused)


# -- refusals before anything is sent ----------------------------------------------------------------------------------


def test_a_region_without_ocr_batches_is_refused_before_anything_is_uploaded(tmp_path: Path) -> None:
    transport = FakeTransport(["never"])
    with (
        QwenOCR(api_key="k", region="intl", http_client=httpx.Client(transport=transport)) as client,
        pytest.raises(BatchUnavailableError, match="Beijing region only") as caught,
    ):
        client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job")
    assert "region='cn'" in caught.value.message
    assert transport.requests == [] and not (tmp_path / "job").exists()


def test_a_model_without_ocr_batches_is_refused_before_anything_is_uploaded(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    with pytest.raises(BatchUnavailableError, match=r"does not serve 'qwen3\.5-ocr'"):
        client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job", model="qwen3.5-ocr")
    assert emulator.request_log == [] and emulator.batches.stats.uploads == 0


def test_a_line_over_the_limit_names_the_page_and_the_remedy(
    emulator: Emulator, client: QwenOCR, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = io.BytesIO()
    Image.frombytes("L", (200, 200), os.urandom(40_000)).save(noisy, format="PNG")  # ~40 kB, incompressible
    monkeypatch.setattr(_job, "LIMITS", Limits(max_line_bytes=20_000))
    with pytest.raises(BatchLineTooLargeError, match=r"page 1 of big\.png .*image_url="):
        client.batch.submit([("big.png", noisy.getvalue())], job_dir=tmp_path / "job")
    assert emulator.batches.stats.uploads == 0

    hosted: list[BatchPage] = []

    def url_of(page: BatchPage) -> str:
        hosted.append(page)
        return f"https://files.example.com/{page.source}/{page.index}.png"

    job = client.batch.submit([("big.png", noisy.getvalue())], job_dir=tmp_path / "job", image_url=url_of)
    job.wait(**WAIT)
    assert [p.ok for p in job.results()] == [True]
    assert [(p.source, p.index) for p in hosted] == [("big.png", 0)]
    line = json.loads((tmp_path / "job" / "lines" / "p0.jsonl").read_bytes())
    assert line["body"]["messages"][0]["content"][0]["image_url"]["url"] == "https://files.example.com/big.png/0.png"


# -- the cache, the cost, the test model -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
def test_reading_the_pages_again_after_the_job_sends_nothing(
    emulator: Emulator, scans: list[str], tmp_path: Path, protocol: str
) -> None:
    sources = [*scans[:3], scans[24]]
    with QwenOCR(
        api_key="k", base_url=emulator.base_url, retry=FAST, protocol=protocol, cache=tmp_path / "cache"
    ) as client:
        job = client.batch.submit(sources, job_dir=tmp_path / "job", task="text_recognition")
        job.wait(**WAIT)
        from_batch = [p.text for p in job.results()]
    with QwenOCR(
        api_key="k", base_url=emulator.base_url, retry=FAST, protocol=protocol, cache=tmp_path / "cache"
    ) as fresh:
        again = list(read_documents(fresh, sources, task="text_recognition"))
    assert emulator.batches.stats.chat_requests == 0, "every page came from the cache"
    assert [p.metadata().get("cache") for p in again] == ["hit"] * 9
    assert [p.text for p in again] == from_batch
    assert {p.metadata()["provider"] for p in again} == {protocol}


def test_the_files_at_the_service_are_deleted_once_the_job_is_done(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    emulator.batches.configure(fail_share=0.5)
    job = client.batch.submit([(f"p{i}.png", png(i)) for i in range(6)], job_dir=tmp_path / "job")
    with pytest.raises(BatchNotFinishedError):
        job.delete_files()
    status = job.wait(**WAIT)
    files = sum(bool(f) for b in status.batches for f in (b.output_file_id, b.error_file_id)) + len(status.batches)
    assert job.delete_files() == files and emulator.batches.stats.files_deleted == files
    assert job.delete_files() == 0, "nothing deleted twice"
    assert all(p.ok for p in job.results()), "the job's own copies stay"


def test_the_cost_is_half_the_real_time_price(emulator: Emulator, client: QwenOCR, tmp_path: Path) -> None:
    job = client.batch.submit([(f"p{i}.png", png(i)) for i in range(4)], job_dir=tmp_path / "job")
    job.wait(**WAIT)
    pages = list(job.results())
    cost = job.cost()
    tokens_in = sum(p.result.usage.input_tokens for p in pages if p.result)
    tokens_out = sum(p.result.usage.output_tokens for p in pages if p.result)
    assert (cost.lines_billed, cost.input_tokens, cost.output_tokens) == (4, tokens_in, tokens_out)
    full = price_usd(tokens_in, tokens_out, model="qwen-vl-ocr", region="cn-beijing")
    assert cost.region == "cn-beijing" and cost.realtime_usd == pytest.approx(full)
    assert cost.usd == pytest.approx(full / 2) and cost.usd > 0


def test_the_free_test_model_checks_the_setup(emulator: Emulator, client: QwenOCR, tmp_path: Path) -> None:
    job = client.batch.submit(
        [(f"p{i}.png", png(i)) for i in range(3)], job_dir=tmp_path / "job", model="batch-test-model"
    )
    job.wait(**WAIT)
    pages = list(job.results())
    assert [p.text for p in pages] == ["This is a test result."] * 3
    assert job.cost().usd == 0.0
    body = json.loads((tmp_path / "job" / "job.json").read_text())
    assert body["endpoint"] == TEST_ENDPOINT and body["keyed_for"] is None
    first_line = json.loads((tmp_path / "job" / "lines" / "p0.jsonl").read_bytes().splitlines()[0])
    assert first_line["url"] == TEST_ENDPOINT and first_line["body"]["model"] == "batch-test-model"
    assert client.cache is not None and len(client.cache) == 0, "test answers are no readings: not cached"


# -- the job's own rules -----------------------------------------------------------------------------------------------


def test_pages_from_their_text_layer_and_failed_files_keep_their_slots(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    text_pdf = Path(__file__).parents[1] / "data/corpus/py-pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
    sources = [("a.png", png(1)), str(text_pdf), str(tmp_path / "missing.pdf"), ("b.png", png(2))]
    job = client.batch.submit(sources, job_dir=tmp_path / "job")
    status = job.wait(**WAIT)
    pages = list(job.results())
    assert status.lines == 2 and status.pages == 7
    assert [p.text_source for p in pages[1:5]] == ["text_layer"] * 4 and all(p.text for p in pages[1:5])
    assert pages[5].file_failed and pages[5].error is not None and pages[5].error.code
    assert [p.file_index for p in pages] == [0, 1, 1, 1, 1, 2, 3]
    assert pages[0].ok and pages[6].ok


def test_batches_split_by_line_count_and_size(
    emulator: Emulator, client: QwenOCR, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = [(f"p{i}.png", png(i)) for i in range(9)]
    monkeypatch.setattr(_job, "LIMITS", Limits(max_lines=4))
    status = client.batch.submit(sources, job_dir=tmp_path / "by-count").wait(**WAIT)
    assert [b.lines for b in status.batches] == [4, 4, 1]
    line_size = len((tmp_path / "by-count" / "lines" / "p2.jsonl").read_bytes())
    monkeypatch.setattr(_job, "LIMITS", Limits(max_bytes=line_size * 3 + 10))
    status = client.batch.submit(sources, job_dir=tmp_path / "by-size").wait(**WAIT)
    assert [b.lines for b in status.batches] == [3, 3, 3]


def test_a_job_is_not_overwritten_nor_read_early_nor_opened_on_another_host(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    emulator.batches.configure(stall_after=0)
    job = client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job")
    with pytest.raises(BatchNotFinishedError, match=r"call job\.wait"):
        job.results()
    with pytest.raises(BatchJobError, match="holds a batch job already"):
        client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job")
    with (
        QwenOCR(api_key="k", base_url="http://127.0.0.1:9") as other,
        pytest.raises(BatchJobError, match="submitted to"),
    ):
        BatchJob.open(tmp_path / "job", client=other)
    with pytest.raises(BatchJobError, match="no batch job"):
        BatchJob.open(tmp_path / "nothing", client=client)
    job.cancel()
    job.wait(**WAIT)


def test_an_error_that_fails_every_page_stops_the_job_before_anything_is_sent(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    from qwen_ocr import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="ceiling"):  # every page would fail alike
        client.batch.submit([("a.png", png(1)), ("b.png", png(2))], job_dir=tmp_path / "job", max_pixels=10**9)
    assert emulator.request_log == [] and not (tmp_path / "job" / "job.json").exists()


def test_the_key_never_reaches_the_job_directory_or_a_repr(emulator: Emulator, tmp_path: Path) -> None:
    key = "sk-batch-secret-0123456789"
    with QwenOCR(api_key=key, base_url=emulator.base_url, retry=FAST, cache=tmp_path / "job" / "cache") as client:
        job = client.batch.submit([(f"p{i}.png", png(i)) for i in range(3)], job_dir=tmp_path / "job")
        status = job.wait(**WAIT)
        texts = [repr(job), str(status), repr(status), repr(job.cost()), repr(client.batch)]
    for path in (tmp_path / "job").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path.name
    assert not any(key in text for text in texts)


def test_options_are_checked_before_anything_is_built(client: QwenOCR, tmp_path: Path) -> None:
    from qwen_ocr import InvalidArgumentError

    for wrong in (
        {"completion_window": "2h"},
        {"max_rounds": 0},
        {"metadata": {"ds_description": "x" * 201}},
        {"resolutionn": "high"},
    ):
        with pytest.raises(InvalidArgumentError):
            client.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job", **wrong)
    assert not (tmp_path / "job").exists()
