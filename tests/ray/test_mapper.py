"""``QwenOCRMapper`` over a dataset that already holds its pages: bytes or paths in a column, the other columns
carried along, a named limiter shared by its workers (or the one given)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray
import ray.data

from qwen_ocr import InvalidArgumentError, QwenOCR
from qwen_ocr.ray import COLUMNS, QwenOCRMapper, rate_limiter
from qwen_ocr.sources import content_key
from qwen_ocr.testing import Emulator
from tests.ray.conftest import page_png


def test_a_column_of_paths_one_limit_for_all_workers(local_ray: Any, tmp_path: Path) -> None:
    images = [page_png(500 + i) for i in range(6)]
    items: list[dict[str, Any]] = []
    for i, data in enumerate(images):
        path = tmp_path / f"scan-{i}.png"
        path.write_bytes(data)
        items.append({"image": str(path), "id": i})
    items.append({"image": None, "id": 6})
    with Emulator(reader="digest", rpm=240, per_second=True) as emu:
        # Two workers, each of whose own pacer would send 4 a second: together 8, and the emulator would refuse the
        # excess. No retries: a 429 would be a failed row.
        settings = {"api_key": "sk-test", "base_url": emu.base_url, "rpm": 240, "max_retries": 0}
        ds = ray.data.from_items(items, override_num_blocks=4)
        out = ds.map_batches(
            QwenOCRMapper,
            fn_constructor_kwargs={"column": "image", **settings},
            batch_format="pyarrow",
            batch_size=2,
            compute=ray.data.ActorPoolStrategy(size=2),
        )
        rows = sorted(out.take_all(), key=lambda row: row["id"])
        throttled = emu.stats.throttled
        with QwenOCR(api_key="sk-test", base_url=emu.base_url) as client:
            expected = [client.ocr(data).text for data in images]
    assert [row["id"] for row in rows] == list(range(7))
    assert [row["error"] for row in rows[:6]] == [None] * 6 and throttled == 0  # one limit for both workers
    assert [row["text"] for row in rows[:6]] == expected
    assert [row["source"] for row in rows[:6]] == [item["image"] for item in items[:6]]
    assert rows[6]["error_code"] == "NoImage" and rows[6]["file_failed"]
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS) and "image" not in rows[0]


def test_arguments_made_on_the_driver_a_given_limiter_and_a_source_column(local_ray: Any) -> None:
    images = [page_png(600 + i) for i in range(3)]
    names = [None, "scan-1.png", "scan-2.png"]
    with Emulator(reader="digest") as emu:
        limiter = rate_limiter(rpm=600, base_url=emu.base_url)
        ds = ray.data.from_items([{"png": data, "name": name} for data, name in zip(images, names, strict=True)])
        rows = ds.map_batches(
            QwenOCRMapper,
            fn_constructor_kwargs=QwenOCRMapper.arguments(
                "png", source_column="name", limiter=limiter, api_key="sk-test", base_url=emu.base_url
            ),
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=1),
        ).take_all()
        assert ray.get(limiter.stats.remote())["granted"] == 3  # every request asked the limiter given
    assert sorted(row["source"] for row in rows) == sorted([content_key(images[0]), "scan-1.png", "scan-2.png"])
    assert all(row["text"].startswith("image ") for row in rows)
    assert sorted(str(row["name"]) for row in rows) == ["None", "scan-1.png", "scan-2.png"]


def test_input_columns_may_not_be_overwritten(local_ray: Any) -> None:
    import pyarrow

    mapper = QwenOCRMapper(api_key="sk-test", base_url="http://127.0.0.1:9", limiter=rate_limiter(rpm=60))
    batch = pyarrow.table({"image": [b"x"], "text": ["mine"]})
    with pytest.raises(InvalidArgumentError, match="'text' would be overwritten"):
        mapper(batch)
    with pytest.raises(InvalidArgumentError, match="no column 'picture'"):
        QwenOCRMapper("picture", api_key="sk-test", base_url="http://127.0.0.1:9", limiter=rate_limiter())(batch)
    assert "sk-test" not in repr(mapper)
