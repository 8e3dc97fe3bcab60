"""Fetching an http(s) URL on the client's side without letting the URL reach into your network (SSRF).

``ocr()`` never fetches a URL: it passes http(s) and ``oss://`` URLs to the service, which fetches them itself, and
the local provider refuses them (it works offline). When this library must fetch a file itself (the LangChain
loader's URL sources), it goes through :func:`fetch` / :func:`afetch`:

- only ``http`` and ``https``, at every hop; redirects are followed here, one at a time (at most
  ``max_redirects``), and every hop is checked again;
- the host is resolved and refused when any of its addresses is loopback, private, link-local, shared (carrier-grade
  NAT), multicast, reserved, unspecified or otherwise not globally routable: IPv4 and IPv6, with the IPv4 address
  inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address checked too, however the address is written
  (``localhost``, ``2130706433``, ``0x7f.1``, ``127.1`` are resolved first, as the connection would resolve them);
  ``allow_private=True`` lifts this check for hosts you mean to reach (an intranet file server, a test server);
- the connection goes to the very address that was checked (the ``Host`` header and the TLS server name keep the
  host's name), so a DNS answer that changes between the check and the connection (DNS rebinding) cannot redirect
  it. Behind an HTTP proxy the proxy makes the connection, to that checked address;
- at most ``max_bytes`` are read (a larger ``Content-Length`` is refused before reading), each network step has
  ``timeout`` seconds and the whole download ``max_seconds``: connecting, the status line and headers (a server
  dripping them a byte at a time is cut off too), the body, and every redirect;
- nothing of ours is sent (no API key, no cookies); a user name and password in the URL go to that URL only, never
  to the host of a redirect.

Errors are typed: :class:`UnsafeURLError` (``UnsafeURL``: the address class and how to allow it;
``UnsupportedURL``: another scheme) and :class:`FetchError` (``DownloadFailed``, ``DownloadTooLarge``), both
:class:`~qwen_ocr.documents.DocumentReadError` (so ``except InvalidImageError`` covers "this input cannot be used").

Example::

    from qwen_ocr.fetch import fetch

    data = fetch("https://example.com/scan.pdf", max_bytes=20 * 2**20, timeout=30)
    fetch("http://169.254.169.254/latest/meta-data/")      # UnsafeURLError: a link-local address
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._transport import Deadline, safe_text
from .documents.errors import DocumentReadError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_TIMEOUT",
    "FetchError",
    "Resolver",
    "UnsafeURLError",
    "address_problem",
    "afetch",
    "check_url",
    "fetch",
]

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
"""The largest body read (100 MiB)."""
DEFAULT_TIMEOUT = 60.0
"""Seconds allowed for each network step (connect, each read)."""
DEFAULT_MAX_SECONDS = 600.0
"""Seconds allowed for a whole download, redirects included: connecting, headers and body (each socket read waits
at most the time left)."""
DEFAULT_MAX_REDIRECTS = 5

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: how host names are resolved (``socket.getaddrinfo`` by default)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): not private, not global either
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix: the last 32 bits are an IPv4 address


class FetchError(DocumentReadError):
    """A URL could not be fetched (``DownloadFailed``: unreachable, timed out, an HTTP error status, too many
    redirects) or was too large (``DownloadTooLarge``)."""

    default_code = "DownloadFailed"


class UnsafeURLError(FetchError):
    """A URL was refused before any connection: its host is not a public address (``UnsafeURL``; the message names
    the address class and how to allow it), or its scheme is not http(s) (``UnsupportedURL``)."""

    default_code = "UnsafeURL"


# ----------------------------------------------------------------------------------------------------------------
# Checking addresses


def address_problem(address: str) -> str | None:
    """What makes ``address`` unfit for a fetch on behalf of a URL (``"a loopback address"``), or ``None`` when it
    is a public address.

    >>> address_problem("127.0.0.1"), address_problem("::ffff:10.0.0.1"), address_problem("93.184.216.34")
    ('a loopback address', 'a private address (10.0.0.1 inside ::ffff:10.0.0.1)', None)
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("fe80::1%eth0") names no other host
    except ValueError:
        return "not an IP address"
    for inner in _embedded(ip):
        kind = _kind(inner)
        if kind is not None:
            return f"{kind} ({inner} inside {address})"
    return _kind(ip)


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): where a packet may really go."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class _Hop:
    """One request of a fetch: where it connects, what it asks for, and how it is named in messages."""

    url: httpx.URL  # the URL as written (redirects are resolved against it)
    target: httpx.URL  # the URL connected to: the checked address in place of the name
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def request(self, deadline: Deadline, timeout: float, *, sync: bool = True) -> dict[str, Any]:
        """The arguments of ``stream()`` for this hop: a GET of the checked address, each step's timeout shrunk to
        what is left of the deadline, redirects not followed."""
        limits = deadline.extensions(httpx.Timeout(timeout), sync=sync)
        extensions = {**self.extensions, **limits}
        return {
            "method": "GET",
            "url": self.target,
            "headers": self.headers,
            "extensions": extensions,
            "follow_redirects": False,
        }


