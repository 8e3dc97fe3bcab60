"""End to end with a real LangChain chat model class: ``ImageReader() | ChatOpenAI(...)`` against a loopback stub of
the OpenAI chat completions endpoint that records what it receives. The model must get no image parts and the OCR
text, for ``invoke``, ``stream``, ``ainvoke`` and ``astream``."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from langchain_qwen_ocr.image_reader import ImageReader
from tests.conftest import make_image

from .conftest import ImageOCRStub

PNG_A = make_image((448, 224), "Alpha")
PNG_B = make_image((448, 224), "Bravo")
ANSWER = "The receipt total is 12.50"


class _ChatStubHandler(BaseHTTPRequestHandler):
    server: _ChatStubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.server.bodies.append(body)
        if not self.path.endswith("/chat/completions"):
            self._send(404, "application/json", b'{"error": {"message": "not here"}}')
            return
        if body.get("stream"):
            self._send(200, "text/event-stream", self._sse(body))
            return
        reply = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "stub"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"},
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
        }
        self._send(200, "application/json", json.dumps(reply).encode())

    @staticmethod
    def _sse(body: dict[str, Any]) -> bytes:
        def frame(delta: dict[str, Any], finish: str | None) -> bytes:
            chunk = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        words = ANSWER.split(" ")
        frames = [frame({"role": "assistant", "content": ""}, None)]
        frames += [frame({"content": word if i == 0 else " " + word}, None) for i, word in enumerate(words)]
        frames.append(frame({}, "stop"))
        return b"".join(frames) + b"data: [DONE]\n\n"

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _ChatStubServer(ThreadingHTTPServer):
    daemon_threads = True
    bodies: list[dict[str, Any]]


@pytest.fixture
def chat_stub() -> Iterator[_ChatStubServer]:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that records every request body."""
    server = _ChatStubServer(("127.0.0.1", 0), _ChatStubHandler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def chat_model(server: _ChatStubServer) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        api_key="x",  # type: ignore[arg-type]
        max_retries=0,
        timeout=10,
    )


def conversation() -> list[Any]:
    def data_url(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    return [
        SystemMessage("Answer briefly."),
        HumanMessage(
            [
                {"type": "text", "text": "Here is last week's receipt."},
                {"type": "image_url", "image_url": {"url": data_url(PNG_B)}},
            ]
        ),
        AIMessage("Noted."),
        HumanMessage(
            [
                {"type": "text", "text": "What is the total of this one?"},
                {"type": "image", "base64": base64.b64encode(PNG_A).decode("ascii"), "mime_type": "image/png"},
            ]
        ),
    ]


def assert_text_only_with_ocr(body: dict[str, Any]) -> None:
    """The request the chat model sent: no image anywhere, every content a string or text parts, OCR text in."""
    raw = json.dumps(body)
    assert "image_url" not in raw and "data:image" not in raw and '"image"' not in raw
    for message in body["messages"]:
        content = message["content"]
        assert isinstance(content, str) or all(part["type"] == "text" for part in content), content
    last = body["messages"][-1]
    texts = [part["text"] for part in last["content"]]
    assert texts[0] == "What is the total of this one?"
    assert '<image_text index="1" of="1">\nTOTAL 12.50\n</image_text>' in texts[1]
    earlier = body["messages"][1]
    assert "LAST WEEK 9.99" in earlier["content"][1]["text"]


@pytest.fixture
def reader(image_ocr_stub: Callable[..., ImageOCRStub]) -> ImageReader:
    stub = image_ocr_stub({PNG_A: "TOTAL 12.50", PNG_B: "LAST WEEK 9.99"})
    return ImageReader(client=stub.client(), aclient=stub.aclient())


def test_chat_openai_gets_text_only_input(chat_stub: _ChatStubServer, reader: ImageReader) -> None:
    result = (reader | chat_model(chat_stub)).invoke(conversation())
    assert result.content == ANSWER
    [body] = chat_stub.bodies
    assert body.get("stream") in (None, False)
    assert_text_only_with_ocr(body)


def test_chat_openai_streams_tokens_through_the_reader(chat_stub: _ChatStubServer, reader: ImageReader) -> None:
    tokens = [chunk.content for chunk in (reader | chat_model(chat_stub)).stream(conversation())]
    words = [t for t in tokens if t]
    assert len(words) == len(ANSWER.split(" "))
    assert "".join(str(t) for t in tokens) == ANSWER
    [body] = chat_stub.bodies
    assert body["stream"] is True
    assert_text_only_with_ocr(body)


async def test_chat_openai_async(chat_stub: _ChatStubServer, reader: ImageReader) -> None:
    chain = reader | chat_model(chat_stub)
    result = await chain.ainvoke(conversation())
    assert result.content == ANSWER
    tokens = [chunk.content async for chunk in chain.astream(conversation())]
    assert "".join(str(t) for t in tokens) == ANSWER
    assert len(chat_stub.bodies) == 2
    for body in chat_stub.bodies:
        assert_text_only_with_ocr(body)


def test_without_the_reader_the_images_would_have_been_sent(chat_stub: _ChatStubServer) -> None:
    """The control: the same chain without ImageReader sends image parts, which a text-only back end rejects."""
    chat_model(chat_stub).invoke(conversation())
    assert "data:image/png;base64," in json.dumps(chat_stub.bodies[0])
