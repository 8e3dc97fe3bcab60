"""Agents (issue 18): images and PDFs reach a text-only chat model inside LangChain v1 and LangGraph agents, with
tool calling kept, and nothing falls back silently.

The chat model is scripted and text-only: it refuses any non-text part (as a text-only API does), records the
messages and the bound tools it received, and answers from a script. The OCR is answered by a stub service
(``image_ocr_stub``: by image content, no sockets) or the loopback emulator.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, PrivateAttr

from langchain_qwen_ocr import (
    ImageReader,
    ImageReaderMiddleware,
    ImageReadingChatModel,
    QwenOCRTool,
    image_reader_hook,
    with_image_reader,
)
from qwen_ocr import InvalidArgumentError, InvalidImageError, MissingAPIKeyError, QwenOCR
from qwen_ocr.documents import open_document
from tests.conftest import make_image, serve_directory
from tests.langchain.test_loader_support import text_pages_pdf
from tests.reliability._support import time_budget

from .conftest import ImageOCRStub

PNG_A = make_image((448, 224), "Alpha")
PNG_B = make_image((448, 224), "Bravo")
Stub = Callable[..., ImageOCRStub]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_part(png: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(png)}}


def pdf_part(pdf: bytes) -> dict[str, Any]:
    return {"type": "file", "base64": b64(pdf), "mime_type": "application/pdf"}


def asking(*parts: Any, text: str = "What does it say?") -> HumanMessage:
    return HumanMessage([{"type": "text", "text": text}, *parts])


def non_text_parts(messages: Sequence[BaseMessage]) -> list[Any]:
    return [
        part
        for message in messages
        if isinstance(message.content, list)
        for part in message.content
        if not (isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text"))
    ]


def text_of(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(message.text for message in messages)


class TextOnlyChatModel(BaseChatModel):
    """A scripted text-only chat model: refuses image and file parts as a text-only API does, records what it
    received (messages and the tools bound to it), answers with the next scripted message (the last repeats)."""

    script: list[AIMessage] = Field(default_factory=lambda: [AIMessage("ok")])
    _received: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _tools: list[list[str]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "text-only-scripted"

    @property
    def received(self) -> list[list[BaseMessage]]:
        return self._received

    @property
    def tools_seen(self) -> list[list[str]]:
        return self._tools

    def _answer(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        refused = non_text_parts(messages)
        if refused:
            raise ValueError(f"this model reads text only; got {[part.get('type') for part in refused]}")
        self._received.append(list(messages))
        self._tools.append([spec["function"]["name"] for spec in kwargs.get("tools", [])])
        step = min(len(self._received), len(self.script)) - 1
        return self.script[step].model_copy()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, **kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        answer = self._answer(messages, **kwargs)
        for word in answer.text.split(" "):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        specs = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=specs, **kwargs)


def calling(name: str, args: dict[str, Any], call_id: str = "call-1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


class Receipt(BaseModel):
    """What a receipt says."""

    total: str = Field(description="The total due.")


@pytest.fixture
def stub(image_ocr_stub: Stub) -> ImageOCRStub:
    return image_ocr_stub({PNG_A: "TOTAL 12.50", PNG_B: "TABLE | A | B"}, default="PAGE TEXT")


def middleware(stub: ImageOCRStub, **options: Any) -> Any:
    return ImageReaderMiddleware(client=stub.client(), aclient=stub.aclient(), **options)


# -- ImageReaderMiddleware in create_agent -------------------------------------------------------------------------


def test_middleware_gives_the_model_text_and_the_state_keeps_the_image(stub: ImageOCRStub) -> None:
    from langchain.agents import create_agent

    model = TextOnlyChatModel(script=[calling("add", {"a": 2, "b": 3}), AIMessage("The total is 12.50.")])
    agent = create_agent(model=model, tools=[add], middleware=[middleware(stub)])
    question = asking(image_part(PNG_A))
    with time_budget(30):
        state = agent.invoke({"messages": [question]})
    assert state["messages"][-1].text == "The total is 12.50."
    assert len(model.received) == 2  # the tool call, then the answer
    for seen in model.received:
        assert non_text_parts(seen) == []  # no image part reached the model
        assert "TOTAL 12.50" in text_of(seen) and "image 1 of 1" in text_of(seen)
    assert model.tools_seen == [["add"], ["add"]]  # the tools were bound on every call
    assert isinstance(state["messages"][2], ToolMessage) and state["messages"][2].content == "5"
    assert state["messages"][0].content == question.content  # the state still holds the image
    assert non_text_parts(state["messages"][:1]) == [image_part(PNG_A)]
    assert stub.calls == 1  # read once: the second model call of the turn was answered from the cache


async def test_middleware_async(stub: ImageOCRStub) -> None:
    from langchain.agents import create_agent

    model = TextOnlyChatModel(script=[AIMessage("It says 12.50.")])
    agent = create_agent(model=model, tools=[add], middleware=[middleware(stub)])
    state = await agent.ainvoke({"messages": [asking(image_part(PNG_A), image_part(PNG_B))]})
    assert state["messages"][-1].text == "It says 12.50."
    [seen] = model.received
    assert non_text_parts(seen) == []
    assert "TOTAL 12.50" in text_of(seen) and "TABLE | A | B" in text_of(seen)
    assert non_text_parts(state["messages"][:1]) == [image_part(PNG_A), image_part(PNG_B)]


def test_middleware_next_turn_reads_no_image_again(stub: ImageOCRStub) -> None:
    from langchain.agents import create_agent

    model = TextOnlyChatModel(script=[AIMessage("first"), AIMessage("second")])
    agent = create_agent(model=model, tools=[], middleware=[middleware(stub)])
    state = agent.invoke({"messages": [asking(image_part(PNG_A))]})
    state = agent.invoke({"messages": [*state["messages"], asking(image_part(PNG_B), text="And this one?")]})
    assert state["messages"][-1].text == "second"
    assert stub.calls == 2  # A in the first turn, B in the second; A of the earlier turn came from the cache
    assert non_text_parts(model.received[1]) == []


def test_middleware_structured_response(stub: ImageOCRStub) -> None:
    from langchain.agents import create_agent

    model = TextOnlyChatModel(script=[calling("Receipt", {"total": "12.50"})])
    agent = create_agent(model=model, tools=[], middleware=[middleware(stub)], response_format=Receipt)
    state = agent.invoke({"messages": [asking(image_part(PNG_A))]})
    assert state["structured_response"] == Receipt(total="12.50")
    assert non_text_parts(model.received[0]) == []
    assert "Receipt" in model.tools_seen[0]


def test_middleware_with_placeholders_and_the_tool_reading_an_image_by_number(stub: ImageOCRStub) -> None:
    from langchain.agents import create_agent

    ocr_tool = QwenOCRTool(client=stub.client())
    model = TextOnlyChatModel(
        script=[calling("qwen_ocr", {"image_index": 2, "task": "table_parsing"}), AIMessage("A table of A and B.")]
    )
    agent = create_agent(model=model, tools=[ocr_tool], middleware=[middleware(stub, template="placeholder")])
    state = agent.invoke({"messages": [asking(image_part(PNG_A), image_part(PNG_B))]})
    first = text_of(model.received[0])
    assert "image 2 of 2 in this message: not read" in first and "image_index=2" in first
    assert "TOTAL 12.50" not in first  # nothing was read before the model asked
    tool_message = state["messages"][2]
    assert isinstance(tool_message, ToolMessage) and "TABLE | A | B" in str(tool_message.content)
    assert stub.calls == 1 and stub.bodies[0]["parameters"]["ocr_options"]["task"] == "table_parsing"
    call = state["messages"][1].tool_calls[0]
    assert call["args"] == {"image_index": 2, "task": "table_parsing"}  # no bytes were copied into the call


def test_middleware_refuses_unknown_options() -> None:
    with pytest.raises(InvalidArgumentError, match="did you mean 'model'"):
        ImageReaderMiddleware(modle="qwen-vl-ocr")
    with pytest.raises(InvalidArgumentError, match="not both"):
        ImageReaderMiddleware(reader=ImageReader(), task="table_parsing")


# -- with_image_reader: a chat model that keeps the chat-model API -------------------------------------------------


def test_wrapper_bind_tools_sends_the_tools_and_no_image(stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[AIMessage("12.50")])
    model = with_image_reader(llm, client=stub.client())
    assert isinstance(model, BaseChatModel)
    answer = model.bind_tools([add]).invoke([asking(image_part(PNG_A))])
    assert answer.text == "12.50"
    assert llm.tools_seen == [["add"]]
    assert non_text_parts(llm.received[0]) == [] and "TOTAL 12.50" in text_of(llm.received[0])


def test_wrapper_with_structured_output(stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[calling("Receipt", {"total": "12.50"})])
    structured = with_image_reader(llm, client=stub.client()).with_structured_output(Receipt)
    assert structured.invoke([asking(image_part(PNG_A))]) == Receipt(total="12.50")
    assert non_text_parts(llm.received[0]) == []
    assert llm.tools_seen == [["Receipt"]]


class Runs(BaseCallbackHandler):
    """Records (kind, name, run id, parent run id) of every run started."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, UUID, UUID | None]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.append(("chat_model", str(kwargs.get("name") or ""), run_id, kwargs.get("parent_run_id")))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.append(("chain", str(kwargs.get("name") or ""), run_id, kwargs.get("parent_run_id")))


