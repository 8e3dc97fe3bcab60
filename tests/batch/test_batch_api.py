"""The Batch File API, call by call (``qwen_ocr.batch.BatchAPI``), against the emulator's Files and Batches
endpoints: the service's shapes (``"data": null``, validation failures as HTTP 200, the model refusal as 404),
retries of throttling, streamed downloads, and what the emulator itself promises (shuffled output, statuses
advancing, answers equal to the real-time ones)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from qwen_ocr import NotFoundError, QwenOCR, RateLimitError, RetryPolicy
from qwen_ocr.batch import BatchAPI, BatchObject, FileObject
from qwen_ocr.batch._outcomes import read_line
from qwen_ocr.batch._store import Flag
from qwen_ocr.errors import APITimeoutError, BatchCancelledError, BatchExpiredError, ServerError
from qwen_ocr.testing import Emulator

from .conftest import FAST, png

PROMPT = "Please output only the text content from the image without any additional descriptions or formatting."


def _line(custom_id: str, index: int, *, model: str = "qwen-vl-ocr", url: str = "/v1/chat/completions") -> str:
    image = "data:image/png;base64," + base64.b64encode(png(index)).decode()
    body = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": PROMPT}],
            }
        ],
    }
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _until_terminal(api: BatchAPI, batch_id: str) -> BatchObject:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = api.get(batch_id)
        if batch.terminal:
            return batch
        time.sleep(0.01)
    raise AssertionError("the batch never ended")


def test_upload_create_poll_download_delete(emulator: Emulator, client: QwenOCR, tmp_path: Path) -> None:
    api = BatchAPI(client)
    file = api.upload(_write(tmp_path / "in.jsonl", [_line(f"c{i}", i) for i in range(12)]), filename="in.jsonl")
    assert isinstance(file, FileObject) and file.id.startswith("file-batch-") and file.purpose == "batch"
    batch = api.create(file.id, metadata={"ds_name": "api test"})
    assert batch.status == "validating" and batch.metadata == {"ds_name": "api test"}
    seen = {batch.status}
    deadline = time.monotonic() + 10
    while not batch.terminal and time.monotonic() < deadline:
        batch = api.get(batch.id)
        seen.add(batch.status)
    assert batch.status == "completed" and {"in_progress", "completed"} <= seen
    assert batch.request_counts.total == batch.request_counts.completed == 12
    size = api.download(batch.output_file_id or "", tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert size == (tmp_path / "out.jsonl").stat().st_size and len(lines) == 12
    ids = [json.loads(line)["custom_id"] for line in lines]
    assert sorted(ids) == sorted(f"c{i}" for i in range(12)) and ids != [f"c{i}" for i in range(12)], "shuffled"
    # Each answer is the real-time emulator's answer to the same body.
    live = httpx.post(
        emulator.base_url + "/compatible-mode/v1/chat/completions",
        json=json.loads(_line("x", 0))["body"],
        headers={"Authorization": "Bearer k"},
    ).json()
    answer = json.loads(lines[0])["response"]["body"]
    assert answer["choices"][0]["message"]["content"] == live["choices"][0]["message"]["content"]
    with pytest.raises(Exception, match="Only the output and error files"):
        api.download(file.id, tmp_path / "input-copy.jsonl")
    assert not (tmp_path / "input-copy.jsonl").exists(), "nothing half-written is left"
    assert api.delete(file.id) is True
    assert emulator.batches.stats.files_deleted == 1


def test_lists_page_with_after_and_an_empty_list_is_null(emulator: Emulator, client: QwenOCR, tmp_path: Path) -> None:
    api = BatchAPI(client)
    assert api.list().batches == [] and api.list().data is None
    file = api.upload(_write(tmp_path / "in.jsonl", [_line("a", 1)]), filename="in.jsonl")
    made = [api.create(file.id, metadata={"ds_name": f"job r1 p{i}"}).id for i in range(5)]
    first = api.list(limit=2)
    assert first.has_more and len(first.batches) == 2
    assert [b.id for b in api.batches()] == made[::-1], "every page, newest first"
    assert api.find_batch("job r1 p3", input_file_id=file.id) is not None
    assert api.find_batch("job r1 p3", input_file_id="file-other") is None
    assert api.find_batch("job r1 p", input_file_id=file.id) is None, "the tag must match exactly"
    assert api.find_file("in.jsonl") == file.model_copy()


def test_validation_failures_come_back_as_a_failed_batch_naming_the_lines(client: QwenOCR, tmp_path: Path) -> None:
    api = BatchAPI(client)
    lines = [
        _line("a", 1),
        _line("a", 2),
        _line("b", 3, url="/v1/chat/completion"),
        _line("c", 4, model="qwen-vl-ocr-latest"),
    ]
    file = api.upload(_write(tmp_path / "in.jsonl", lines), filename="in.jsonl")
    batch = _until_terminal(api, api.create(file.id).id)
    assert batch.status == "failed" and batch.output_file_id is None
    assert [(p.code, p.line) for p in batch.problems] == [
        ("duplicate_custom_id", 2),
        ("url_not_found", 3),
        ("mismatched_model", 4),
    ]
    assert batch.problems[1].message == "The provided url '/v1/chat/completion' is not supported by the Batch API."


def test_a_model_the_batch_api_does_not_serve_is_refused_with_its_404(client: QwenOCR, tmp_path: Path) -> None:
    api = BatchAPI(client)
    file = api.upload(_write(tmp_path / "in.jsonl", [_line("a", 1, model="qwen3.5-ocr")]), filename="in.jsonl")
    with pytest.raises(NotFoundError, match=r"The provided model qwen3\.5-ocr is not supported by the Batch API"):
        api.create(file.id)


def test_throttling_and_server_errors_are_retried(emulator: Emulator, client: QwenOCR, tmp_path: Path) -> None:
    api = BatchAPI(client)
    emulator.batches.inject(429, 500)
    file = api.upload(_write(tmp_path / "in.jsonl", [_line("a", 1)]), filename="in.jsonl")
    assert emulator.batches.stats.uploads == 1, "the failed attempts stored nothing; the file is stored once"
    emulator.batches.inject(429, 429, 429, 429)
    with pytest.raises(RateLimitError, match="throttled due to system capacity limits"):
        api.get("batch_x")  # out of retries (3): the typed error
    assert api.create(file.id).status == "validating"


def test_a_lost_upload_reply_is_found_not_uploaded_again(emulator: Emulator, tmp_path: Path) -> None:
    class LosesFirstUploadReply(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner, self.lost = httpx.HTTPTransport(), 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.method == "POST" and request.url.path.endswith("/files") and not self.lost:
                self.lost += 1
                response.read()
                raise httpx.RemoteProtocolError("the server closed the connection before the reply")
            return response

    http = httpx.Client(transport=LosesFirstUploadReply())
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST, http_client=http) as client:
        file = BatchAPI(client).upload(_write(tmp_path / "in.jsonl", [_line("a", 1)]), filename="job-p0.jsonl")
    assert file.filename == "job-p0.jsonl" and emulator.batches.stats.uploads == 1


def test_a_wrong_key_is_not_retried(tmp_path: Path) -> None:
    with Emulator(valid_keys={"right"}) as emu, QwenOCR(api_key="wrong", base_url=emu.base_url, retry=FAST) as client:
        with pytest.raises(Exception, match="API key") as caught:
            BatchAPI(client).list()
        assert type(caught.value).__name__ == "AuthenticationError"
        assert emu.stats.unauthorized == 1


def test_cancel_answers_cancelling_then_lists_the_unfinished_requests(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    emulator.batches.configure(stall_after=2)
    api = BatchAPI(client)
    file = api.upload(_write(tmp_path / "in.jsonl", [_line(f"c{i}", i) for i in range(5)]), filename="in.jsonl")
    batch = api.create(file.id)
    time.sleep(0.1)
    cancelling = api.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is None
    done = _until_terminal(api, batch.id)
    assert done.status == "cancelled" and done.request_counts.failed == 3 and done.request_counts.completed == 2
    api.download(done.error_file_id or "", tmp_path / "err.jsonl")
    outcomes = [read_line(raw) for raw in (tmp_path / "err.jsonl").read_bytes().splitlines()]
    assert all(o.flag == Flag.CANCELLED and isinstance(o.error, BatchCancelledError) for o in outcomes)


@pytest.mark.parametrize(
    ("raw", "flag", "kind"),
    [
        (
            b'{"custom_id":"p1","response":null,"error":{"code":"request_timeout","message":"x"}}',
            Flag.RETRYABLE,
            APITimeoutError,
        ),
        (
            b'{"custom_id":"p1","response":{"status_code":500,"body":{"error":{"code":"server_error"}}},"error":null}',
            Flag.RETRYABLE,
            ServerError,
        ),
        (
            b'{"custom_id":"p1","response":null,"error":{"code":"batch_expired","message":"x"}}',
            Flag.RETRYABLE,
            BatchExpiredError,
        ),
        (
            b'{"custom_id":"p1","error":{"code":"invalid_parameter_error","message":"bad image"}}',
            Flag.PERMANENT,
            Exception,
        ),
        (b"not json", Flag.RETRYABLE, Exception),
    ],
)
def test_failed_lines_are_read_tolerantly(raw: bytes, flag: int, kind: type[Exception]) -> None:
    outcome = read_line(raw)
    assert outcome.flag == flag and isinstance(outcome.error, kind)


def test_the_emulators_policy_knobs_are_checked() -> None:
    with Emulator() as emu:
        with pytest.raises(ValueError, match="unknown batch setting"):
            emu.batches.configure(in_progres=1)
        emu.batches.configure(in_progress=0.5)
        assert emu.batches.in_progress == 0.5


def test_models_keep_fields_the_service_adds() -> None:
    batch = BatchObject.model_validate({"id": "b", "status": "in_progress", "new_field": 1, "request_counts": None})
    assert batch.model_extra == {"new_field": 1} and not batch.terminal and batch.request_counts.total == 0


def test_retry_policy_zero_fails_at_once(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.inject(500)
    client = QwenOCR(api_key="k", base_url=emulator.base_url, retry=RetryPolicy(max_retries=0))
    with client, pytest.raises(ServerError):
        BatchAPI(client).list()
