"""Open a local HTML page in headless Chromium: its DOM after the scripts ran, every console
message (errors and uncaught exceptions included), and a screenshot.

Chromium runs with its network resolver pointed nowhere, so a page that needed the network would
show it; the pages EcoLobster writes log nothing, so any console line is a failure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

HOW_TO_GET = ("headless Chromium is needed to check the HTML pages: on Debian/Ubuntu `apt-get update && "
              "apt-get install -y chromium` (.ci/run does this), elsewhere install Chromium and put "
              "`chromium` on PATH")
# INFO:CONSOLE:2] "message", source: file:///... (2)   (older builds: CONSOLE(2)] "message", ...)
_CONSOLE = re.compile(r'CONSOLE[:(]\d*\)?\]\s*"(.*)", source:')


@dataclass
class Page:
    dom: str
    console: list[str]
    screenshot: Path


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(HOW_TO_GET, pytrace=False)
    return exe


def _run(args: list[str], profile: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}",
           "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def open_page(html: Path, screenshot: Path, width: int = 1200, height: int = 1600) -> Page:
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="eco-chromium-") as profile:
        dom = _run(["--dump-dom", url], profile)
        shot = _run([f"--screenshot={screenshot}", f"--window-size={width},{height}", url], profile)
    console = _CONSOLE.findall(dom.stderr) + _CONSOLE.findall(shot.stderr)
    assert dom.returncode == 0 and dom.stdout.strip(), f"chromium --dump-dom failed: {dom.stderr[-2000:]}"
    assert shot.returncode == 0 and screenshot.exists(), f"chromium --screenshot failed: {shot.stderr[-2000:]}"
    return Page(dom=dom.stdout, console=console, screenshot=screenshot)
