"""What runs in the Ray workers: a client per worker actor, built from checked, picklable settings, reading with the
local engine (:func:`qwen_ocr.read_documents`) under the cluster's one rate limit.

:class:`WorkerSpec` is made on the driver: the options checked at once (a misspelt setting fails there, not in a
worker), the client settings resolved as the driver sees them (key, host, provider), the key kept in a
``SecretStr`` so that no repr of the spec, of Ray's task arguments or of a log line shows it.

Example::

    spec = WorkerSpec.build(task="table_parsing", rpm=600)
    ds.map_batches(QwenOCRMapper, fn_constructor_kwargs={"spec": spec}, compute=ray.data.ActorPoolStrategy(size=4))
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..engine import READ_OPTIONS, ReadOptions, check_option_names
from ..engine import read_documents as read_locally
from ..errors import InvalidArgumentError
from ..options import CLIENT_SETTINGS
from ..sources import SourceItem, content_key
from ._limiter import SharedPacer, create_limiter
from ._rows import COLUMNS, page_row, rows_table

if TYPE_CHECKING:
    import pyarrow as pa

    from .._client import QwenOCR
    from ..reading import PageResult
    from ._plan import Unit

__all__ = ["QwenOCRMapper", "UnitReader", "WorkerSpec"]

_NOT_FOR_RAY = ("on_error", "show_progress", "probe_first")
"""Reading options a Ray reading sets itself: every page's error is in its row; progress is Ray's."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker needs to read: the client settings (resolved on the driver), the key, the reading options
    and the account's limits. Picklable; its repr shows neither the key nor the headers.

    Attributes:
        settings: the client settings (every :class:`~qwen_ocr.options.ClientOptions` name but the key).
        api_key: the key the driver resolved (argument, environment or credentials file), or ``None``: each
            worker then resolves its own (``DASHSCOPE_API_KEY`` on its node).
        options: the reading options, checked.
        rpm: the account's requests per minute paced to (``None``: learned from 429s; no pacing at all for the
            local provider, see :attr:`paced`).
        tpm: its tokens per minute (``None``: none).
        paced: whether requests go to a service (not the local engine), so through the shared limiter.
    """

    settings: Mapping[str, Any] = field(repr=False)
    api_key: SecretStr | None = field(repr=False)
    options: ReadOptions = field(repr=False)
    rpm: float | None = None
    tpm: float | None = None
    paced: bool = True

    def __repr__(self) -> str:
        model, where = self.settings.get("model"), self.settings.get("base_url")
        return f"WorkerSpec(model={model!r}, base_url={where!r}, rpm={self.rpm}, tpm={self.tpm}, api_key=<hidden>)"

    @classmethod
    def build(cls, **arguments: Any) -> WorkerSpec:
        """Check the arguments (reading options and client settings, in one set) and resolve the client settings
        as a client made here would (its key, host, provider and limits).

        Raises:
            InvalidArgumentError: an unknown name (the closest valid one is named), a wrong value.

        >>> WorkerSpec.build(api_key="sk-secret", base_url="http://127.0.0.1:9", rpm=120, task="table_parsing")
        WorkerSpec(model='qwen-vl-ocr', base_url='http://127.0.0.1:9', rpm=120, tpm=None, api_key=<hidden>)
        """
        from .._client import QwenOCR
        from ..pacing import Pacer

        check_option_names(arguments, (*READ_OPTIONS, *CLIENT_SETTINGS), "argument")
        for name in _NOT_FOR_RAY:
            if name in arguments:
                raise InvalidArgumentError(
                    f"{name}= does not apply to a Ray reading: every page gives a row, a failed page with its "
                    "error in the 'error' column (filter on it); progress is Ray Data's."
                )
        read = {k: v for k, v in arguments.items() if k in READ_OPTIONS}
        given = {k: v for k, v in arguments.items() if k in CLIENT_SETTINGS and (v is not None or k == "timeout")}
        options = ReadOptions.build(**read, on_error="mark")
        with QwenOCR(**given) as probe:
            settings: dict[str, Any] = {
                name: getattr(probe, name) for name in CLIENT_SETTINGS if name not in ("api_key", "max_retries")
            }
            cache = probe.cache
            settings["cache"] = None if cache is None else str(cache.directory)
            pacer = probe.pacer
            limits = (pacer.limit_rpm, pacer.limit_tpm) if isinstance(pacer, Pacer) else (None, None)
            return cls(
                settings=settings,
                api_key=probe.api_key,
                options=options,
                rpm=limits[0],
                tpm=limits[1],
                paced=pacer is not None,
            )

    def client(self, limiter: Any) -> QwenOCR:
        """A client with these settings whose requests are paced by ``limiter`` (a :class:`RateLimiter` handle;
        ``None``: :meth:`named_limiter`)."""
        from .._client import QwenOCR

        client = QwenOCR(**self.settings, api_key=self.api_key)
        if self.paced:
            client.pacer = SharedPacer(limiter or self.named_limiter(), reconnect=self.named_limiter)
        return client

    def limiter_name(self) -> str:
        """The name of the account's shared limiter in the ``qwen_ocr`` namespace: one per host, workspace and
        model (rate limits are per model and account), never derived from the key."""
        parts = (self.settings.get("base_url"), self.settings.get("workspace"), self.settings.get("model"))
        return "limiter-" + hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def named_limiter(self) -> Any:
        """The account's named limiter: the running one, else a new one (:func:`create_limiter`)."""
        return create_limiter(self.rpm, self.tpm, name=self.limiter_name())

    def read(self, client: QwenOCR, sources: Sequence[Any], pages: Any = None) -> list[PageResult]:
        """The pages of ``sources``, read by the local engine with these options (every page's error in its
        result; errors that would fail every page, such as a wrong key, are raised)."""
        arguments = {**self.options.arguments(), "on_error": "mark"}
        if pages is not None:
            arguments["pages"] = pages
        return list(read_locally(client, list(sources), **arguments))


