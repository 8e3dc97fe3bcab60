"""SSRF: when the client itself fetches a URL (``qwen_ocr.fetch``, the LangChain loader's URL sources), private,
loopback, link-local and other non-public addresses are refused by default, at every redirect, however they are
written; the connection goes to the checked address (no DNS rebinding); size and time are capped.

Public hosts are simulated with an injected resolver and an ``httpx.MockTransport``: nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_ocr import InvalidImageError, QwenOCR
from qwen_ocr.documents import DocumentReadError
from qwen_ocr.fetch import FetchError, UnsafeURLError, address_problem, afetch, check_url, fetch
from qwen_ocr.testing import Emulator
from tests.conftest import make_image, serve_directory

PUBLIC = "93.184.216.34"

REFUSED_ADDRESSES = {
    "127.0.0.1": "loopback",
    "127.254.1.2": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud instance metadata
    "100.64.0.1": "shared",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.1": "private",  # documentation range
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback address (127.0.0.1 inside",
    "::ffff:169.254.169.254": "link-local address (169.254.169.254 inside",
    "2002:7f00:1::": "loopback address (127.0.0.1 inside",  # 6to4
    "64:ff9b::a9fe:a9fe": "link-local address (169.254.169.254 inside",  # NAT64
}
PUBLIC_ADDRESSES = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]


@pytest.mark.parametrize(("address", "kind"), list(REFUSED_ADDRESSES.items()))
def test_non_public_addresses_are_named(address: str, kind: str) -> None:
    problem = address_problem(address)
    assert problem is not None and kind in problem, problem


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(address) is None


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request was sent to {request.url}")


def no_network() -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(never_called))


# Written as an attacker would: each resolves (with the system's own resolver, offline) to a loopback, unspecified
# or link-local address.
SNEAKY_URLS = [
    "http://localhost/admin",
    "http://LOCALHOST/admin",
    "http://127.0.0.1:8080/",
    "http://127.1/",
    "http://2130706433/",  # decimal
    "http://0x7f.1/",  # hexadecimal
    "http://017700000001/",  # octal
    "http://0/",
    "http://0.0.0.0:9000/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://169.254.169.254/latest/meta-data/",
    "https://user:pw@127.0.0.1/secret.pdf",
]


@pytest.mark.parametrize("url", SNEAKY_URLS)
def test_fetch_refuses_non_public_hosts_however_written(url: str) -> None:
    with pytest.raises(UnsafeURLError) as info:
        fetch(url, client=no_network())
    err = info.value
    assert err.code == "UnsafeURL"
    assert "allow_private_urls=True" in err.message and "SSRF" in err.message
    assert "pw@" not in err.message  # credentials never in messages
    assert isinstance(err, DocumentReadError) and isinstance(err, InvalidImageError)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.pdf", "gopher://x/", "data:,hi", "/etc"])
def test_fetch_refuses_other_schemes(url: str) -> None:
    with pytest.raises(UnsafeURLError) as info:
        fetch(url, client=no_network())
    assert info.value.code == "UnsupportedURL"


def resolver(table: dict[str, Sequence[str]], calls: list[str] | None = None) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(f"unknown host {host}")
        return table[host]

    return resolve


def test_a_name_resolving_to_a_private_address_is_refused_and_named() -> None:
    with pytest.raises(UnsafeURLError) as info:
        fetch(
            "https://intranet.example/report.pdf",
            client=no_network(),
            resolver=resolver({"intranet.example": ["10.1.2.3"]}),
        )
    assert "private address" in info.value.message
    assert "intranet.example resolves to 10.1.2.3" in info.value.message


def test_any_private_answer_is_enough_to_refuse() -> None:
    table = {"mixed.example": [PUBLIC, "127.0.0.1"]}
    with pytest.raises(UnsafeURLError):
        fetch("http://mixed.example/a.png", client=no_network(), resolver=resolver(table))


class Recorder:
    """A mock web: answers by path, records what each request looked like."""

    def __init__(self, routes: dict[str, httpx.Response | Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.seen: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(
            {
                "host": request.url.host,
                "path": request.url.path,
                "Host": request.headers.get("host"),
                "auth": request.headers.get("authorization"),
                "sni": request.extensions.get("sni_hostname"),
                "connection": request.headers.get("connection"),
            }
        )
        route = self.routes[request.url.path]
        return route(request) if callable(route) else route

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def test_the_connection_goes_to_the_checked_address() -> None:
    web = Recorder({"/scan.png": httpx.Response(200, content=b"PNGDATA")})
    calls: list[str] = []
    resolve = resolver({"files.example": [PUBLIC]}, calls)
    assert fetch("https://files.example/scan.png", client=web.client(), resolver=resolve) == b"PNGDATA"
    (seen,) = web.seen
    assert (seen["host"], seen["path"], seen["Host"], seen["sni"]) == (
        PUBLIC,
        "/scan.png",
        "files.example",
        "files.example",
    )
    assert seen["auth"] is None
    assert seen["connection"] == "close"  # a TLS session checked for this name is never reused for another
    assert calls == ["files.example"]  # resolved once, and that answer is what was connected to


def test_dns_rebinding_cannot_redirect_the_connection() -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])  # public when checked, loopback on a second lookup
    web = Recorder({"/a.pdf": httpx.Response(200, content=b"%PDF")})
    assert fetch("http://rebind.example/a.pdf", client=web.client(), resolver=lambda h, p: next(answers)) == b"%PDF"
    assert [seen["host"] for seen in web.seen] == [PUBLIC]


def test_a_redirect_to_a_private_address_is_refused_before_connecting() -> None:
    web = Recorder({"/start": httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})})
    with pytest.raises(UnsafeURLError) as info:
        fetch("https://files.example/start", client=web.client(), resolver=resolver({"files.example": [PUBLIC]}))
    assert "link-local" in info.value.message
    assert [seen["host"] for seen in web.seen] == [PUBLIC]  # the metadata address was never contacted


def test_a_redirect_to_another_scheme_is_refused() -> None:
    web = Recorder({"/start": httpx.Response(301, headers={"location": "file:///etc/passwd"})})
    with pytest.raises(UnsafeURLError) as info:
        fetch("http://files.example/start", client=web.client(), resolver=resolver({"files.example": [PUBLIC]}))
    assert info.value.code == "UnsupportedURL"


def test_redirects_are_followed_checked_and_bounded_and_credentials_stay_home() -> None:
    web = Recorder(
        {
            "/one": httpx.Response(302, headers={"location": "/two"}),
            "/two": httpx.Response(307, headers={"location": "https://cdn.example/three"}),
            "/three": httpx.Response(200, content=b"done"),
            "/loop": httpx.Response(302, headers={"location": "/loop"}),
        }
    )
    resolve = resolver({"files.example": [PUBLIC], "cdn.example": ["8.8.8.8"]})
    assert fetch("http://me:secret@files.example/one", client=web.client(), resolver=resolve) == b"done"
    assert [(s["host"], s["Host"], s["auth"] is not None) for s in web.seen] == [
        (PUBLIC, "files.example", True),
        (PUBLIC, "files.example", True),  # same origin: the URL's credentials still apply
        ("8.8.8.8", "cdn.example", False),  # another host: never
    ]
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch("http://files.example/loop", client=web.client(), resolver=resolve, max_redirects=3)


def test_size_is_capped_by_content_length_and_by_what_arrives() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 1000] * 100))  # no Content-Length

    web = Recorder({"/declared": httpx.Response(200, content=b"x" * 5000), "/endless": endless})
    resolve = resolver({"files.example": [PUBLIC]})
    for path in ("/declared", "/endless"):
        with pytest.raises(FetchError, match="larger than 4,096 bytes") as info:
            fetch(f"http://files.example{path}", client=web.client(), resolver=resolve, max_bytes=4096)
        assert info.value.code == "DownloadTooLarge"


def test_http_errors_are_typed() -> None:
    web = Recorder({"/gone": httpx.Response(404), "/moved": httpx.Response(302)})  # a redirect without a target
    resolve = resolver({"files.example": [PUBLIC]})
    with pytest.raises(FetchError, match="HTTP 404") as info:
        fetch("http://files.example/gone", client=web.client(), resolver=resolve)
    assert info.value.code == "DownloadFailed" and info.value.status_code == 404
    with pytest.raises(FetchError, match="HTTP 302"):
        fetch("http://files.example/moved", client=web.client(), resolver=resolve)
    with pytest.raises(FetchError, match="cannot be resolved"):
        fetch("http://nowhere.example/x", client=web.client(), resolver=resolve)


async def test_the_async_fetch_checks_the_same() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(302, headers={"location": "http://[::1]:8000/"})
        return httpx.Response(200, content=b"ok")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    resolve = resolver({"files.example": [PUBLIC]})
    assert await afetch("http://files.example/ok", client=client, resolver=resolve) == b"ok"
    with pytest.raises(UnsafeURLError, match="loopback"):
        await afetch("http://files.example/start", client=client, resolver=resolve)
    with pytest.raises(UnsafeURLError):
        await afetch("http://localhost:1/", client=client)


def test_check_url_names_the_address_it_would_connect_to() -> None:
    assert check_url("https://files.example/a", resolver=resolver({"files.example": [PUBLIC]})) == PUBLIC
    assert check_url("http://127.0.0.1/", allow_private=True) is None


# ----------------------------------------------------------------------------------------------------------------
# Real sockets on 127.0.0.1 (allowed explicitly): the timeouts


class Trickle:
    """A server that answers with headers, then one body byte every 0.1 s, forever; or (silent) nothing at all."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow.pdf"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.silent:
                    self.stop.wait(30)
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n")
                while not self.stop.wait(0.1):
                    conn.sendall(b"1\r\nx\r\n")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


