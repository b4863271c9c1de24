"""Headless Chromium (the system's package, installed by `make`): HTML reports to PDF, and a page
loaded the way a reader's browser would, with its screenshot and console messages."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """No Chromium to render with, or it failed: says which and how to install it."""


def chromium() -> str:
    found = os.environ.get("VALUECREDIT_CHROMIUM") or next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if not found:
        raise BrowserError("no Chromium found (looked for " + ", ".join(CANDIDATES) + "); `make` installs it "
                           "(apt-get install chromium fonts-wqy-zenhei), or set VALUECREDIT_CHROMIUM")
    return found


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="vc-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise BrowserError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def to_pdf(html: Path, pdf: Path, timeout: int = 120) -> Path:
    """Print the page to PDF (A4, no browser header or footer); written aside, then renamed."""
    tmp = pdf.with_name(pdf.name + ".tmp.pdf")
    _run(["--no-pdf-header-footer", f"--print-to-pdf={tmp}", Path(html).resolve().as_uri()], timeout)
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no PDF for {html}")
    os.replace(tmp, pdf)
    return pdf


@dataclass
class PageLoad:
    screenshot: Path
    console: list[str]  # every console message the page produced

    @property
    def errors(self) -> list[str]:
        return [m for m in self.console if "error" in m.lower() or "uncaught" in m.lower() or "failed" in m.lower()]


def load(page: Path | str, screenshot: Path, width: int = 1100, height: int = 1600, timeout: int = 120,
         wait_ms: int = 0) -> PageLoad:
    """`page`: an HTML file, or an http(s) address; `wait_ms` lets a script-built page (Dagster's UI)
    fetch and draw before the screenshot."""
    address = page if isinstance(page, str) and page.startswith(("http://", "https://")) else Path(page).resolve().as_uri()
    wait = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    done = _run([f"--window-size={width},{height}", *wait, f"--screenshot={screenshot}", address], timeout)
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    return PageLoad(screenshot, console)