def test_wrapper_streams_and_the_ocr_is_its_own_run(stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[AIMessage("the total is 12.50")])
    runs = Runs()
    chunks = list(
        with_image_reader(llm, client=stub.client()).stream([asking(image_part(PNG_A))], {"callbacks": [runs]})
    )
    assert len([c for c in chunks if c.content]) == 4  # word by word, as the wrapped model streams
    assert "".join(str(c.content) for c in chunks).strip() == "the total is 12.50"
    assert [run[:2] for run in runs.runs] == [("chain", "ImageReader"), ("chat_model", "")]  # one model run
    assert non_text_parts(llm.received[0]) == []


def test_wrapper_runs_in_a_chain_are_the_ocr_then_the_model(stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[AIMessage("12.50")])
    runs = Runs()
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{messages}")])
    chain = prompt | with_image_reader(llm, client=stub.client())
    chain.invoke({"messages": [asking(image_part(PNG_A))]}, {"callbacks": [runs], "run_name": "ask"})
    [(_, _, chain_run, _)] = [run for run in runs.runs if run[1] == "ask"]
    [reader] = [run for run in runs.runs if run[1] == "ImageReader"]
    [model] = [run for run in runs.runs if run[0] == "chat_model"]
    assert reader[3] == chain_run and model[3] == chain_run  # both runs of the chain, the OCR first
    assert runs.runs.index(reader) < runs.runs.index(model)
    assert non_text_parts(llm.received[0]) == []