class UnitReader:
    """The worker of :func:`qwen_ocr.ray.read_documents`: reads its tasks (slices of documents, groups of files)
    and returns their rows. Made by Ray Data, one per worker actor."""

    def __init__(self, spec: WorkerSpec, limiter: Any, in_memory: Sequence[Any] = ()) -> None:
        self._spec = spec
        self._client = spec.client(limiter)
        self._in_memory = list(in_memory)  # object refs of the in-memory files, fetched when a task needs one
        self._last: tuple[int, bytes] | None = None

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for blob in batch.column("unit").to_pylist():
            unit: Unit = pickle.loads(blob)  # noqa: S301 - written by the driver of this reading
            items = [self._item(part.item, part.data) for part in unit.parts]
            rows.extend(page_row(page) for page in self._spec.read(self._client, items, unit.pages))
        return rows_table(rows)

    def _item(self, item: SourceItem, data: int | None) -> SourceItem:
        if data is None:
            return item
        if self._last is None or self._last[0] != data:
            import ray

            self._last = (data, ray.get(self._in_memory[data]))
        return replace(item, data=self._last[1])


class QwenOCRMapper:
    """A callable class for ``Dataset.map_batches`` over a dataset that already holds its pages: each row's image
    (bytes, or a path or URL) is read, and gives one row per page with the columns of
    :func:`qwen_ocr.ray.read_documents`, followed by the input row's other columns.

    Args:
        column: the column holding the images: bytes (any image or PDF), or a path or http(s) URL.
        source_column: a column naming each image (its ``source``); default: the path or URL, or for bytes
            ``sha256:<first 32 hex digits>``.
        limiter: the :class:`~qwen_ocr.ray.RateLimiter` to share (:func:`qwen_ocr.ray.rate_limiter`); default: the
            account's named limiter, created by the first worker and found by the others.
        spec: a :class:`WorkerSpec` (instead of the options below).
        **options: reading options and client settings, as for :func:`qwen_ocr.ray.read_documents` (``task``,
            ``schema``, ``prompt``, ``pages``, ``text_layer``, ``rpm``, ``model``, ``cache``...), resolved in each
            worker (its own environment). :meth:`arguments` resolves them on the driver instead, and starts the
            limiter there: the usual way.

    Example::

        ds = ray.data.read_binary_files("s3://bucket/scans/")            # columns: bytes (and path)
        pages = ds.map_batches(
            QwenOCRMapper,
            fn_constructor_kwargs=QwenOCRMapper.arguments("bytes", task="text_recognition"),
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=4),
        )
    """

    def __init__(
        self,
        column: str = "image",
        *,
        source_column: str | None = None,
        limiter: Any = None,
        spec: WorkerSpec | None = None,
        **options: Any,
    ) -> None:
        if spec is not None and options:
            raise InvalidArgumentError("pass either spec= or the reading options and client settings, not both.")
        self._spec = spec if spec is not None else WorkerSpec.build(**options)
        self._column = column
        self._source_column = source_column
        self._client = self._spec.client(limiter)

    def __repr__(self) -> str:
        return f"QwenOCRMapper(column={self._column!r}, {self._spec!r})"

    @classmethod
    def arguments(
        cls, column: str = "image", *, source_column: str | None = None, limiter: Any = None, **options: Any
    ) -> dict[str, Any]:
        """The ``fn_constructor_kwargs`` for ``map_batches``, made on the driver: the options checked here, the
        settings resolved from the driver's environment (its key, ``DASHSCOPE_BASE_URL``...) rather than each
        worker's, and one limiter for the workers, started here (or ``limiter``) and living as long as the
        Dataset that holds it.

        Example::

            ds.map_batches(QwenOCRMapper, fn_constructor_kwargs=QwenOCRMapper.arguments(task="table_parsing"),
                           batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=4))
        """
        spec = WorkerSpec.build(**options)
        if limiter is None and spec.paced:
            limiter = create_limiter(spec.rpm, spec.tpm)
        return {"column": column, "source_column": source_column, "limiter": limiter, "spec": spec}

    def __call__(self, batch: Any) -> pa.Table:
        table = _as_table(batch)
        if self._column not in table.column_names:
            raise InvalidArgumentError(
                f"the batch has no column {self._column!r} (it has {', '.join(table.column_names)}); pass "
                "column= naming the column of images."
            )
        carried = table.drop_columns([self._column])
        clash = sorted(set(carried.column_names) & set(COLUMNS))
        if clash:
            raise InvalidArgumentError(
                f"the input column(s) {', '.join(map(repr, clash))} would be overwritten by the reading's columns of "
                "the same name; rename or drop them first (Dataset.rename_columns / drop_columns)."
            )
        names = table.column(self._source_column).to_pylist() if self._source_column else None
        sources = [
            _source(value, names[i] if names else None, i)
            for i, value in enumerate(table.column(self._column).to_pylist())
        ]
        pages = self._spec.read(self._client, sources)
        return rows_table([page_row(page) for page in pages], carried.take([page.file_index for page in pages]))


def _as_table(batch: Any) -> pa.Table:
    """A batch of any of Ray Data's formats as an Arrow table."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return pa.table({name: pa.array(list(values)) for name, values in batch.items()})
    return pa.Table.from_pandas(batch, preserve_index=False)  # a pandas DataFrame


def _source(value: Any, name: Any, position: int) -> Any:
    """A row's image as a source of the local engine: bytes named, a path or URL as it is."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return (str(name) if name is not None else content_key(data)), data
    if isinstance(value, str) and value.strip():
        return value
    from ..documents import DocumentReadError

    label = str(name) if name is not None else f"<row {position}>"
    return SourceItem(
        label=label,
        error=DocumentReadError(
            f"{label} has no image: its value is {type(value).__name__}, not bytes, a path or a URL.",
            code="NoImage",
        ),
    )
