"""Small helpers the notebooks share: whether to use the real service, pictures to read, compact picture output,
and a stand-in text-only chat model for the offline runs.

Nothing here talks to the network. ``LIVE`` is true only when ``DASHSCOPE_API_KEY`` is set in the environment.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image, ImageDraw, ImageFont

__all__ = ["LIVE", "LOAD_TABLE", "StandInChatModel", "show", "stand_in", "table_picture"]

LIVE = bool(os.environ.get("DASHSCOPE_API_KEY", "").strip())
"""Use the real Qwen-OCR service (a key is set), else the offline stand-ins (local engine, emulator)."""

LOAD_TABLE = [
    ["Measure channel", "Load point", "Load method", "Actual Load(%)", "Actual Load(kN)"],
    ["V02", "V1", "Live Load", "147.95", "0.815"],
    ["V03", "V2", "Live Load", "111.75", "0.615"],
    ["V04", "V3", "Live Load", "9.74", "1.007"],
    ["V05", "V4", "Live Load", "7.88", "0.814"],
    ["V06", "V5", "Live Load", "8.11", "0.780"],
    ["V07", "V6", "Live Load", "8.54", "0.815"],
    ["V08", "V7", "Live Load", "6.77", "0.700"],
    ["V09", "V8", "Live Load", "8.59", "0.888"],
    ["L01", "L1", "Live Load", "13.33", "3.089"],
    ["L02", "L2", "Live Load", "9.69", "2.247"],
    ["L03", "L3", "", "2.96", "1.480"],
    ["L04", "L4", "", "3.40", "1.700"],
    ["L05", "L5", "", "2.45", "1.224"],
    ["L06", "L6", "", "2.01", "1.006"],
    ["L07", "L7", "", "2.38", "1.192"],
    ["L08", "L8", "", "2.10", "1.050"],
    ["T01", "T1", "Live Load", "25.29", "3.073"],
    ["T02", "T2", "Live Load", "27.39", "3.327"],
    ["T03", "T3", "Live Load", "8.03", "2.543"],
    ["T04", "T4", "Live Load", "11.19", "3.542"],
    ["T05", "T5", "Live Load", "11.34", "3.592"],
    ["T06", "T6", "Live Load", "16.47", "5.217"],
    ["T07", "T7", "Live Load", "11.05", "3.498"],
    ["T08", "T8", "Live Load", "8.66", "2.743"],
    ["T09", "WT1", "Live Load", "36.56", "2.365"],
    ["T10", "WT2", "Live Load", "24.55", "2.853"],
    ["T11", "WT3", "Live Load", "38.06", "4.784"],
    ["T12", "WT4", "Live Load", "37.70", "5.030"],
    ["T13", "WT5", "Live Load", "30.48", "4.524"],
]
"""Rows of the load-test table in the vendor's ``table_parsing`` example, which the emulator's
recorded answer reads; :func:`table_picture` draws them so that the real service has the same table to read."""


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def stand_in(task: str) -> bytes:
    """A PNG card that says what it is: the picture sent to the emulator, which answers ``task`` with a recorded
    reply of the vendor's documentation, whatever it is sent."""
    card = Image.new("L", (760, 150), 245)
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, 759, 149), outline=120, width=3)
    draw.text((24, 22), f"offline stand-in for {task}", fill=20, font=_font(30))
    draw.text((24, 76), "the emulator answers with the recorded reply of the vendor's", fill=60, font=_font(20))
    draw.text((24, 104), "documentation example, not with a reading of this picture", fill=60, font=_font(20))
    return _png(card)


def table_picture(rows: list[list[str]] = LOAD_TABLE) -> bytes:
    """A PNG of a ruled table (first row bold-ish, as a header): a page with a table, made here, nothing downloaded."""
    font = _font(22)
    widths = [max(int(font.getlength(row[c])) for row in rows) + 28 for c in range(len(rows[0]))]
    row_h, margin = 40, 30
    width, height = sum(widths) + 2 * margin, row_h * len(rows) + 2 * margin
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for r, row in enumerate(rows):
        y = margin + r * row_h
        x = margin
        for c, text in enumerate(row):
            draw.rectangle((x, y, x + widths[c], y + row_h), outline=0, width=2)
            draw.text((x + 14, y + 8), text, fill=0, font=font, stroke_width=1 if r == 0 else 0, stroke_fill=0)
            x += widths[c]
    return _png(page)


def show(picture: Image.Image, width: int = 700) -> None:
    """Display a picture as one JPEG (a PIL image alone would be stored twice, as PNG and JPEG, in the notebook)."""
    from IPython.display import Image as Shown
    from IPython.display import display

    if picture.width > width:
        picture = picture.resize((width, round(picture.height * width / picture.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    display(Shown(data=buffer.getvalue(), format="jpeg"))



_TOTAL = re.compile(r"total[^:\n]*:\s*([0-9][0-9,]*\.?[0-9]*)", re.IGNORECASE)


class StandInChatModel(BaseChatModel):
    """Not a model: a visible, rule-based stand-in for a text-only chat model with tool calling.

    It refuses image and file parts (as a text-only API does). Given an ``add_vat`` tool and a text that says
    "Total ...: <amount>", it calls the tool with that amount, then answers with the tool's result; otherwise it says
    what it received (the first line of each text part).
    """

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        for message in messages:
            for part in message.content if isinstance(message.content, list) else []:
                if not (isinstance(part, str) or part.get("type") == "text"):
                    raise ValueError(f"a text-only model cannot read a {part.get('type')!r} part")
        tools = [spec["function"]["name"] for spec in kwargs.get("tools", [])]
        said = "\n".join(m.text for m in messages if isinstance(m, HumanMessage))
        found = _TOTAL.search(said)
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if found and "add_vat" in tools and not results:
            amount = float(found.group(1).replace(",", ""))
            call = {"name": "add_vat", "args": {"amount": amount}, "id": "call-1", "type": "tool_call"}
            answer = AIMessage("", tool_calls=[call])
        elif found and results:
            answer = AIMessage(f"[stand-in] The total due is {found.group(1)}; with VAT it comes to {results[-1].text}.")
        else:
            firsts = []
            for message in messages:
                if isinstance(message, HumanMessage):
                    for part in message.content if isinstance(message.content, list) else [message.content]:
                        lines = (part if isinstance(part, str) else part["text"]).strip().splitlines()
                        body = [line for line in lines if not line.startswith(("[", "<"))]
                        note = lines[0].split(". It is")[0].lstrip("[") + ": " if lines[0].startswith("[") else ""
                        firsts.append(f"{note}{(body or [''])[0][:80]}")
            answer = AIMessage(
                "[stand-in] I received text only, its parts begin:\n" + "\n".join(f"- {f}" for f in firsts)
            )
        return ChatResult(generations=[ChatGeneration(message=answer)])
