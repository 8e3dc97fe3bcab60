"""The API key never leaks: not in any object's repr, str or serialised form, not in logs (DEBUG included), not in
exception text, and no committed cassette, notebook output or benchmark report holds a key or an Authorization
value.

The key below looks like a DashScope key (``sk-`` and 32 letters and digits) and has no hexadecimal run long enough
to be mistaken for a request id, so a partial leak is caught as well as a whole one.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr import AsyncQwenOCR, AuthenticationError, QwenOCR, QwenOCRError
from qwen_ocr.settings import ClientSettings
from qwen_ocr.testing import Emulator

from ._support import numbered_png

KEY = "sk-" + "QWENreliabilityKEYzz9876SECRETqq"  # built here, so this file itself holds no key-like text
PIECES = [KEY, KEY[3:], KEY[3:15], KEY[-12:], base64.b64encode(f":{KEY}".encode()).decode()[:16]]
ROOT = Path(__file__).resolve().parents[2]
KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9]{16,}")
AUTH_VALUE = re.compile(
    r"(?i)authorization[\"']?\s*[:=]\s*(?:\[\s*|-\s*|\n\s*-\s*)?[\"']?(?:bearer|basic)\s+(?!<)[A-Za-z0-9._~+/=-]{6,}"
)


class Leaks:
    """Collects every text a user could see and checks none holds the key."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def error(self, where: str, exc: BaseException) -> None:
        self.add(f"{where}: str", str(exc))
        self.add(f"{where}: repr", repr(exc))
        self.add(f"{where}: args", exc.args)
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))
        if isinstance(exc, QwenOCRError):
            self.add(f"{where}: message", exc.message)

    def expect(self, call: Callable[[], Any], where: str, error: type[BaseException] = Exception) -> None:
        try:
            self.add(where, call())
        except error as exc:
            self.error(where, exc)

    def check(self) -> None:
        for where, text in self.texts:
            for piece in PIECES:
                assert piece not in text, f"the key leaked in {where}: {text[:300]}"


def objects(base_url: str, pdf: Path) -> dict[str, Any]:
    from langchain_qwen_ocr import ImageReader, QwenOCRLoader, QwenOCRParser, QwenOCRTool
    from llamaindex_qwen_ocr import QwenOCRReader

    settings = {"api_key": KEY, "base_url": base_url, "max_retries": 0}
    return {
        "QwenOCR": QwenOCR(**settings),
        "AsyncQwenOCR": AsyncQwenOCR(**settings),
        "ClientSettings": ClientSettings(**settings),
        "ImageReader": ImageReader(**settings),
        "QwenOCRTool": QwenOCRTool(**settings),
        "QwenOCRLoader": QwenOCRLoader(str(pdf), text_layer="never", on_error="mark", **settings),
        "QwenOCRParser": QwenOCRParser(**settings),
        "QwenOCRReader": QwenOCRReader(on_error="mark", **settings),
    }


def describe(leaks: Leaks, name: str, obj: Any) -> None:
    leaks.add(f"{name} repr", repr(obj))
    leaks.add(f"{name} str", str(obj))
    for method in ("model_dump", "model_dump_json", "to_dict", "to_json", "__getstate__"):
        fn = getattr(obj, method, None)
        if callable(fn):
            leaks.expect(fn, f"{name}.{method}()")
    if hasattr(obj, "to_json") and hasattr(obj, "lc_secrets"):
        from langchain_core.load import dumpd, dumps

        leaks.expect(lambda: dumps(obj), f"langchain dumps({name})")
        leaks.expect(lambda: dumpd(obj), f"langchain dumpd({name})")


def exercise(leaks: Leaks, objs: dict[str, Any], image: bytes, pdf: Path, tag: str) -> None:
    from langchain_core.messages import HumanMessage

    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    message = HumanMessage(content=[{"type": "image_url", "image_url": {"url": data_url}}, "What does it say?"])
    client: QwenOCR = objs["QwenOCR"]
    leaks.expect(lambda: client.ocr(image).model_dump_json(), f"{tag} ocr")
    leaks.expect(lambda: "".join(c.text for c in client.stream(image)), f"{tag} stream")
    leaks.expect(lambda: client.ocr_many([image, image]), f"{tag} ocr_many")
    leaks.expect(lambda: objs["ImageReader"].invoke([message]), f"{tag} ImageReader.invoke")
    leaks.expect(lambda: objs["QwenOCRTool"].invoke({"image": data_url}), f"{tag} QwenOCRTool.invoke")
    leaks.expect(lambda: [d.model_dump_json() for d in objs["QwenOCRLoader"].load()], f"{tag} QwenOCRLoader.load")
    leaks.expect(lambda: [d.to_json() for d in objs["QwenOCRReader"].load_data(pdf)], f"{tag} QwenOCRReader.load")

    async def async_calls() -> Any:
        aclient: AsyncQwenOCR = objs["AsyncQwenOCR"]
        return (await aclient.ocr(image)).model_dump_json()

    import asyncio

    leaks.expect(lambda: asyncio.run(async_calls()), f"{tag} async ocr")


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "two.pdf"
    pages = [Image.new("L", (120, 40), 255), Image.new("L", (120, 40), 200)]
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    return path


