"""DashScope's Batch File API, one call per method: files (upload, list, download, delete) and batches (create,
get, cancel, list), under ``/compatible-mode/v1`` of the client's host.

It speaks with the client's key, host, HTTP connection pool, timeouts and retry policy: a 429 ("Batch requests are
being throttled due to system capacity limits"), a 5xx or a dropped connection is retried as the client retries a
reading. The two calls that make something (an upload, a batch) are never simply sent again: before another
attempt they look for what the failed one may have made (the file by its name, the batch by its ``ds_name`` tag),
so that a reply lost on the way back never uploads or creates twice.

Downloads are streamed to disk, never held whole in memory. The objects are pydantic models that keep any field
the service adds.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.batch import BatchAPI

    api = BatchAPI(QwenOCR(region="cn"))
    file = api.upload("lines.jsonl", filename="june-r1-p0.jsonl")
    batch = api.create(file.id, metadata={"ds_name": "june r1 p0"})
    api.get(batch.id).status                   # 'validating', 'in_progress', ... 'completed'
    api.download(api.get(batch.id).output_file_id, "out.jsonl")
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._base import safe_cause, transport_error
from .._files import replacing
from ..errors import QwenOCRError, error_from_response
from ..protocols.base import HTTPRequest
from ..retry import retry_delay

if TYPE_CHECKING:  # httpx comes with the client's connection pool, not with this module (as for the client classes)
    import httpx

    from .._client import QwenOCR

__all__ = [
    "API_PREFIX",
    "CHAT_ENDPOINT",
    "TERMINAL_STATUSES",
    "TEST_ENDPOINT",
    "BatchAPI",
    "BatchList",
    "BatchObject",
    "BatchProblem",
    "BatchStatusName",
    "FileObject",
    "RequestCounts",
]

logger = logging.getLogger("qwen_ocr")

T = TypeVar("T")

API_PREFIX = "/compatible-mode/v1"
"""Where the Files and Batches endpoints are, below the host."""
CHAT_ENDPOINT = "/v1/chat/completions"
"""The endpoint (and every line's ``url``) of an OCR batch."""
TEST_ENDPOINT = "/v1/chat/ds-test"
"""The endpoint and line ``url`` of the free ``batch-test-model``."""

BatchStatusName = Literal[
    "validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"
]
"""The statuses the service documents (a status it adds later is kept as a plain string)."""
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
"""Statuses after which nothing changes any more."""

_PAGE = 100
"""Items per page when listing."""


class FileObject(BaseModel):
    """A file of the Files API: ``{"id": "file-batch-...", "object": "file", "bytes", "filename", ...}``."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "file"
    bytes: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    created_at: int | None = None


class RequestCounts(BaseModel):
    """A batch's ``request_counts``: lines in all, finished well, failed (a cancelled batch counts its unfinished
    lines as failed)."""

    model_config = ConfigDict(extra="allow")

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchProblem(BaseModel):
    """One problem of a batch refused at validation: ``{"code", "message", "param", "line"}``."""

    model_config = ConfigDict(extra="allow")

    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class _Problems(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: str | None = None
    data: list[BatchProblem] | None = None


class BatchObject(BaseModel):
    """A batch, as ``GET /batches/{id}`` describes it (fields the service adds are kept)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "batch"
    endpoint: str | None = None
    errors: _Problems | None = None
    input_file_id: str | None = None
    completion_window: str | None = None
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    metadata: dict[str, Any] | None = None

    @field_validator("request_counts", mode="before")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        return {} if value is None else value  # a null count is no count

    @property
    def terminal(self) -> bool:
        """Whether the batch is over (completed, failed, expired or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @property
    def problems(self) -> list[BatchProblem]:
        """What validation found wrong (empty unless the batch failed validation)."""
        return list(self.errors.data or []) if self.errors is not None else []


class BatchList(BaseModel):
    """A page of ``GET /batches``; an empty page comes back as ``"data": null``, read as ``[]``."""

    model_config = ConfigDict(extra="allow")

    data: list[BatchObject] | None = None
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @property
    def batches(self) -> list[BatchObject]:
        """The batches of this page."""
        return list(self.data or [])


class _FileList(BaseModel):
    model_config = ConfigDict(extra="allow")

    data: list[FileObject] | None = None
    has_more: bool = False


class BatchAPI:
    """The Files and Batches endpoints, through a :class:`~qwen_ocr.QwenOCR` client's settings and connections.

    Args:
        client: the client whose key, host, ``http_client``, timeouts and retry policy are used.
        sleep: how to wait between two attempts (tests pass a function that does not sleep).
    """

    def __init__(self, client: QwenOCR, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.base = client.base_url + API_PREFIX
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"BatchAPI(base={self.base!r})"

    # -- files ------------------------------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], *, filename: str) -> FileObject:
        """Upload a JSONL input file (``purpose=batch``), streamed from disk.

        A failed attempt is followed by a look for a file named ``filename`` (the attempt may have reached the
        service) before the next one, so the file is stored once.
        """

        def send() -> httpx.Response:
            with open(path, "rb") as handle:
                return self._send(
                    "POST", "/files", files={"file": (filename, handle, "application/jsonl")}, data={"purpose": "batch"}
                )

        return self._making(send, FileObject, lambda: self.find_file(filename))

    def files(self) -> Iterator[FileObject]:
        """Every file of the account, page after page."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _PAGE}
            if after:
                params["after"] = after
            page = self._call("GET", "/files", _FileList, params=params)
            items = list(page.data or [])
            yield from items
            if not page.has_more or not items:
                return
            after = items[-1].id

    def find_file(self, filename: str) -> FileObject | None:
        """The most recent file named ``filename``, or ``None``."""
        found = [f for f in self.files() if f.filename == filename]
        return max(found, key=lambda f: f.created_at or 0) if found else None

    def download(self, file_id: str, destination: str | os.PathLike[str]) -> int:
        """Stream an output or error file to ``destination`` (written to a temporary file, then renamed into place);
        the bytes written. Retried as a whole on a transient failure."""
        target = Path(destination)
        number = 0
        while True:
            number += 1
            try:
                return self._download_once(file_id, target)
            except QwenOCRError as exc:
                self._pause(number, exc)

    def delete(self, file_id: str) -> bool:
        """Delete a file; whether the service says it was deleted."""
        answer = self._json(self._retrying(lambda: self._send("DELETE", f"/files/{file_id}")))
        return bool(answer.get("deleted"))

    # -- batches ----------------------------------------------------------------------------------------------------

    def create(
        self,
        input_file_id: str,
        *,
        endpoint: str = CHAT_ENDPOINT,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
    ) -> BatchObject:
        """Create a batch of an uploaded file.

        A failed attempt is followed by a look for a batch of the same input file whose ``metadata.ds_name`` is
        this one's (the attempt may have reached the service) before the next one, so the batch is created once.
        """
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        tag = (metadata or {}).get("ds_name")

        def find() -> BatchObject | None:
            return self.find_batch(tag, input_file_id=input_file_id) if tag else None

        return self._making(lambda: self._send("POST", "/batches", json=body), BatchObject, find)

    def get(self, batch_id: str) -> BatchObject:
        """The batch as it is now."""
        return self._call("GET", f"/batches/{batch_id}", BatchObject)

    def cancel(self, batch_id: str) -> BatchObject:
        """Ask the service to cancel a batch: it answers ``cancelling``, then the batch becomes ``cancelled``."""
        return self._call("POST", f"/batches/{batch_id}/cancel", BatchObject)

    def list(self, *, after: str | None = None, limit: int = 20, ds_name: str | None = None) -> BatchList:
        """One page of batches, newest first (``after``: the last id of the previous page)."""
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        if ds_name:
            params["ds_name"] = ds_name
        return self._call("GET", "/batches", BatchList, params=params)

    def batches(self, *, ds_name: str | None = None) -> Iterator[BatchObject]:
        """Every batch (whose ``ds_name`` contains ``ds_name``, when given), page after page."""
        after: str | None = None
        while True:
            page = self.list(after=after, limit=_PAGE, ds_name=ds_name)
            items = page.batches
            yield from items
            if not page.has_more or not items:
                return
            after = page.last_id or items[-1].id

    def find_batch(self, tag: str, *, input_file_id: str | None = None) -> BatchObject | None:
        """The batch whose ``metadata.ds_name`` is exactly ``tag`` (and of ``input_file_id``, when given)."""
        for batch in self.batches(ds_name=tag):
            if (batch.metadata or {}).get("ds_name") != tag:
                continue
            if input_file_id is None or batch.input_file_id == input_file_id:
                return batch
        return None

    # -- the wire ---------------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = self.client._headers(HTTPRequest("GET", API_PREFIX, {}, {}))  # the key, user agent, defaults
        if self.client.workspace:
            headers["X-DashScope-WorkSpace"] = self.client.workspace
        return headers

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt: the reply (read whole), or its typed error."""
        import httpx

        try:
            response = self.client._http.request(method, self.base + path, headers=self._headers(), **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from safe_cause(exc)
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.content, response.headers, region=self.client.region
            )
        return response

    def _pause(self, number: int, error: QwenOCRError) -> None:
        """Wait before attempt ``number + 1``, or raise ``error`` when it is not retried."""
        delay = retry_delay(self.client.retry, number, error)
        if delay is None:
            raise error
        logger.info("qwen_ocr: batch API attempt %d failed (%s); retrying in %.2fs", number, error, delay)
        self._sleep(delay)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        number = 0
        while True:
            number += 1
            try:
                return attempt()
            except QwenOCRError as exc:
                self._pause(number, exc)

    def _making(self, send: Callable[[], httpx.Response], model: type[_M], find: Callable[[], _M | None]) -> _M:
        """A call that makes something: retried, but after a failed attempt what it may have made is looked for
        first."""
        number = 0
        while True:
            number += 1
            if number > 1:
                found = find()
                if found is not None:
                    return found
            try:
                return model.model_validate(self._json(send()))
            except QwenOCRError as exc:
                self._pause(number, exc)

    def _call(self, method: str, path: str, model: type[_M], **kwargs: Any) -> _M:
        return self._retrying(lambda: model.model_validate(self._json(self._send(method, path, **kwargs))))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        from ..protocols.base import decode_json

        data = decode_json(response.content, status=response.status_code)
        if not isinstance(data, dict):
            from ..errors import ResponseDecodeError

            raise ResponseDecodeError("the Batch API's reply is JSON but not an object.", status_code=200)
        return data

    def _download_once(self, file_id: str, target: Path) -> int:
        import httpx

        written = 0
        with replacing(target, suffix=".jsonl") as handle:
            try:
                with self.client._http.stream(
                    "GET", f"{self.base}/files/{file_id}/content", headers=self._headers()
                ) as response:
                    if response.status_code >= 400:
                        raise error_from_response(
                            response.status_code, response.read(), response.headers, region=self.client.region
                        )
                    for piece in response.iter_bytes():
                        handle.write(piece)
                        written += len(piece)
            except httpx.HTTPError as exc:
                raise transport_error(exc) from safe_cause(exc)
        return written


_M = TypeVar("_M", bound=BaseModel)