class _Body:
    """The answer's body as it arrives: at most ``max_bytes``, within the deadline."""

    def __init__(self, response: httpx.Response, hop: _Hop, max_bytes: int, deadline: Deadline) -> None:
        _check_response(response, hop.label, max_bytes)
        self._label, self._max_bytes, self._deadline = hop.label, max_bytes, deadline
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size = _take(chunk, self._size, self._label, self._max_bytes, self._deadline)
        self._chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self._chunks)


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> str | None:
    """Check ``url`` as :func:`fetch` does before connecting; the address it would connect to (``None`` when
    ``allow_private`` skips the check).

    Raises:
        UnsafeURLError: not http(s), or (unless ``allow_private``) a host with a non-public address.
        FetchError: the host cannot be resolved.

    >>> check_url("https://93.184.216.34/scan.pdf")
    '93.184.216.34'
    >>> check_url("http://127.0.0.1/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    qwen_ocr.fetch.UnsafeURLError: refused to fetch http://127.0.0.1/x: the host is a loopback address. ...
    """
    hop = _plan(_parse(url), allow_private=allow_private, resolver=resolver)
    return None if allow_private else hop.target.host


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURLError(f"cannot fetch {url[:80]!r}: not a valid URL ({exc}).", code="UnsupportedURL") from None
    return parsed


def _label(url: httpx.URL) -> str:
    """The URL without a user name or password, for messages."""
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def _plan(url: httpx.URL, *, allow_private: bool, resolver: Resolver | None) -> _Hop:
    label = _label(url)
    if url.scheme not in ("http", "https"):
        raise UnsafeURLError(
            f"refused to fetch {label}: only http and https URLs are fetched (not {url.scheme or 'a relative'} URLs).",
            code="UnsupportedURL",
        )
    host = url.host
    if not host:
        raise UnsafeURLError(f"refused to fetch {label}: the URL has no host.", code="UnsupportedURL")
    if allow_private:
        return _Hop(url=url, target=url, label=label)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = [host] if _is_ip(host) else list((resolver or _resolve)(host, port))
    except (OSError, UnicodeError, ValueError) as exc:
        raise FetchError(f"cannot download {label}: the host {host!r} cannot be resolved ({exc}).") from None
    if not addresses:
        raise FetchError(f"cannot download {label}: the host {host!r} has no address.")
    for address in addresses:  # every one: the connection could go to any of them
        problem = address_problem(address)
        if problem is not None:
            named = "" if _is_ip(host) and address == host.split("%", 1)[0] else f" ({host} resolves to {address})"
            raise UnsafeURLError(
                f"refused to fetch {label}: the host is {problem}{named}. Fetching it could reach services inside "
                "your network (SSRF). If this host is meant to be reached, allow it: allow_private_urls=True for "
                "QwenOCRLoader, allow_private=True for qwen_ocr.fetch.",
                code="UnsafeURL",
            )
    address = addresses[0]
    headers = {"Host": url.netloc.decode("ascii")}
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        # The certificate is checked against the name. Connections are pooled by address: close this one after use,
        # so that a later URL of another name on the same address never reuses a TLS session made for this name.
        extensions["sni_hostname"] = host
        headers["Connection"] = "close"
    return _Hop(url=url, target=url.copy_with(host=address), headers=headers, extensions=extensions, label=label)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Fetching


