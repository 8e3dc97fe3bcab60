"""The emulator's Batch File API on the wire (raw HTTP): what it promises tests of batch clients."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from qwen_ocr.testing import BatchStats, Emulator

from .conftest import png

AUTH = {"Authorization": "Bearer k"}


def _body(index: int, model: str = "qwen-vl-ocr") -> dict[str, Any]:
    image = "data:image/png;base64," + base64.b64encode(png(index)).decode()
    content = [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": "Read all the text."}]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def _upload(emu: Emulator, lines: list[dict[str, Any]], purpose: str = "batch") -> httpx.Response:
    content = "\n".join(json.dumps(line) for line in lines).encode()
    return httpx.post(
        emu.base_url + "/compatible-mode/v1/files",
        headers=AUTH,
        files={"file": ("in.jsonl", content, "application/jsonl")},
        data={"purpose": purpose},
    )


def _line(cid: str, index: int, *, url: str = "/v1/chat/completions", model: str = "qwen-vl-ocr") -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": _body(index, model)}


def _create(emu: Emulator, file_id: str, endpoint: str = "/v1/chat/completions", **extra: Any) -> httpx.Response:
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra}
    return httpx.post(emu.base_url + "/compatible-mode/v1/batches", headers=AUTH, json=body)


def _until(emu: Emulator, batch_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = httpx.get(f"{emu.base_url}/compatible-mode/v1/batches/{batch_id}", headers=AUTH).json()
        if batch["status"] in statuses:
            return batch
        time.sleep(0.01)
    raise AssertionError(f"never reached {statuses}")


def test_uploads_must_say_purpose_batch(emulator: Emulator) -> None:
    refused = _upload(emulator, [_line("a", 1)], purpose="file-extract")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "purpose"
    assert emulator.batches.stats.uploads == 0


def test_an_expired_batch_lists_its_unfinished_requests(emulator: Emulator) -> None:
    emulator.batches.configure(stall_after=1, expire_after=0.05)
    file_id = _upload(emulator, [_line(f"c{i}", i) for i in range(3)]).json()["id"]
    batch = _until(emulator, _create(emulator, file_id).json()["id"], "expired")
    assert batch["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
    errors = httpx.get(f"{emulator.base_url}/compatible-mode/v1/files/{batch['error_file_id']}/content", headers=AUTH)
    codes = [json.loads(line)["error"]["code"] for line in errors.text.splitlines()]
    assert codes == ["batch_expired", "batch_expired"]


def test_the_test_model_answers_every_line_and_keeps_its_limits(emulator: Emulator) -> None:
    lines = [_line(f"c{i}", i, url="/v1/chat/ds-test", model="batch-test-model") for i in range(3)]
    file_id = _upload(emulator, lines).json()["id"]
    batch = _until(emulator, _create(emulator, file_id, "/v1/chat/ds-test").json()["id"], "completed")
    out = httpx.get(f"{emulator.base_url}/compatible-mode/v1/files/{batch['output_file_id']}/content", headers=AUTH)
    texts = {json.loads(line)["response"]["body"]["choices"][0]["message"]["content"] for line in out.text.splitlines()}
    assert texts == {"This is a test result."}
    many = [_line(f"c{i}", 1, url="/v1/chat/ds-test", model="batch-test-model") for i in range(101)]
    too_many = _until(
        emulator, _create(emulator, _upload(emulator, many).json()["id"], "/v1/chat/ds-test").json()["id"], "failed"
    )
    assert [e["code"] for e in too_many["errors"]["data"]] == ["too_many_lines"]


def test_windows_and_endpoints_are_checked(emulator: Emulator) -> None:
    file_id = _upload(emulator, [_line("a", 1)]).json()["id"]
    assert _create(emulator, file_id, completion_window="2h").status_code == 400
    assert _create(emulator, file_id, completion_window="14d").status_code == 200
    assert _create(emulator, file_id, "/v1/embeddings").status_code == 400
    assert _create(emulator, "file-batch-nothing").status_code == 404


def test_counters_and_the_stats_page(emulator: Emulator) -> None:
    emulator.batches.configure(fail_share=1.0, fail_tries=1)
    file_id = _upload(emulator, [_line("a", 1)]).json()["id"]
    _until(emulator, _create(emulator, file_id).json()["id"], "completed")
    _until(emulator, _create(emulator, file_id).json()["id"], "completed")
    stats = emulator.batches.stats
    assert isinstance(stats, BatchStats)
    assert (stats.uploads, stats.batches_created, stats.attempts, stats.billed) == (1, 2, {"a": 2}, {"a": 1})
    httpx.post(emulator.base_url + "/compatible-mode/v1/chat/completions", headers=AUTH, json=_body(1))
    page = httpx.get(emulator.base_url + "/stats").json()
    assert page["batches"]["billed"] == {"a": 1} and emulator.batches.stats.chat_requests == 1


@pytest.mark.parametrize("path", ["/compatible-mode/v1/files/nope", "/compatible-mode/v1/batches/nope"])
def test_unknown_ids_are_404(emulator: Emulator, path: str) -> None:
    assert httpx.get(emulator.base_url + path, headers=AUTH).status_code == 404