async def test_wrapper_async_and_astream(stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[AIMessage("twelve fifty")])
    model = with_image_reader(llm, client=stub.client(), aclient=stub.aclient())
    assert (await model.ainvoke([asking(image_part(PNG_A))])).text == "twelve fifty"
    chunks = [chunk async for chunk in model.astream([asking(image_part(PNG_A))])]
    assert "".join(str(c.content) for c in chunks).strip() == "twelve fifty"
    assert all(non_text_parts(seen) == [] for seen in llm.received)
    assert stub.calls == 1  # the second call's image came from the reader's cache


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_create_react_agent_with_the_wrapper_and_with_the_hook(stub: ImageOCRStub) -> None:
    from langgraph.prebuilt import create_react_agent

    for make in ("wrapper", "hook"):
        llm = TextOnlyChatModel(script=[calling("add", {"a": 1, "b": 2}), AIMessage("3, and the total is 12.50")])
        if make == "wrapper":
            agent = create_react_agent(with_image_reader(llm, client=stub.client()), [add])
        else:
            agent = create_react_agent(llm, [add], pre_model_hook=image_reader_hook(client=stub.client()))
        state = agent.invoke({"messages": [asking(image_part(PNG_A))]})
        assert state["messages"][-1].text == "3, and the total is 12.50", make
        assert llm.tools_seen == [["add"], ["add"]], make
        assert all(non_text_parts(seen) == [] for seen in llm.received), make
        assert non_text_parts(state["messages"][:1]) == [image_part(PNG_A)], make


