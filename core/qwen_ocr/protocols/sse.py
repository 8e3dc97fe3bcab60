"""An incremental Server-Sent Events decoder (pure): bytes in, events out.

It speaks both dialects the service uses: DashScope's (``id:``, ``event:``, a ``:HTTP_STATUS/200`` comment,
``data:``) and the OpenAI-compatible one (``data: {...}`` then ``data: [DONE]``). A stream that ends without its
final blank line still yields its last event on :meth:`SSEDecoder.close`.

Example::

    decoder = SSEDecoder()
    events = decoder.feed(b"event:result\\ndata:{}\\n\\n")
    events[0].event, events[0].data          # ('result', '{}')
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

__all__ = ["SSEDecoder", "SSEEvent"]

_MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass
class SSEEvent:
    """One event: its ``event`` name (``"message"`` by default), ``data`` lines joined, ``id``, and ``status``
    from a DashScope ``:HTTP_STATUS/NNN`` comment."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    status: int | None = None
    comments: list[str] = field(default_factory=list)


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._status: int | None = None
        self._comments: list[str] = []
        self._size = 0
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode a chunk of the stream; returns the events it completed."""
        self._buffer += self._text.decode(chunk)
        if not self._started and self._buffer:
            self._started = True
            if self._buffer.startswith("\ufeff"):  # a leading byte-order mark is ignored, as the SSE spec says
                self._buffer = self._buffer[1:]
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        """End of stream: returns a pending event that was not followed by a blank line."""
        self._buffer += self._text.decode(b"", final=True)
        events = self._drain(final=True)
        pending = self._dispatch()
        if pending is not None:
            events.append(pending)
        return events

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                if final and self._buffer:
                    line, self._buffer = self._buffer.rstrip("\r"), ""
                    if line:
                        self._line(line)
                break
            end, width = cut
            line = self._buffer[:end]
            self._buffer = self._buffer[end + width :]
            if line == "":
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            else:
                self._line(line)
        if len(self._buffer) > _MAX_EVENT_BYTES:
            raise ValueError("an SSE line is longer than 16 MB; the stream is not SSE")
        return events

    def _line(self, line: str) -> None:
        self._size += len(line)
        if self._size > _MAX_EVENT_BYTES:
            raise ValueError("an SSE event is larger than 16 MB; the stream is not SSE")
        if line.startswith(":"):
            comment = line[1:].strip()
            if comment.upper().startswith("HTTP_STATUS/"):
                digits = comment.split("/", 1)[1].strip()
                if digits.isdigit():
                    self._status = int(digits)
            self._comments.append(comment)
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value.strip() or None
        elif name == "id":
            self._id = value.strip()
        # "retry" and unknown fields are ignored, as the SSE spec says.

    def _dispatch(self) -> SSEEvent | None:
        has_content = bool(self._data) or self._event is not None or self._status is not None
        event = (
            SSEEvent(
                event=self._event or "message",
                data="\n".join(self._data),
                id=self._id,
                status=self._status,
                comments=self._comments,
            )
            if has_content
            else None
        )
        self._event, self._data, self._status, self._comments, self._size = None, [], None, [], 0
        return event


def _line_end(buffer: str) -> tuple[int, int] | None:
    """Position and width of the first line break (CRLF, LF or a lone CR); a CR at the very end waits for more."""
    lf = buffer.find("\n")
    cr = buffer.find("\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, 1
    if cr + 1 < len(buffer):
        return (cr, 2) if buffer[cr + 1] == "\n" else (cr, 1)
    return None
