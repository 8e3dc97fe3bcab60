"""Every client setting, declared once: its name, type, default and meaning; and the options of one call.

:class:`ClientOptions` is the declaration. From it:

- :class:`~qwen_ocr.QwenOCR`, :class:`~qwen_ocr.AsyncQwenOCR` and ``from_client(other, **overrides)`` take exactly
  these names, with these defaults (the clients' help lists them, generated from here);
- :class:`qwen_ocr.settings.ClientSettings` inherits them as pydantic fields, and through it every integration
  built on :class:`~qwen_ocr.settings.ClientHolder` (``ImageReader``, ``QwenOCRTool``, ``QwenOCRReader``) accepts
  the same names, and builds its clients with all of them;
- ``from_client`` copies each setting from the client attribute of the same name;
- a name that is none of these raises :class:`~qwen_ocr.InvalidArgumentError` naming the closest valid one.

:class:`ClientOverrides` repeats the names and types as a ``TypedDict``, only so that ``**settings`` is typed for
editors and type checkers (a ``TypedDict`` cannot be derived from a model statically); ``tests/test_settings_model.py``
fails unless the two agree.

To add a setting: add a field to :class:`ClientOptions` (type, default, ``description``), add the same name and
type to :class:`ClientOverrides`, and read it in ``BaseClient.__init__`` into the client attribute of that name.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.options import ClientOptions

    options = ClientOptions(model="qwen-vl-ocr-latest", timeout=60, cache="~/.cache/qwen-ocr")
    client = QwenOCR(**options.overrides())     # only the settings given: the rest keep their defaults

>>> sorted(ClientOptions.model_fields)[:3]
['api_key', 'base_url', 'cache']
>>> ClientOptions().timeout
30.0
"""

from __future__ import annotations

import difflib
import os
import sys
import textwrap
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema
from typing_extensions import TypedDict

from .budget import Resolution
from .cache import OCRCache
from .errors import InvalidArgumentError
from .models import DEFAULT_MODEL
from .retry import RetryPolicy
from .tasks import Schema, Task

