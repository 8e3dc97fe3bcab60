"""Where the client's settings come from: its arguments, then our environment variables, then the ``dashscope``
SDK's own settings, then files.

**The host** (first match wins):

1. ``base_url=``;
2. ``DASHSCOPE_BASE_URL``;
3. ``region=`` (with ``workspace=`` or ``DASHSCOPE_WORKSPACE_ID``, see below);
4. the SDK's ``DASHSCOPE_HTTP_BASE_URL`` (native, ends in ``/api/v1``) or ``DASHSCOPE_COMPATIBLE_BASE_URL`` (ends in
   ``/compatible-mode/v1``), the one of the client's protocol first; a ``{workspace_id}`` in them is filled in;
5. the SDK's ``DASHSCOPE_API_REGION``;
6. Singapore (``intl``), our default (the SDK's is Beijing).

**Regions** (:data:`REGIONS`): ``cn-beijing`` (alias ``cn``), ``ap-southeast-1`` (Singapore, alias ``intl``),
``us-east-1`` (Virginia, alias ``us``), ``cn-hongkong``, ``eu-central-1`` (Frankfurt) and ``ap-northeast-1``
(Tokyo). Beijing, Singapore and Virginia have shared hosts (``dashscope[-intl|-us].aliyuncs.com``). Given a
workspace id, every region but Beijing is reached at the workspace's own host
``https://{WorkspaceId}.{region}.maas.aliyuncs.com``, as the ``dashscope`` SDK 2.x does (the vendor recommends it
over ``dashscope-intl`` for Singapore); Hong Kong, Frankfurt and Tokyo have no other host, so they need a workspace
id. To keep a shared host with a workspace, pass it as ``base_url=``.

**The key**: ``api_key=``, else ``DASHSCOPE_API_KEY``, else the file named by the SDK's
``DASHSCOPE_API_KEY_FILE_PATH``, else ``dashscope_api_key`` in ``~/.alibabacloud/credentials``, else the SDK's
``~/.dashscope/api_key``. **The workspace**: ``workspace=``, else ``DASHSCOPE_WORKSPACE_ID``.

Example::

    from qwen_ocr.config import normalize_base_url, resolve_endpoint
    normalize_base_url("http://127.0.0.1:8000/api/v1/")      # 'http://127.0.0.1:8000'
    resolve_endpoint(region="intl", workspace="ws-abc123").base_url
    # 'https://ws-abc123.ap-southeast-1.maas.aliyuncs.com'
"""

from __future__ import annotations

import configparser
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from .errors import InvalidArgumentError, MalformedAPIKeyError, MissingAPIKeyError

__all__ = [
    "API_KEY_ENV",
    "API_KEY_FILE_ENV",
    "API_REGION_ENV",
    "BASE_URL_ENV",
    "COMPATIBLE_BASE_URL_ENV",
    "CREDENTIALS_PATH",
    "DEFAULT_REGION",
    "HTTP_BASE_URL_ENV",
    "REGIONS",
    "REGION_HOSTS",
    "SDK_KEY_PATH",
    "SHARED_HOSTS",
    "WORKSPACE_ENV",
    "Endpoint",
    "Region",
    "canonical_region",
    "check_api_key",
    "check_header",
    "describe_region",
    "missing_key_error",
    "normalize_base_url",
    "region_of_host",
    "resolve_api_key",
    "resolve_base_url",
    "resolve_endpoint",
    "resolve_workspace",
]

logger = logging.getLogger("qwen_ocr")

Region = Literal[
    "cn-beijing",
    "ap-southeast-1",
    "us-east-1",
    "cn-hongkong",
    "eu-central-1",
    "ap-northeast-1",
    "intl",
    "cn",
    "us",
]
"""The names ``region=`` accepts (other aliases such as ``"singapore"`` work too)."""