@pytest.fixture
def silent() -> Iterator[Trickle]:
    server = Trickle(silent=True)
    yield server
    server.close()


def test_a_server_that_never_answers_times_out(silent: Trickle) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(silent.url, timeout=0.3, allow_private=True)
    assert time.monotonic() - started < 10


def test_a_trickle_is_cut_off_by_the_overall_limit(trickle: Trickle) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"longer than 0\.6 seconds"):
        fetch(trickle.url, timeout=5, max_seconds=0.6, allow_private=True)  # each byte arrives well within 5 s
    assert time.monotonic() - started < 10


def test_a_loopback_server_is_fetched_when_allowed() -> None:
    with Emulator() as emu:
        assert b'"status"' in fetch(emu.base_url + "/health", allow_private=True)
        with pytest.raises(UnsafeURLError):
            fetch(emu.base_url + "/health")
        assert emu.stats.requests == 1  # the refused fetch never connected


# ----------------------------------------------------------------------------------------------------------------
# The LangChain loader


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "scan.png").write_bytes(make_image())
    with serve_directory(tmp_path) as url:
        yield url


def test_the_loader_refuses_private_urls_unless_allowed(web: str) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    with Emulator() as emu, QwenOCR(api_key="k", base_url=emu.base_url) as client:
        (marked,) = QwenOCRLoader(f"{web}/scan.png", client=client, on_error="mark").load()
        assert marked.metadata["error_code"] == "UnsafeURL"
        assert "allow_private_urls=True" in marked.metadata["error"]
        assert emu.stats.requests == 0
        with pytest.raises(UnsafeURLError):
            QwenOCRLoader("http://169.254.169.254/latest/meta-data/", client=client).load()
        (doc,) = QwenOCRLoader(f"{web}/scan.png", client=client, allow_private_urls=True).load()
        assert doc.page_content and "error" not in doc.metadata
        assert "allow_private_urls=True" in repr(QwenOCRLoader(f"{web}/x.png", client=client, allow_private_urls=True))


async def test_the_async_loader_refuses_private_urls_too(web: str) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    (marked,) = await QwenOCRLoader(f"{web}/scan.png", api_key="k", on_error="mark").aload()
    assert marked.metadata["error_code"] == "UnsafeURL"


def test_the_local_provider_fetches_nothing() -> None:
    pytest.importorskip("rapidocr")
    with QwenOCR(provider="local") as client, pytest.raises(InvalidImageError) as info:
        client.ocr("http://127.0.0.1:1/a.png")
    assert info.value.code == "UnsupportedURL"
