"""``qwen_ocr.ray.read_documents``: the same pages and texts as the local engine, failures as rows, the typed
error of a wrong key, a cache shared by the workers, structured output as JSON, stopping early, no key anywhere."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from qwen_ocr import QwenOCR
from qwen_ocr import read_documents as read_locally
from qwen_ocr.ray import COLUMNS, WorkerSpec, read_documents, row_schema
from qwen_ocr.testing import Emulator
from tests.ray.conftest import page_png, pdf_of


def test_a_long_pdf_and_images_give_the_same_texts_as_the_local_engine(local_ray: Any, tmp_path: Path) -> None:
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(pdf_of(200))
    sources: list[Any] = [str(pdf), *[(f"img-{i:03d}.png", page_png(i)) for i in range(100)]]
    cache = tmp_path / "cache"
    with Emulator(reader="digest") as emu:
        with QwenOCR(api_key="sk-test", base_url=emu.base_url) as client:
            local = {(p.source, p.index): (p.text, p.label, p.total_pages) for p in read_locally(client, sources)}
        sent = emu.stats.requests
        rows = read_documents(sources, concurrency=2, api_key="sk-test", base_url=emu.base_url, cache=str(cache))
        rows = rows.take_all()
        assert emu.stats.requests - sent == 300  # every page once
        # The workers wrote one cache directory side by side: a client here finds their entries.
        with QwenOCR(api_key="sk-test", base_url=emu.base_url, cache=str(cache)) as cached:
            again = list(read_locally(cached, [str(pdf)], pages="1-3,200"))
        assert emu.stats.requests - sent == 300
    remote = {(r["source"], r["page"]): (r["text"], r["page_label"], r["total_pages"]) for r in rows}
    assert len(rows) == len(remote) == 300
    assert remote == local
    assert len({text for text, _, _ in local.values()}) == 300  # every page its own text: the comparison is real
    assert {r["text_source"] for r in rows} == {"ocr"} and {r["error"] for r in rows} == {None}
    assert [p.result.metadata.get("cache") for p in again if p.result] == ["hit"] * 4


def test_failures_are_rows_structure_is_json_and_the_key_is_never_shown(local_ray: Any, tmp_path: Path) -> None:
    key = "sk-ray-secret-5f3a9c1e"
    sources = [("ok-1.png", page_png(1)), ("broken.png", b"not an image at all"), str(tmp_path / "missing.pdf")]
    sources.append(("ok-2.png", page_png(2)))
    with Emulator(valid_keys={key}) as emu:  # recorded replies: the task's own
        emu.inject("400")  # one request is refused for good (not retried)
        ds = read_documents(sources, schema={"Total": ""}, concurrency=1, api_key=key, base_url=emu.base_url)
        rows = ds.take_all()
        shown = repr(ds) + str(ds.stats()) + repr(WorkerSpec.build(api_key=key, base_url=emu.base_url))
    by_source = {row["source"]: row for row in rows}
    assert len(rows) == 4
    assert by_source["broken.png"]["file_failed"] and by_source["broken.png"]["error"]
    assert by_source[str(tmp_path / "missing.pdf")]["error_code"] == "FileNotFound"
    refused = [by_source[name] for name in ("ok-1.png", "ok-2.png") if by_source[name]["error"] is not None]
    read = [by_source[name] for name in ("ok-1.png", "ok-2.png") if by_source[name]["error"] is None]
    assert len(refused) == 1 and refused[0]["error_type"] == "BadRequestError" and refused[0]["text"] == ""
    assert len(read) == 1 and read[0]["text"]
    assert list(read[0]) == list(COLUMNS) and read[0]["task"] == "key_information_extraction"
    assert isinstance(json.loads(read[0]["fields"]), dict)  # the structured output, as JSON text
    assert read[0]["tables_html"] is None and read[0]["input_tokens"] > 0 and read[0]["request_id"]
    assert ds.schema().base_schema == row_schema()  # one schema for every row, failed or not
    assert key not in shown
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    for path in logs.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path.name


def test_a_wrong_key_fails_the_dataset_with_its_typed_error(local_ray: Any) -> None:
    with Emulator(reader="digest", valid_keys={"sk-right"}) as emu:
        ds = read_documents([("a.png", page_png(3))], api_key="sk-wrong", base_url=emu.base_url, concurrency=1)
        with pytest.raises(Exception, match="AuthenticationError") as raised:
            ds.take_all()
        assert emu.stats.unauthorized == 1  # not retried, not repeated
    assert "sk-wrong" not in str(raised.value)


def test_stopping_early_stops_the_requests(local_ray: Any) -> None:
    images = [(f"slow-{i}.png", page_png(300 + i)) for i in range(30)]
    with Emulator(reader="digest", rpm=240, per_second=True) as emu:
        ds = read_documents(images, concurrency=1, rpm=240, pages_per_task=2, api_key="sk-test", base_url=emu.base_url)
        for _ in ds.iter_rows():
            break  # the first task's rows are enough
        time.sleep(0.5)
        stopped = emu.stats.requests
        time.sleep(0.75)  # three requests' time at this pace
        assert emu.stats.requests == stopped <= 10  # nothing sent after the stop (30 pages would take 7.5 s)


def test_nothing_to_read_is_an_empty_dataset_with_the_columns(local_ray: Any, tmp_path: Path) -> None:
    ds = read_documents([], api_key="sk-test", base_url="http://127.0.0.1:9")
    assert ds.count() == 0 and ds.schema().names == list(COLUMNS)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"modle": "qwen-vl-ocr"}, "did you mean 'model'"),
        ({"on_error": "skip"}, "does not apply to a Ray reading"),
        ({"pages_per_task": 0}, "pages_per_task"),
        ({"task": "no_such_task"}, "no_such_task"),
    ],
)
def test_wrong_options_fail_at_once(arguments: dict[str, Any], message: str) -> None:
    from qwen_ocr import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=message):
        read_documents(["a.png"], api_key="sk-test", base_url="http://127.0.0.1:9", **arguments)
