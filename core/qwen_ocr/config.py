"""Where the client's settings come from: arguments, then environment, then ``~/.alibabacloud/credentials``.

Example::

    from qwen_ocr.config import resolve_api_key, normalize_base_url
    normalize_base_url("http://127.0.0.1:8000/api/v1/")      # 'http://127.0.0.1:8000'
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from .errors import InvalidArgumentError, MalformedAPIKeyError, MissingAPIKeyError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CREDENTIALS_PATH",
    "REGION_HOSTS",
    "Region",
    "check_api_key",
    "check_header",
    "missing_key_error",
    "normalize_base_url",
    "resolve_api_key",
    "resolve_base_url",
]

Region = Literal["intl", "cn", "us"]

API_KEY_ENV = "DASHSCOPE_API_KEY"
BASE_URL_ENV = "DASHSCOPE_BASE_URL"
CREDENTIALS_PATH = Path("~/.alibabacloud/credentials")

REGION_HOSTS: dict[str, str] = {
    "intl": "https://dashscope-intl.aliyuncs.com",
    "cn": "https://dashscope.aliyuncs.com",
    "us": "https://dashscope-us.aliyuncs.com",
}
_REGION_ALIASES = {
    "singapore": "intl",
    "international": "intl",
    "ap-southeast-1": "intl",
    "beijing": "cn",
    "china": "cn",
    "cn-beijing": "cn",
    "virginia": "us",
    "us-east-1": "us",
}
_API_SUFFIXES = ("/compatible-mode/v1", "/api/v1")


def normalize_base_url(url: str) -> str:
    """Reduce a base URL to its host root; a trailing ``/api/v1`` or ``/compatible-mode/v1`` is accepted.

    >>> normalize_base_url("https://dashscope.aliyuncs.com/compatible-mode/v1/")
    'https://dashscope.aliyuncs.com'
    """
    cleaned = url.strip().rstrip("/")
    if not cleaned.lower().startswith(("http://", "https://")):
        raise InvalidArgumentError(
            f"base_url must start with http:// or https://, got {url!r} (e.g. 'http://127.0.0.1:8000').",
            code="InvalidBaseURL",
        )
    lowered = cleaned.lower()
    for suffix in _API_SUFFIXES:
        if lowered.endswith(suffix):
            cleaned = cleaned[: -len(suffix)]
            break
    else:
        if lowered.endswith("/v1"):  # an OpenAI-style root of a self-hosted server: http://host:8000/v1
            cleaned = cleaned[: -len("/v1")]
    return cleaned.rstrip("/")


def resolve_base_url(base_url: str | None, region: str | None) -> str:
    """``base_url``, else ``DASHSCOPE_BASE_URL``, else the host of ``region`` (default ``intl``)."""
    if base_url:
        return normalize_base_url(base_url)
    env = os.environ.get(BASE_URL_ENV, "").strip()
    if env:
        return normalize_base_url(env)
    key = (region or "intl").strip().lower()
    key = _REGION_ALIASES.get(key, key)
    if key not in REGION_HOSTS:
        raise InvalidArgumentError(
            f"unknown region {region!r}; use 'intl' (Singapore), 'cn' (Beijing) or 'us' (Virginia), or base_url=.",
            code="InvalidRegion",
        )
    return REGION_HOSTS[key]


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr | None:
    """``api_key``, else ``DASHSCOPE_API_KEY``, else ``dashscope_api_key`` in ``~/.alibabacloud/credentials``.

    Spaces and line breaks around the key are dropped; a key with any inside, or with another control character or
    a non-ASCII character, raises :class:`~qwen_ocr.MalformedAPIKeyError` (which never quotes the key).
    """
    if isinstance(api_key, SecretStr):
        value = api_key.get_secret_value().strip()
        if not value:
            return None
        return check_api_key(api_key if value == api_key.get_secret_value() else SecretStr(value), "api_key=")
    if api_key and api_key.strip():
        return check_api_key(SecretStr(api_key.strip()), "api_key=")
    env = os.environ.get(API_KEY_ENV, "").strip()
    if env:
        return check_api_key(SecretStr(env), f"the {API_KEY_ENV} environment variable")
    found = _key_from_credentials_file()
    return check_api_key(found, str(CREDENTIALS_PATH)) if found is not None else None


def check_api_key(key: SecretStr, source: str = "api_key=") -> SecretStr:
    """``key`` if it can be sent as a key (printable ASCII, no spaces), else :class:`~qwen_ocr.MalformedAPIKeyError`
    naming ``source`` and the kind of character at fault, never the key.

    >>> check_api_key(SecretStr("sk-0123abcd")).get_secret_value()
    'sk-0123abcd'
    >>> check_api_key(SecretStr("sk-01\\n23"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qwen_ocr.errors.MalformedAPIKeyError: the API key from api_key= contains a line break; ...
    """
    problem = _key_problem(key.get_secret_value())
    if problem is not None:
        raise MalformedAPIKeyError(
            f"the API key from {source} contains {problem}; a DashScope key is printable ASCII without spaces "
            "('sk-' and letters and digits). Check for a key file with a second line, a key pasted with a "
            "non-breaking or zero-width space, or two values joined together. (The key itself is not shown.)"
        )
    return key


def _key_problem(value: str) -> str | None:
    for char in value:
        if "!" <= char <= "~":
            continue
        if char in "\r\n\u2028\u2029\x85":
            return "a line break"
        if char in " \t":
            return "a space or tab"
        if ord(char) < 0x20 or char == "\x7f" or 0x80 <= ord(char) < 0xA0:
            return "a control character"
        return "a non-ASCII character"
    return None


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_header(name: str, value: str, *, setting: str = "default_headers", ascii_only: bool = True) -> None:
    """Refuse a header that cannot be sent (a name that is not an HTTP token; a value with a control character or,
    with ``ascii_only``, a non-ASCII character) with :class:`~qwen_ocr.InvalidArgumentError` naming the header,
    never its value.

    >>> check_header("X-Trace", "a b")
    >>> check_header("X-Token", "a\\nb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qwen_ocr.errors.InvalidArgumentError: default_headers: the value of header 'X-Token' contains a control ...
    """
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
        shown = name[:40] if isinstance(name, str) else type(name).__name__
        raise InvalidArgumentError(
            f"{setting}: {shown!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only).",
            code="InvalidHeader",
        )
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{setting}: the value of header {name!r} must be a string, not {type(value).__name__}.",
            code="InvalidHeader",
        )
    for char in value:
        if not (" " <= char <= "~" or char == "\t" or (not ascii_only and ord(char) >= 0x80)):
            kind = (
                "a non-ASCII character"
                if ord(char) > 0x7F and ord(char) not in range(0x80, 0xA0)
                else ("a control character (a line break, NUL, ...)")
            )
            raise InvalidArgumentError(
                f"{setting}: the value of header {name!r} contains {kind}; header values are printable ASCII. "
                "(The value is not shown: it may be a credential.)",
                code="InvalidHeader",
            )


def _key_from_credentials_file() -> SecretStr | None:
    path = CREDENTIALS_PATH.expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    profile = os.environ.get("ALIBABA_CLOUD_PROFILE", "default")
    sections = [profile] + [s for s in parser.sections() if s != profile]
    for section in sections:
        if parser.has_option(section, "dashscope_api_key"):
            value = parser.get(section, "dashscope_api_key").strip().strip('"').strip("'")
            if value:
                return SecretStr(value)
    return None


def missing_key_error() -> MissingAPIKeyError:
    """The error raised at the first call when no key is configured: it names every place a key can go."""
    return MissingAPIKeyError(
        "No DashScope API key found. Pass api_key=..., or set the DASHSCOPE_API_KEY environment variable, or add "
        "'dashscope_api_key = sk-...' under [default] in ~/.alibabacloud/credentials. Keys are created in the "
        "Model Studio console and are bound to a region (region='intl', 'cn' or 'us'). To try the library "
        "without a key, use provider='local'."
    )