API_KEY_ENV = "DASHSCOPE_API_KEY"
BASE_URL_ENV = "DASHSCOPE_BASE_URL"
API_KEY_FILE_ENV = "DASHSCOPE_API_KEY_FILE_PATH"
"""The ``dashscope`` SDK's: the path of a file holding the key."""
API_REGION_ENV = "DASHSCOPE_API_REGION"
"""The ``dashscope`` SDK's: the region (``cn-beijing``, ``ap-southeast-1``, ...)."""
WORKSPACE_ENV = "DASHSCOPE_WORKSPACE_ID"
"""The ``dashscope`` SDK's: the workspace id."""
HTTP_BASE_URL_ENV = "DASHSCOPE_HTTP_BASE_URL"
"""The ``dashscope`` SDK's: the native API root, ``https://host/api/v1``."""
COMPATIBLE_BASE_URL_ENV = "DASHSCOPE_COMPATIBLE_BASE_URL"
"""The ``dashscope`` SDK's: the OpenAI-compatible root, ``https://host/compatible-mode/v1``."""
CREDENTIALS_PATH = Path("~/.alibabacloud/credentials")
SDK_KEY_PATH = Path("~/.dashscope/api_key")
"""Where the ``dashscope`` SDK's ``save_api_key`` puts the key."""

REGIONS: dict[str, str] = {
    "cn-beijing": "Beijing",
    "ap-southeast-1": "Singapore",
    "us-east-1": "Virginia",
    "cn-hongkong": "Hong Kong",
    "eu-central-1": "Frankfurt",
    "ap-northeast-1": "Tokyo",
}
"""The regions the ``dashscope`` SDK 2.x knows, by id, with their place names."""
DEFAULT_REGION = "ap-southeast-1"
"""Singapore, as ``region="intl"`` has always meant here (the SDK's own default is ``cn-beijing``)."""

SHARED_HOSTS: dict[str, str] = {
    "cn-beijing": "https://dashscope.aliyuncs.com",
    "ap-southeast-1": "https://dashscope-intl.aliyuncs.com",
    "us-east-1": "https://dashscope-us.aliyuncs.com",
}
"""The regions' shared hosts (no workspace id in the name)."""
REGION_HOSTS: dict[str, str] = {
    "intl": SHARED_HOSTS["ap-southeast-1"],
    "cn": SHARED_HOSTS["cn-beijing"],
    "us": SHARED_HOSTS["us-east-1"],
    **SHARED_HOSTS,
}
"""The shared hosts by region, under the short names too (``intl``, ``cn``, ``us``)."""

_REGION_ALIASES = {
    "intl": "ap-southeast-1",
    "international": "ap-southeast-1",
    "singapore": "ap-southeast-1",
    "cn": "cn-beijing",
    "china": "cn-beijing",
    "beijing": "cn-beijing",
    "us": "us-east-1",
    "virginia": "us-east-1",
    "hongkong": "cn-hongkong",
    "hong-kong": "cn-hongkong",
    "frankfurt": "eu-central-1",
    "germany": "eu-central-1",
    "tokyo": "ap-northeast-1",
    "japan": "ap-northeast-1",
}
_SHORT_NAMES = {"ap-southeast-1": "intl", "cn-beijing": "cn", "us-east-1": "us"}
_API_SUFFIXES = ("/compatible-mode/v1", "/api/v1")
_MAAS_SUFFIX = ".maas.aliyuncs.com"
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_KEY_FILE_LIMIT = 64 * 1024


def canonical_region(region: str, *, setting: str = "region") -> str:
    """The region id for a name or alias: ``"intl"`` -> ``"ap-southeast-1"``, ``"cn"`` -> ``"cn-beijing"``.

    >>> canonical_region("intl"), canonical_region("CN"), canonical_region("eu-central-1")
    ('ap-southeast-1', 'cn-beijing', 'eu-central-1')
    """
    key = region.strip().lower().replace("_", "-") if isinstance(region, str) else ""
    key = _REGION_ALIASES.get(key, key)
    if key not in REGIONS:
        raise InvalidArgumentError(
            f"unknown {setting} {region!r}; use 'intl' (Singapore, ap-southeast-1), 'cn' (Beijing, cn-beijing), "
            "'us' (Virginia, us-east-1), 'cn-hongkong', 'eu-central-1' or 'ap-northeast-1', or base_url=.",
            code="InvalidRegion",
        )
    return key