def test_wrapper_is_strict_and_takes_chat_models_only() -> None:
    llm = TextOnlyChatModel()
    with pytest.raises(InvalidArgumentError, match="did you mean 'template'"):
        with_image_reader(llm, templat="higress")
    with pytest.raises(InvalidArgumentError, match="bind tools on the result of with_image_reader"):
        with_image_reader(llm.bind_tools([add]))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="did you mean 'reader'"):
        ImageReadingChatModel(llm=llm, readr=ImageReader())


# -- PDF file blocks -----------------------------------------------------------------------------------------------

PDF = text_pages_pdf(["page one", "page two", "page three"], size=(600, 400))


def page_urls(pdf: bytes) -> list[str]:
    """The data: URLs the engine sends for the pages of ``pdf`` (the stub answers by them)."""
    with open_document(pdf) as document:
        return [document.page(i).prepare().url for i in range(document.page_count)]


@pytest.fixture
def pdf_stub(image_ocr_stub: Stub) -> ImageOCRStub:
    urls = page_urls(PDF)
    return image_ocr_stub({urls[0]: "FIRST PAGE", urls[1]: "SECOND PAGE", urls[2]: "THIRD PAGE"}, default="?")


def test_pdf_file_block_reaches_a_text_only_model_as_text(pdf_stub: ImageOCRStub) -> None:
    llm = TextOnlyChatModel(script=[AIMessage("three pages")])
    answer = with_image_reader(llm, client=pdf_stub.client()).invoke([asking(pdf_part(PDF), text="Summarise.")])
    assert answer.text == "three pages"
    [seen] = llm.received
    assert non_text_parts(seen) == []
    content = seen[0].content
    assert isinstance(content, list)
    pages = [part["text"] for part in content[1:]]
    assert [("FIRST PAGE" in p, "SECOND PAGE" in p, "THIRD PAGE" in p) for p in pages] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    assert "page 2 of 3 of file 1 of 1" in pages[1] and '<image_text index="1" of="1" page="2">' in pages[1]


def test_pdf_pages_beyond_max_pages_are_marked_and_shapes_are_recognised(pdf_stub: ImageOCRStub) -> None:
    reader = ImageReader(client=pdf_stub.client(), max_pages=2)
    openai_file = {
        "type": "file",
        "file": {"filename": "scan.pdf", "file_data": "data:application/pdf;base64," + b64(PDF)},
    }
    for part in (pdf_part(PDF), openai_file):
        [out] = reader.invoke([asking(part)])
        texts = [p["text"] for p in out.content[1:]]
        assert len(texts) == 3
        assert "FIRST PAGE" in texts[0] and "SECOND PAGE" in texts[1]
        assert texts[2] == (
            "[file 1 of 1: page 3 of 3 were not read (the reader reads at most 2 pages of a document: max_pages)]"
        )
    assert pdf_stub.calls == 2  # the second shape is the same file: its pages came from the cache


async def test_pdf_async(pdf_stub: ImageOCRStub) -> None:
    reader = ImageReader(aclient=pdf_stub.aclient())
    [out] = await reader.ainvoke([asking(pdf_part(PDF))])
    assert ["PAGE" in p["text"] for p in out.content[1:]] == [True, True, True]


def test_pdf_by_file_id_is_refused_with_a_clear_mark(pdf_stub: ImageOCRStub) -> None:
    reader = ImageReader(client=pdf_stub.client())
    for part in (
        {"type": "file", "file_id": "file-abc", "mime_type": "application/pdf"},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "input_file", "file_id": "file-abc"},
    ):
        [out] = reader.invoke([asking(part)])
        [mark] = [p["text"] for p in out.content[1:]]
        assert mark.startswith("[file 1 of 1 could not be read:") and "file store" in mark and "base64" in mark
    assert pdf_stub.calls == 0
    with pytest.raises(InvalidImageError, match="file store") as caught:
        ImageReader(client=pdf_stub.client(), on_error="raise").invoke([asking({"type": "file", "file_id": "f"})])
    assert caught.value.code == "FileIdNotReadable"