__all__ = [
    "CLIENT_SETTINGS",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "OCR_OPTIONS",
    "ClientOptions",
    "ClientOverrides",
    "OCROptions",
    "Provider",
    "WireProtocol",
    "check_names",
    "settings_help",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds each attempt may take as a whole (connect, send, the whole reply or stream); the default of the AI
gateway plugin's ``timeoutMillisecond``."""
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest reply read, decoded (32 MiB): a plain reply, or a whole stream. Larger raises
:class:`~qwen_ocr.ResponseTooLargeError` (never retried); an OCR reply is a few hundred KiB at most."""
DEFAULT_MAX_CONCURRENCY = 8
"""Requests one client keeps in flight at once."""

WireProtocol = Literal["dashscope", "openai"]
"""How requests are written: ``"dashscope"`` (the native protocol) or ``"openai"`` (OpenAI-compatible mode)."""
Provider = Literal["auto", "dashscope", "openai", "local"]
"""Who reads: the service (``"dashscope"``, ``"openai"``), the offline engine (``"local"``), or ``"auto"``."""

RateLimit: TypeAlias = "float | Literal['auto'] | None"
"""A pace: a number per minute, ``"auto"`` or ``None``."""
CacheSetting: TypeAlias = "str | os.PathLike[str] | OCRCache | None"
"""A cache: a directory, an :class:`~qwen_ocr.OCRCache`, or ``None``."""


def _httpx_timeout(value: Any) -> Any:
    """``value`` if it is an ``httpx.Timeout``, else a ``ValueError`` (for pydantic)."""
    if not is_httpx_timeout(value):
        raise ValueError("not an httpx.Timeout")
    return value


def is_httpx_timeout(value: object) -> bool:
    """Whether ``value`` is an ``httpx.Timeout``; httpx is not imported for the question (none can exist before)."""
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(value, httpx.Timeout)


if TYPE_CHECKING:
    from httpx import Timeout as HTTPXTimeout
else:

    class HTTPXTimeout:
        """An ``httpx.Timeout`` as a field type, checked with ``isinstance`` like an arbitrary type, but without
        importing httpx with this module: the client's import stays light (issue 17); httpx is imported when a
        client is built."""

        @classmethod
        def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
            return core_schema.no_info_plain_validator_function(_httpx_timeout)


class ClientOptions(BaseModel):
    """The settings of a Qwen-OCR client: the one declaration of their names, types, defaults and meanings.

    A frozen value; ``None`` means "from the environment" where the description says so, as for the clients.
    ``api_key`` is a ``SecretStr`` (hidden in ``repr``) and, like ``default_headers`` (which may hold
    credentials), never dumped.

    >>> options = ClientOptions(api_key="sk-secret", max_concurrency=4)
    >>> "sk-secret" in repr(options), "api_key" in options.model_dump()
    (False, False)
    >>> options.overrides()["max_concurrency"]
    4
    """

    model_config = ConfigDict(
        frozen=True, arbitrary_types_allowed=True, populate_by_name=True, hide_input_in_errors=True, defer_build=True
    )

    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="The DashScope key; else DASHSCOPE_API_KEY; else dashscope_api_key in "
        "~/.alibabacloud/credentials. A missing key is reported at the first call; one that cannot be a key (a "
        "space, a line break, a control or non-ASCII character) when the client is built, without quoting it.",
    )
    base_url: str | None = Field(
        default=None,
        description="A host root such as http://127.0.0.1:8000 (a trailing /api/v1 or /compatible-mode/v1 is "
        "accepted; http://host/v1 is a self-hosted OpenAI-compatible server); else DASHSCOPE_BASE_URL; else the "
        "region's host.",
    )
    region: str | None = Field(
        default=None,
        description="'intl' (Singapore, the default), 'cn' (Beijing), 'us' (Virginia), or a region id: cn-beijing, "
        "ap-southeast-1, us-east-1, cn-hongkong, eu-central-1, ap-northeast-1; else DASHSCOPE_API_REGION. Keys are "
        "region-bound.",
    )
    workspace: str | None = Field(
        default=None, description="A Model Studio workspace id, sent as X-DashScope-WorkSpace."
    )
    model: str = Field(default=DEFAULT_MODEL, description="The default model; each call may override it.")
    protocol: WireProtocol | None = Field(
        default=None,
        description="'dashscope' (the native protocol, with built-in tasks) or 'openai' (OpenAI-compatible mode); "
        "None: 'openai' when provider='openai', else 'dashscope'.",
    )
    provider: Provider = Field(
        default="auto",
        description="'dashscope' or 'openai' (the service), 'local' (the offline engine), or 'auto': the service "
        "when a key or a server of your own is configured, else the local engine when installed.",
    )
    chat_path: str | None = Field(
        default=None,
        description="The OpenAI-compatible path below base_url; None: DashScope's compatible mode, or "
        "/v1/chat/completions for a server given as http://host/v1.",
    )
    timeout: float | HTTPXTimeout | None = Field(
        default=DEFAULT_TIMEOUT,
        description="Seconds each attempt may take as a whole: connecting, sending, and receiving the whole reply, "
        "or the whole stream (the time your code spends between two chunks is not counted). A deadline, not a "
        "per-step limit: a server that drips its reply is cut off. A deadline hit raises APITimeoutError and is "
        "retried like any timeout (each attempt has its own deadline). It applies to an http_client you pass too. "
        "An httpx.Timeout sets per-step limits only, with no overall deadline; None: no limits.",
    )
    max_retries: int | None = Field(
        default=None, description="Retries of retryable failures (default: the retry policy's, 2)."
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, ge=1, description="Requests in flight at once from this client."
    )
    retry: RetryPolicy | None = Field(
        default=None,
        description="A full RetryPolicy (backoff, jitter, Retry-After cap); max_retries overrides its max_retries.",
    )
    data_inspection: bool = Field(
        default=False, description="Ask the service for content inspection (X-DashScope-DataInspection: enable)."
    )
    rpm: RateLimit = Field(
        default="auto",
        description="Requests per minute to stay under: a number, None (unpaced until a 429 teaches a pace), or "
        "'auto' (the model's documented limit on DashScope's own hosts, none elsewhere).",
    )
    tpm: RateLimit = Field(default="auto", description="Tokens per minute to stay under; as rpm.")
    cache: CacheSetting = Field(
        default=None,
        description="A directory (or an OCRCache) of readings on disk: a request already answered is not sent "
        "again. None: no cache.",
    )
    default_headers: Mapping[str, str] | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Extra headers for every request (printable ASCII values; checked when the client is built, "
        "and never quoted in an error or dumped, as they may hold credentials).",
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=1,
        description="The largest reply read, once decoded (a plain reply, or a whole stream); past it, reading "
        "stops and ResponseTooLargeError is raised (never retried).",
    )

    def __init__(self, **data: Any) -> None:
        check_names(data, _accepted(type(self)), what="setting")
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        """Unknown names are refused when validating a mapping too (``model_validate``), not silently dropped."""
        if isinstance(data, Mapping):
            check_names(data, _accepted(cls), what="setting")
        return data

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout_from_dict(cls, value: Any) -> Any:
        """An ``httpx.Timeout`` as dumped (its ``as_dict()``) becomes one again."""
        if not isinstance(value, Mapping):
            return value
        import httpx

        return httpx.Timeout(**value)

    @field_serializer("timeout", "cache", when_used="json")
    def _plain(self, value: Any) -> Any:
        """JSON has no ``httpx.Timeout`` or ``OCRCache``: their dict and directory stand for them."""
        if is_httpx_timeout(value):
            return value.as_dict()
        if isinstance(value, OCRCache):
            return str(value.directory)
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def overrides(self) -> dict[str, Any]:
        """The settings given explicitly, as keyword arguments for a client (``QwenOCR(**options.overrides())``)."""
        return {name: getattr(self, name) for name in CLIENT_SETTINGS if name in self.model_fields_set}


class ClientOverrides(TypedDict, total=False):
    """The settings as keyword arguments (``QwenOCR(**settings)``): the names and types of :class:`ClientOptions`
    (``api_key`` may be a plain ``str`` too), for editors and type checkers."""

    api_key: str | SecretStr | None
    base_url: str | None
    region: str | None
    workspace: str | None
    model: str
    protocol: WireProtocol | None
    provider: Provider
    chat_path: str | None
    timeout: float | HTTPXTimeout | None
    max_retries: int | None
    max_concurrency: int
    retry: RetryPolicy | None
    data_inspection: bool
    rpm: RateLimit
    tpm: RateLimit
    cache: CacheSetting
    default_headers: Mapping[str, str] | None
    max_response_bytes: int


CLIENT_SETTINGS: tuple[str, ...] = tuple(ClientOptions.model_fields)
"""The names of every client setting, in declaration order."""


class OCROptions(TypedDict, total=False):
    """The options of one reading: ``ocr()``, ``stream()`` and ``ocr_many()`` take exactly these keywords.

    Attributes:
        task: a built-in task (:class:`~qwen_ocr.Task` or its string); ``None`` reads plain text.
        schema: for ``key_information_extraction``: the fields to fill (dict, JSON string or pydantic model; at
            most 3 levels of nesting). Implies that task when ``task`` is not given.
        prompt: a custom instruction (the service ignores it when a task is set).
        model: overrides the client's model for this call.
        min_pixels: the least pixels the image is read at (the model's default otherwise).
        max_pixels: the most pixels the image is read at, sent as given (else the ``resolution`` level's budget).
        resolution: ``"standard"`` (default: 2,560 image tokens a page), ``"high"`` (the model's documented default,
            for small print) or ``"max"`` (the model's ceiling); see :mod:`qwen_ocr.budget`.
        enable_rotate: let the service straighten rotated images.
        max_tokens: the longest answer, in tokens.
        temperature: sampling temperature, within ``[0, 2)``.
    """

    task: Task | str | None
    schema: Schema | str | type | None
    prompt: str | None
    model: str | None
    min_pixels: int | None
    max_pixels: int | None
    resolution: Resolution | None
    enable_rotate: bool | None
    max_tokens: int | None
    temperature: float | None


OCR_OPTIONS: frozenset[str] = OCROptions.__optional_keys__
"""The names of the per-call options."""


def check_names(
    given: Iterable[str], valid: Collection[str], *, what: str, code: str = "UnknownSetting", where: str = ""
) -> None:
    """Refuse names that are not in ``valid``: an :class:`~qwen_ocr.InvalidArgumentError` naming each and the
    closest valid name.

    >>> check_names(["timeout"], CLIENT_SETTINGS, what="setting")
    >>> check_names(["tiemout"], CLIENT_SETTINGS, what="setting")
    Traceback (most recent call last):
    ...
    qwen_ocr.errors.InvalidArgumentError: unknown setting 'tiemout' (did you mean 'timeout'?). ...
    """
    unknown = [name for name in given if name not in valid]
    if not unknown:
        return
    named = []
    for name in unknown:
        shown = repr(name if len(name) <= 40 else name[:37] + "...")
        close = difflib.get_close_matches(name, list(valid), n=1)
        named.append(f"{shown} (did you mean {close[0]!r}?)" if close else shown)
    plural = "s" if len(unknown) > 1 else ""
    raise InvalidArgumentError(
        f"unknown {what}{plural} {', '.join(named)}. {where or 'Valid names'}: {', '.join(sorted(valid))}.",
        code=code,
    )


def settings_help() -> str:
    """The settings as a docstring section (name, meaning, default), for the clients' help."""
    lines = ["", "    Settings (keyword arguments, declared in :mod:`qwen_ocr.options`):", ""]
    for name, field in ClientOptions.model_fields.items():
        default = "" if field.default is None else f" Default: {field.default!r}."
        lines += textwrap.wrap(
            f"{name}: {field.description}{default}",
            116,
            initial_indent=" " * 8,
            subsequent_indent=" " * 12,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return "\n".join(lines) + "\n"


def _accepted(model: type[BaseModel]) -> set[str]:
    """The keyword names a model takes: its fields' names and their aliases."""
    names: set[Any] = set(model.model_fields)
    for field in model.model_fields.values():
        aliases: list[Any] = [field.alias, field.validation_alias]
        if isinstance(field.validation_alias, AliasChoices):
            aliases += field.validation_alias.choices
        names.update(alias for alias in aliases if isinstance(alias, str))
        names.update(alias.path[0] for alias in aliases if isinstance(alias, AliasPath) and alias.path)
    return {name for name in names if isinstance(name, str)}