@pytest.mark.parametrize("accepted", [False, True], ids=["401", "success"])
def test_the_key_never_leaks(accepted: bool, pdf: Path, captured_logs: pytest.LogCaptureFixture) -> None:
    for name in ("qwen_ocr", "httpx", "httpcore", "langchain_qwen_ocr", "llamaindex_qwen_ocr"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    leaks = Leaks()
    image = numbered_png(1)
    with Emulator(valid_keys={KEY} if accepted else {"sk-" + "someoneelseskey000000000000"}) as emu:
        objs = objects(emu.base_url, pdf)
        for name, obj in objs.items():
            describe(leaks, name, obj)
        exercise(leaks, objs, image, pdf, "accepted" if accepted else "refused")
        for name, obj in objs.items():  # again, with their clients built and used
            describe(leaks, f"{name} (used)", obj)
        stats = emu.stats
        leaks.add("the emulator's request log", [(e.headers, e.json) for e in emu.request_log])
        for obj in objs.values():
            close = getattr(obj, "close", None)
            if callable(close):
                close()
    if accepted:
        assert stats.successes > 0 and stats.unauthorized == 0
    else:
        assert stats.unauthorized > 0 and stats.successes == 0
        assert any("InvalidApiKey" in text for _, text in leaks.texts)  # the failures were seen, and checked
    records = captured_logs.records
    assert any(r.name.startswith("httpcore") and r.levelno == logging.DEBUG for r in records)  # DEBUG was on
    for record in records:
        leaks.add(f"log {record.name}", record.getMessage())
        leaks.add(f"log {record.name} args", record.args)
        if record.exc_info and record.exc_info[1] is not None:
            leaks.error(f"log {record.name} exc", record.exc_info[1])
    leaks.add("caplog text", captured_logs.text)
    leaks.check()


def test_a_wrong_key_error_says_what_to_do_without_the_key() -> None:
    with (
        Emulator(valid_keys={"sk-" + "right00000000000000000000"}) as emu,
        QwenOCR(api_key=KEY, base_url=emu.base_url) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.ocr(numbered_png(2))
    assert "region" in info.value.message  # the hint: keys are bound to a region
    assert KEY not in str(info.value) and KEY[3:15] not in repr(info.value)


# ----------------------------------------------------------------------------------------------------------------
# What is committed


def committed_files() -> list[Path]:
    found = [
        *sorted((ROOT / "tests" / "cassettes").glob("**/*.yaml")),
        *sorted((ROOT / "notebooks").glob("**/*.ipynb")),
        *sorted((ROOT / "benchmarks").glob("**/*.md")),
        *sorted((ROOT / "benchmarks").glob("**/*.json")),
        *sorted((ROOT / "tests" / "data" / "protocol").glob("**/*.json")),
        *sorted((ROOT / "tests" / "data" / "protocol").glob("**/*.txt")),
        *sorted((ROOT / "core" / "qwen_ocr" / "testing" / "recordings").glob("**/*")),
    ]
    return [path for path in found if path.is_file() and ".ipynb_checkpoints" not in path.parts]


def test_the_scan_sees_the_files_it_should() -> None:
    names = {path.suffix for path in committed_files()}
    assert {".yaml", ".ipynb", ".md", ".json"} <= names
    assert len([p for p in committed_files() if p.suffix == ".yaml"]) >= 10


def test_the_patterns_catch_what_they_should() -> None:
    assert KEY_PATTERN.search(f"api_key={KEY}")
    for leak in (
        "Authorization: Bearer " + "sk-" + "abc123def456",
        '"authorization": ["Bearer abcdef123456"]',
        "Authorization:\n      - Bearer abcdefgh1234",
        "authorization = 'Basic dXNlcjpwYXNz'",
    ):
        assert AUTH_VALUE.search(leak), leak
    for fine in ("Authorization:\n      - <FILTERED>", '"Authorization": "Bearer <REDACTED>"', "Authorization header"):
        assert not AUTH_VALUE.search(fine), fine


@pytest.mark.parametrize("path", committed_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_committed_file_holds_a_key_or_an_authorization_value(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "replace")
    if path.suffix == ".ipynb":  # outputs are JSON strings: look at them as the reader sees them, too
        notebook = json.loads(text)
        text += "\n".join(
            json.dumps(output) for cell in notebook.get("cells", []) for output in cell.get("outputs", [])
        )
    keys = KEY_PATTERN.findall(text)
    assert not keys, f"{path.name} holds something that looks like a DashScope key: {keys[0][:6]}..."
    auth = AUTH_VALUE.search(text)
    assert auth is None, f"{path.name} holds an Authorization value: {auth.group(0)[:40]}..."


def test_the_leak_check_itself_catches_a_leak() -> None:
    for text in (
        f"Authorization: Bearer {KEY}",
        f"key={KEY[3:15]}...",
        "Basic " + base64.b64encode(f":{KEY}".encode()).decode(),
    ):
        leaks = Leaks()
        leaks.add("a planted leak", text)
        with pytest.raises(AssertionError, match="the key leaked"):
            leaks.check()
