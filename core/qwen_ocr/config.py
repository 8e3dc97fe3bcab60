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

from .errors import InvalidArgumentError, MissingAPIKeyError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CREDENTIALS_PATH",
    "REGION_HOSTS",
    "Region",
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
    """``api_key``, else ``DASHSCOPE_API_KEY``, else ``dashscope_api_key`` in ``~/.alibabacloud/credentials``."""
    if isinstance(api_key, SecretStr):
        return api_key if api_key.get_secret_value().strip() else None
    if api_key and api_key.strip():
        return SecretStr(api_key.strip())
    env = os.environ.get(API_KEY_ENV, "").strip()
    if env:
        return SecretStr(env)
    return _key_from_credentials_file()


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