def test_pdf_by_url_is_downloaded_safely(pdf_stub: ImageOCRStub, tmp_path: Path) -> None:
    (tmp_path / "scan.pdf").write_bytes(PDF)
    with serve_directory(tmp_path) as root, time_budget(30):
        url_part = {"type": "file", "url": f"{root}/scan.pdf", "mime_type": "application/pdf"}
        [refused] = ImageReader(client=pdf_stub.client()).invoke([asking(url_part)])
        assert "could not be read" in refused.content[1]["text"] and "private" in refused.content[1]["text"].lower()
        [read] = ImageReader(client=pdf_stub.client(), allow_private_urls=True).invoke([asking(url_part)])
    assert "FIRST PAGE" in read.content[1]["text"]


def test_pdf_with_other_templates_and_history(pdf_stub: ImageOCRStub) -> None:
    client = pdf_stub.client()
    [out] = ImageReader(client=client, template="p{page}/{pages}: {text}", max_pages=1).invoke([asking(pdf_part(PDF))])
    assert out.content[1] == {"type": "text", "text": "p1/3: FIRST PAGE"}
    [higress] = ImageReader(client=client, template="higress").invoke([asking(pdf_part(PDF))])
    assert "FIRST PAGE" in higress.content[1]["text"] and "用户" not in str(higress.content)  # no image: no prompt
    earlier = [asking(pdf_part(PDF)), AIMessage("ok"), HumanMessage("and now?")]
    dropped = ImageReader(client=client, history="drop").invoke(earlier)
    assert dropped[0].content[1] == {"type": "text", "text": "[file 1 of 1 omitted]"}


def test_other_file_types_are_left_alone(stub: ImageOCRStub) -> None:
    part = {"type": "file", "base64": b64(b"hello"), "mime_type": "text/plain"}
    [out] = ImageReader(client=stub.client()).invoke([asking(part)])
    assert out.content[1] == part and stub.calls == 0


# -- strict settings, no silent engine switch ------------------------------------------------------------------------


def test_tool_refuses_unknown_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="did you mean 'model'"):
        QwenOCRTool(modle="qwen-vl-ocr-latest")
    with pytest.raises(InvalidArgumentError, match="unknown argument 'dashscope_api_key'"):
        QwenOCRTool(dashscope_api_key="sk-x")


def test_tool_image_index_outside_an_agent_and_out_of_range() -> None:
    ocr_tool: BaseTool = QwenOCRTool(client=QwenOCR(provider="local"))
    assert "no agent state" in ocr_tool.invoke({"image_index": 1})
    from langchain_qwen_ocr.tools import conversation_image

    with pytest.raises(Exception, match="has 1 image"):
        conversation_image([asking(image_part(PNG_A))], 2)
    with pytest.raises(Exception, match="no user message holds an image"):
        conversation_image([HumanMessage("hi")], 1)
    with pytest.raises(ValueError, match="either image"):
        ocr_tool.invoke({"image": "https://example.com/a.png", "image_index": 1})


def test_no_key_raises_even_with_the_local_extra_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 18: with no key and the local extra installed, the default provider switched to RapidOCR silently.
    monkeypatch.setattr("qwen_ocr.local.is_available", lambda: True)  # as with the extra installed
    client = QwenOCR()
    assert client.provider == "dashscope"
    with pytest.raises(MissingAPIKeyError) as caught:
        client.ocr(PNG_A)
    message = caught.value.message
    assert "DASHSCOPE_API_KEY" in message and "provider='local'" in message and "offline" in message
    # an integration raises it too, whatever its on_error (it would fail every image alike)
    with pytest.raises(MissingAPIKeyError):
        ImageReader(on_error="mark").invoke([asking(image_part(PNG_A))])


def test_agent_with_no_key_fails_instead_of_answering_without_the_image() -> None:
    from langchain.agents import create_agent

    model = TextOnlyChatModel(script=[AIMessage("I cannot see any image.")])
    agent = create_agent(model=model, tools=[], middleware=[ImageReaderMiddleware()])
    with pytest.raises(MissingAPIKeyError):
        agent.invoke({"messages": [asking(image_part(PNG_A))]})
    assert model.received == []


def test_explicit_local_provider_reads_offline(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("rapidocr")
    caplog.set_level(logging.WARNING)
    llm = TextOnlyChatModel(script=[AIMessage("read")])
    with time_budget(120):
        with_image_reader(llm, client=QwenOCR(provider="local")).invoke([asking(image_part(PNG_A))])
    assert non_text_parts(llm.received[0]) == []
    assert "Alpha" in text_of(llm.received[0])
