"""``python -m qwen_ocr.demo`` (what ``make demo`` runs): offline, no API key, and it reads the samples right.

The demo runs as a subprocess exactly as a user would run it, with ``DASHSCOPE_API_KEY`` removed from its
environment and every socket connection refused (a ``sitecustomize`` put on its ``PYTHONPATH`` patches ``socket``
before anything else runs and reports any attempt on stderr).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_ocr.local import cer, is_available
from qwen_ocr.samples import PDF_PAGE_SEPARATOR, SAMPLE_PDF, SAMPLE_SCAN, known_text

pytestmark = pytest.mark.skipif(not is_available(), reason="needs the 'local' extra (rapidocr, onnxruntime)")

MAX_CER = 0.05

_BLOCK_NETWORK = """
import socket

def _refuse(*args, **kwargs):
    import sys
    sys.stderr.write("NETWORK ATTEMPT %r\\n" % (args[1:],))
    raise OSError("network access is blocked in this test")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
"""


def _offline_env(site: Path) -> dict[str, str]:
    """The environment without any DashScope key, with the network-blocking ``sitecustomize`` first on the path."""
    (site / "sitecustomize.py").write_text(_BLOCK_NETWORK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _offline_env(tmp_path_factory.mktemp("blocknet"))


@pytest.fixture(scope="module")
def demo_output(offline_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwen_ocr.demo"],
        env=offline_env,
        cwd=Path(__file__).parent,  # not the repository root: the package must find its own samples
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )


def test_the_network_block_works(offline_env: dict[str, str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"],
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode != 0
    assert "NETWORK ATTEMPT" in probe.stderr


def _sections(stdout: str) -> dict[str, str]:
    """Each page's text from the demo's output: the lines between a ``== title ==`` header and the blank line."""
    sections: dict[str, str] = {}
    title: str | None = None
    body: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            title, body = line[3:].split(":", 1)[0], []
            continue
        if title is not None:
            if line.strip():
                body.append(line)
            else:
                sections[title] = "\n".join(body)
                title = None
    return sections


def test_demo_runs_offline_without_a_key(demo_output: subprocess.CompletedProcess[str]) -> None:
    assert demo_output.returncode == 0, demo_output.stderr
    assert "NETWORK ATTEMPT" not in demo_output.stderr
    assert "rapidocr-" in demo_output.stdout
    assert "Read 3 pages" in demo_output.stdout


def test_demo_reads_the_sample_scan(demo_output: subprocess.CompletedProcess[str]) -> None:
    sections = _sections(demo_output.stdout)
    assert cer(sections[SAMPLE_SCAN], known_text(SAMPLE_SCAN)) < MAX_CER


def test_demo_reads_every_page_of_the_sample_pdf(demo_output: subprocess.CompletedProcess[str]) -> None:
    sections = _sections(demo_output.stdout)
    pages = known_text(SAMPLE_PDF).split(PDF_PAGE_SEPARATOR)
    assert len(pages) == 2
    for number, reference in enumerate(pages, 1):
        text = sections[f"{SAMPLE_PDF}, page {number} of {len(pages)} (rendered at 150 dpi)"]
        assert cer(text, reference) < MAX_CER


def test_demo_shows_lines_with_boxes(demo_output: subprocess.CompletedProcess[str]) -> None:
    shown = [line for line in demo_output.stdout.splitlines() if "location=(" in line and "rotate_rect=(" in line]
    assert len(shown) >= 9  # a few lines of each of the three pages
    assert all(line.rstrip().endswith(tuple("0123456789")) for line in shown)


@pytest.fixture(scope="module")
def reader_demo_output(offline_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m langchain_qwen_ocr.demo``: the second command of ``make demo``."""
    return subprocess.run(
        [sys.executable, "-m", "langchain_qwen_ocr.demo"],
        env=offline_env,
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )


def _reader_section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = lines.index("== ImageReader: a chat message with two images, before and after ==")
    end = lines.index("", start)
    return lines[start:end]


def test_demo_shows_image_reader_before_and_after(reader_demo_output: subprocess.CompletedProcess[str]) -> None:
    assert reader_demo_output.returncode == 0, reader_demo_output.stderr
    assert "NETWORK ATTEMPT" not in reader_demo_output.stderr
    section = _reader_section(reader_demo_output.stdout)
    after = section.index(next(line for line in section if line.startswith("after ImageReader(")))
    before, later = section[:after], section[after:]
    assert sum("] image_url: data:image/jpeg;base64," in line for line in before) == 2
    assert not any("image_url" in line for line in later)
    assert any('<image_text index="1" of="2">' in line for line in later)
    assert any('<image_text index="2" of="2">' in line for line in later)
    assert any("NORTHWIND TRADING COMPANY" in line for line in later)  # the scan's first line, read offline
    assert any("Quarterly Maintenance Report" in line for line in later)  # the report's first line
    assert max(len(line) for line in section) < 200  # base64 and long texts are cut


def test_the_core_does_not_import_langchain(offline_env: dict[str, str]) -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, qwen_ocr, qwen_ocr.demo; "
            "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'llama_index'))))",
        ],
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_make_demo_runs_both_halves() -> None:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "-m qwen_ocr.demo" in recipe
    assert "-m langchain_qwen_ocr.demo" in recipe