def describe_region(region: str | None) -> str:
    """A region for people: ``"Singapore (ap-southeast-1, region='intl')"``; ``"an unknown region"`` for ``None``."""
    if region is None:
        return "an unknown region"
    name = REGIONS.get(region, region)
    short = _SHORT_NAMES.get(region)
    return f"{name} ({region}, region='{short}')" if short else f"{name} ({region})"


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


def region_of_host(base_url: str) -> str | None:
    """The region a DashScope host serves (a shared host or a workspace host), ``None`` for any other host.

    >>> region_of_host("https://dashscope-intl.aliyuncs.com"), region_of_host("https://ws-1.eu-central-1.maas.aliyuncs.com")
    ('ap-southeast-1', 'eu-central-1')
    >>> region_of_host("http://127.0.0.1:8000") is None
    True
    """
    try:
        host = (urlsplit(base_url.strip()).hostname or "").lower()
    except ValueError:
        return None
    for region, shared in SHARED_HOSTS.items():
        if host == urlsplit(shared).hostname:
            return region
    if host.endswith(_MAAS_SUFFIX):
        labels = host[: -len(_MAAS_SUFFIX)].split(".")
        if len(labels) == 2 and labels[1] in REGIONS and _HOST_LABEL.match(labels[0]):
            return labels[1]
    return None


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, and why.

    Attributes:
        base_url: the host root (``https://dashscope-intl.aliyuncs.com``, ``http://127.0.0.1:8000``).
        region: the region id the host serves (a DashScope host), or the ``region=`` given for a host of your own;
            ``None`` when not known.
        workspace: the workspace id (``workspace=`` or ``DASHSCOPE_WORKSPACE_ID``), or ``None``.
        source: what chose the host: ``"base_url"``, an environment variable's name, ``"region"`` or ``"default"``.
        official: whether the host is one of DashScope's own.
        raw: the URL as given, when one was (it tells a self-hosted ``http://host/v1`` server apart); ``None``
            when the host was built from a region.
    """

    base_url: str
    region: str | None
    workspace: str | None = None
    source: str = "default"
    official: bool = True
    raw: str | None = None


def resolve_workspace(workspace: str | None) -> str | None:
    """``workspace``, else ``DASHSCOPE_WORKSPACE_ID``, else ``None`` (blank values count as unset)."""
    if isinstance(workspace, str) and workspace.strip():
        return workspace.strip()
    return _env(WORKSPACE_ENV)


def resolve_endpoint(
    base_url: str | None = None,
    region: str | None = None,
    workspace: str | None = None,
    *,
    protocol: str = "dashscope",
) -> Endpoint:
    """The host requests go to, from the arguments, then the environment (the order is in the module doc).

    Raises:
        InvalidArgumentError: an unknown region, a URL that is not http(s), or a region with no shared host (Hong
            Kong, Frankfurt, Tokyo) without a workspace id.

    >>> resolve_endpoint(region="cn").base_url
    'https://dashscope.aliyuncs.com'
    """
    ws = resolve_workspace(workspace)
    explicit = canonical_region(region) if isinstance(region, str) and region.strip() else None
    if base_url:
        return _from_url(base_url, "base_url", explicit, ws)
    env = _env(BASE_URL_ENV)
    if env:
        return _from_url(env, BASE_URL_ENV, explicit, ws)
    if explicit is not None:
        return _from_region(explicit, ws, "region")
    names = (
        (COMPATIBLE_BASE_URL_ENV, HTTP_BASE_URL_ENV)
        if protocol == "openai"
        else (HTTP_BASE_URL_ENV, COMPATIBLE_BASE_URL_ENV)
    )
    for name in names:
        env = _env(name)
        if env:
            return _from_url(env, name, None, ws)
    env = _env(API_REGION_ENV)
    if env:
        return _from_region(canonical_region(env, setting=API_REGION_ENV), ws, API_REGION_ENV)
    return _from_region(DEFAULT_REGION, ws, "default")


def resolve_base_url(
    base_url: str | None,
    region: str | None,
    workspace: str | None = None,
    *,
    protocol: str = "dashscope",
) -> str:
    """The host root of :func:`resolve_endpoint`."""
    return resolve_endpoint(base_url, region, workspace, protocol=protocol).base_url


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _from_url(url: str, source: str, region: str | None, workspace: str | None) -> Endpoint:
    if "{workspace_id}" in url:  # the SDK's placeholder, as in https://{workspace_id}.ap-southeast-1.maas...
        if not workspace:
            raise InvalidArgumentError(
                f"the URL of {source} contains '{{workspace_id}}' but no workspace id is set: pass workspace= or "
                f"set {WORKSPACE_ENV}.",
                code="WorkspaceRequired",
            )
        url = url.replace("{workspace_id}", workspace)
    root = normalize_base_url(url)
    served = region_of_host(root)
    raw = None if url.strip().rstrip("/").lower().endswith("/api/v1") else url
    return Endpoint(root, served or region, workspace, source, served is not None, raw)


def _from_region(region: str, workspace: str | None, source: str) -> Endpoint:
    shared = SHARED_HOSTS.get(region)
    if workspace and region != "cn-beijing":
        if _HOST_LABEL.match(workspace):
            return Endpoint(f"https://{workspace.lower()}.{region}{_MAAS_SUFFIX}", region, workspace, source)
        if shared is not None:
            logger.warning(
                "qwen_ocr: workspace %r cannot be part of a host name; using the shared host %s of %s instead of "
                "the workspace's own host.",
                workspace,
                shared,
                describe_region(region),
            )
            return Endpoint(shared, region, workspace, source)
        raise InvalidArgumentError(
            f"workspace {workspace!r} cannot be part of a host name (letters, digits and '-' only), and "
            f"{describe_region(region)} is served only at https://{{WorkspaceId}}.{region}{_MAAS_SUFFIX}. Check "
            "the workspace id in the Model Studio console, or pass base_url=.",
            code="InvalidWorkspace",
        )
    if shared is None:
        raise InvalidArgumentError(
            f"{describe_region(region)} is served only at https://{{WorkspaceId}}.{region}{_MAAS_SUFFIX}: pass "
            f"workspace='...' (or set {WORKSPACE_ENV}) with your workspace id, or pass base_url=.",
            code="WorkspaceRequired",
        )
    return Endpoint(shared, region, workspace, source)


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr | None:
    """``api_key``, else ``DASHSCOPE_API_KEY``, else the file at ``DASHSCOPE_API_KEY_FILE_PATH``, else
    ``dashscope_api_key`` in ``~/.alibabacloud/credentials``, else ``~/.dashscope/api_key``.

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
    env = _env(API_KEY_ENV)
    if env:
        return check_api_key(SecretStr(env), f"the {API_KEY_ENV} environment variable")
    path = _env(API_KEY_FILE_ENV)
    if path:
        found = _key_from_file(Path(path).expanduser())
        if found is not None:
            return check_api_key(found, f"the file named by {API_KEY_FILE_ENV}")
        logger.warning("qwen_ocr: %s names %r, which holds no readable key; looking further.", API_KEY_FILE_ENV, path)
    found = _key_from_credentials_file()
    if found is not None:
        return check_api_key(found, str(CREDENTIALS_PATH))
    found = _key_from_file(SDK_KEY_PATH.expanduser())
    return check_api_key(found, str(SDK_KEY_PATH)) if found is not None else None


def _key_from_file(path: Path) -> SecretStr | None:
    """A key file as the SDK writes it: the key alone (the first non-blank line is taken)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(_KEY_FILE_LIMIT)
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    for line in text.splitlines():
        value = line.strip().strip('"').strip("'")
        if value:
            return SecretStr(value)
    return None


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
        "No DashScope API key found. Pass api_key=..., or set the DASHSCOPE_API_KEY environment variable, or "
        "DASHSCOPE_API_KEY_FILE_PATH to a file holding the key, or add 'dashscope_api_key = sk-...' under "
        "[default] in ~/.alibabacloud/credentials, or save it to ~/.dashscope/api_key (as the dashscope SDK's "
        "save_api_key does). Keys are created in the Model Studio console and are bound to a region "
        "(region='intl', 'cn', 'us', ... or DASHSCOPE_API_REGION). To read offline without a key, pass "
        "provider='local' (the local engine: pip install 'qwen-ocr[local]'); it is never chosen by itself."
    )
