"""Build the vcrpy cassettes in tests/cassettes/ from the recorded exchanges in tests/data/protocol/.

The recordings are raw HTTP captures of the live service (and the vendor's documented examples); a cassette is the
same exchange in the format vcrpy replays. Run from the repository root after changing a recording:

    .venv/bin/python -m tests.tools.build_cassettes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "protocol"
OUT = ROOT / "cassettes"
HOST = "https://dashscope.aliyuncs.com"
PATH = "/api/v1/services/aigc/multimodal-generation/generation"

# Headers that describe the transfer of the original capture, not the content we store.
_DROP = {"content-encoding", "transfer-encoding", "content-length", "set-cookie", "connection"}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")


def _status_and_headers(path: Path) -> tuple[int, str, dict[str, list[str]]]:
    lines = _read(path).splitlines()
    _, code, *message = lines[0].split(" ")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        if name.strip().lower() in _DROP:
            continue
        headers.setdefault(name.strip(), []).append(value.strip())
    return int(code), " ".join(message), headers


def _interaction(body: str, status: int, message: str, headers: dict[str, list[str]], *, sse: bool) -> dict[str, Any]:
    request_headers = {"Content-Type": ["application/json"], "Authorization": ["<FILTERED>"]}
    if sse:
        request_headers["X-DashScope-SSE"] = ["enable"]
    return {
        "request": {"body": "", "headers": request_headers, "method": "POST", "uri": HOST + PATH},
        "response": {
            "status": {"code": status, "message": message},
            "headers": headers,
            "body": {"string": body},
        },
    }


def from_recording(name: str, *, sse: bool = False) -> dict[str, Any]:
    """A cassette interaction from a raw capture ``recorded/<name>.response.{header,body}.txt``."""
    status, message, headers = _status_and_headers(DATA / "recorded" / f"{name}.response.header.txt")
    body = _read(DATA / "recorded" / f"{name}.response.body.txt")
    return _interaction(body, status, message, headers, sse=sse)


def from_docs_example(name: str) -> dict[str, Any]:
    """A cassette interaction from a documented example body (a 200 with JSON)."""
    body = json.dumps(json.loads(_read(DATA / "docs_examples" / f"{name}.response.json")), ensure_ascii=False)
    headers = {"content-type": ["application/json"]}
    request_id = json.loads(body).get("request_id")
    if request_id:
        headers["x-request-id"] = [request_id]
    return _interaction(body, 200, "OK", headers, sse=False)


CASSETTES: dict[str, list[dict[str, Any]]] = {}


def build() -> dict[str, list[dict[str, Any]]]:
    """Every cassette by name."""
    return {
        "advanced_recognition": [from_recording("multimodal-generation-vl-ocr-advanced-recognition-nosse")],
        "key_information_extraction": [from_recording("multimodal-generation-vl-ocr-key-information-extraction-nosse")],
        "plain_prompt": [from_recording("multimodal-generation-vl-ocr-nosse")],
        "stream": [from_recording("multimodal-generation-vl-ocr-sse", sse=True)],
        "auth_error": [from_recording("auth-error-nosse")],
        "parameter_error": [from_recording("parameter-error-nosse")],
        "in_stream_error": [from_recording("parameter-error-sse", sse=True)],
        "text_recognition": [from_docs_example("native_text_recognition")],
        "table_parsing": [from_docs_example("native_table_parsing")],
        "document_parsing": [from_docs_example("native_document_parsing")],
        "formula_recognition": [from_docs_example("native_formula_recognition")],
        "multi_lan": [from_docs_example("native_multi_lan")],
        "key_information_extraction_docs": [from_docs_example("native_key_information_extraction")],
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, interactions in build().items():
        text = yaml.safe_dump(
            {"interactions": interactions, "version": 1}, allow_unicode=True, sort_keys=False, width=1_000_000
        )
        (OUT / f"{name}.yaml").write_text(text, encoding="utf-8")
        print(f"wrote tests/cassettes/{name}.yaml")


if __name__ == "__main__":
    main()