def fetch(
    url: str,
    *,
    client: httpx.Client | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> bytes:
    """The body of ``url``, fetched safely (see the module's description).

    Args:
        url: an http(s) URL.
        client: the ``httpx.Client`` to use (proxies, certificates); a new one by default. Its redirect setting is
            ignored: redirects are followed here, each one checked.
        max_bytes: the largest body accepted.
        timeout: seconds for each network step.
        max_seconds: seconds for the whole fetch (``None``: no limit beyond ``timeout`` per step).
        max_redirects: redirects followed at most.
        allow_private: fetch hosts with private, loopback and other non-public addresses too.
        resolver: ``(host, port) -> addresses`` instead of ``socket.getaddrinfo`` (tests, a DNS of your own).

    Raises:
        UnsafeURLError: the URL (or a redirect) is not http(s) or names a non-public host.
        FetchError: unreachable, timed out, an HTTP error status, too many redirects, or larger than ``max_bytes``.
    """
    own = client is None
    http = client if client is not None else httpx.Client(timeout=timeout, follow_redirects=False)
    deadline = Deadline(max_seconds)
    try:
        hop = _plan(_parse(url), allow_private=allow_private, resolver=resolver)
        for _ in range(max_redirects + 1):
            try:
                with deadline.active(), http.stream(**hop.request(deadline, timeout)) as response:
                    following = _next_hop(response, hop)
                    if following is None:
                        body = _Body(response, hop, max_bytes, deadline)
                        for chunk in response.iter_bytes():
                            body.add(chunk)
                        return body.data()
            except httpx.HTTPError as exc:
                raise _failed(hop, exc, deadline) from None
            hop = _plan(following, allow_private=allow_private, resolver=resolver)
            _check_deadline(deadline, hop.label)
        raise _too_many_redirects(url, max_redirects)
    finally:
        if own:
            http.close()


async def afetch(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> bytes:
    """The async twin of :func:`fetch` (host names are resolved in a worker thread)."""
    own = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    deadline = Deadline(max_seconds)
    try:
        return await deadline.wait(
            _afetch(url, http, max_bytes, timeout, max_redirects, deadline, allow_private, resolver)
        )
    except httpx.TimeoutException:  # the deadline of the whole fetch
        raise FetchError(_too_slow(_label(_parse(url)), deadline)) from None
    finally:
        if own:
            await http.aclose()


async def _afetch(
    url: str,
    http: httpx.AsyncClient,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    deadline: Deadline,
    allow_private: bool,
    resolver: Resolver | None,
) -> bytes:
    hop = await asyncio.to_thread(_plan, _parse(url), allow_private=allow_private, resolver=resolver)
    for _ in range(max_redirects + 1):
        try:
            async with http.stream(**hop.request(deadline, timeout, sync=False)) as response:
                following = _next_hop(response, hop)
                if following is None:
                    body = _Body(response, hop, max_bytes, deadline)
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
                    return body.data()
        except httpx.HTTPError as exc:
            raise _failed(hop, exc, deadline) from None
        hop = await asyncio.to_thread(_plan, following, allow_private=allow_private, resolver=resolver)
        _check_deadline(deadline, hop.label)
    raise _too_many_redirects(url, max_redirects)


def _next_hop(response: httpx.Response, hop: _Hop) -> httpx.URL | None:
    """Where a redirect points (resolved against the URL as written), or ``None`` when this is the answer."""
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("location")
    if not location:
        return None  # a redirect without a target: reported as the status it is
    try:
        following = hop.url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(f"cannot download {hop.label}: it redirects to an invalid URL ({exc}).") from None
    if (following.scheme, following.host, following.port) != (hop.url.scheme, hop.url.host, hop.url.port):
        following = following.copy_with(username=None, password=None)  # credentials stay with their origin
    return following


def _check_response(response: httpx.Response, label: str, max_bytes: int) -> None:
    if response.status_code >= 300:
        raise FetchError(
            f"cannot download {label}: the server answered HTTP {response.status_code}.",
            status_code=response.status_code,
        )
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(label, max_bytes)


def _take(chunk: bytes, size: int, label: str, max_bytes: int, deadline: Deadline) -> int:
    size += len(chunk)
    if size > max_bytes:
        raise _too_large(label, max_bytes)
    _check_deadline(deadline, label)
    return size


def _check_deadline(deadline: Deadline, label: str) -> None:
    if deadline.expired():
        raise FetchError(_too_slow(label, deadline))


def _too_many_redirects(url: str, max_redirects: int) -> FetchError:
    return FetchError(f"cannot download {_label(_parse(url))}: more than {max_redirects} redirects.")


def _too_slow(label: str, deadline: Deadline) -> str:
    return f"cannot download {label}: it took longer than {deadline.seconds:g} seconds in all."


def _too_large(label: str, max_bytes: int) -> FetchError:
    return FetchError(
        f"cannot download {label}: it is larger than {max_bytes:,} bytes. Download it yourself and pass the path, "
        "or raise the limit (max_download_bytes= for the loaders).",
        code="DownloadTooLarge",
    )


def _failed(hop: _Hop, exc: httpx.HTTPError, deadline: Deadline) -> FetchError:
    if isinstance(exc, httpx.TimeoutException):
        if deadline.expired():
            return FetchError(_too_slow(hop.label, deadline))
        detail = "it timed out"
    else:  # httpx's messages may quote the URL: never with its user name or password, nor the pinned address
        text = safe_text(str(exc))  # nor a header value (an illegal header of the caller's client)
        for shown in (str(hop.target), str(hop.url)):
            text = text.replace(shown, hop.label)
        detail = f"{type(exc).__name__}: {text}".rstrip(": ")
    return FetchError(f"cannot download {hop.label}: {detail}.")
