"""Headless Chromium for the ingest page, driven through chromedriver's W3C WebDriver API.

No Selenium: the few commands needed (new session, navigate, execute script, screenshot,
browser log) are JSON over HTTP, sent with urllib from gevent's thread pool, so servers
running on the calling thread's hub keep serving while a command waits.

    check_page_plays(base_url, key)   the page at base_url lists `key` and plays it

Needs `chromium` (or chromium-browser, google-chrome) and `chromedriver` on PATH; on
Debian: apt-get install chromium chromium-driver (.ci/run does).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

import gevent

#: Flags for a quiet, headless, throwaway browser (a fresh --user-data-dir is added).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
)
#: Why the browser checks cannot run here, for pytest's skip.
MISSING = "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)"

_POLL = 0.2


def chromium_paths() -> tuple[str, str] | None:
    """(browser, chromedriver) found on PATH, or None."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class WebDriverError(Exception):
    """chromedriver answered a command with an error."""


class Browser:
    """A headless Chromium session with its own chromedriver and profile; close() ends both."""

    def __init__(self, timeout: float = 30.0) -> None:
        paths = chromium_paths()
        if paths is None:
            raise RuntimeError(MISSING)
        browser, driver = paths
        self.timeout = timeout
        self.session: str | None = None
        self.dir = tempfile.mkdtemp(prefix="neurtmp-chromium-")
        self.log_path = os.path.join(self.dir, "chromedriver.log")
        with open(self.log_path, "wb") as log:
            self.driver = subprocess.Popen([driver, "--port=0"], stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL)
        try:
            self.base = f"http://127.0.0.1:{self._driver_port()}"
            options = {"binary": browser, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.dir}/profile"]}
            capabilities = {"browserName": "chrome", "goog:chromeOptions": options,
                            "goog:loggingPrefs": {"browser": "ALL"},
                            "timeouts": {"script": int(timeout * 1000), "pageLoad": int(timeout * 1000)}}
            value = self._command("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
            self.session = value["sessionId"]
        except BaseException:
            self.close()
            raise

    def _driver_port(self) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            found = re.search(r"started successfully on port (\d+)", pathlib.Path(self.log_path).read_text())
            if found:
                return int(found.group(1))
            if self.driver.poll() is not None:
                break
            gevent.sleep(0.05)
        raise RuntimeError(f"chromedriver did not start: {pathlib.Path(self.log_path).read_text()}")

    def _command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One WebDriver command; its `value`. Runs in a worker thread (the hub keeps going)."""
        result: Any = gevent.get_hub().threadpool.apply(self._http, (method, path, body))
        return result

    def _http(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout + 30) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            try:
                value = json.loads(exc.read())["value"]
                message = f"{value.get('error')}: {value.get('message', '')[:2000]}"
            except (ValueError, KeyError, AttributeError):
                message = str(exc)
            raise WebDriverError(f"{method} {path}: {message}") from None

    def open(self, url: str) -> None:
        self._command("POST", f"/session/{self.session}/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body: `return ...`) in the page; its result."""
        return self._command("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: str | os.PathLike[str]) -> None:
        png = base64.b64decode(self._command("GET", f"/session/{self.session}/screenshot"))
        pathlib.Path(path).write_bytes(png)

    def console(self) -> list[dict[str, Any]]:
        """The browser console's entries since the last call (chromedriver's log extension)."""
        try:
            entries: list[dict[str, Any]] = self._command("POST", f"/session/{self.session}/se/log",
                                                          {"type": "browser"})
        except WebDriverError:
            return []
        return entries

    def wait(self, script: str, what: str, timeout: float | None = None) -> Any:
        """Run `script` until it returns something truthy (its result); fail after `timeout` s."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            result = self.run(script)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not within {timeout or self.timeout:g} s; page: {self.state()}")
            gevent.sleep(_POLL)

    def state(self) -> dict[str, Any]:
        """What the page and its player look like (for failure messages)."""
        try:
            state: dict[str, Any] = self.run(_STATE)
        except WebDriverError as exc:
            return {"webdriver": str(exc)}
        state["console"] = [f"{e.get('level')}: {e.get('message')}" for e in self.console()]
        return state

    def close(self) -> None:
        if self.session is not None:
            try:
                self._command("DELETE", f"/session/{self.session}")
            except (WebDriverError, OSError):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_STATE = """
const v = document.getElementById("player");
const text = (selector) => { const e = document.querySelector(selector); return e && e.textContent.trim(); };
return {
  title: document.title, url: location.href, status: text("#status"), streams: text("#streams tbody"),
  nowPlaying: text("#now-playing"), level: text("#level"),
  errors: window.__errors === undefined ? "window.__errors is missing" : window.__errors,
  hlsErrors: window.__hlsErrors || [],
  hls: typeof Hls === "function" && Hls.isSupported(),
  mse: !!window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c01e,mp4a.40.2"'),
  video: v && {currentTime: v.currentTime, readyState: v.readyState, paused: v.paused, ended: v.ended,
               error: v.error && `${v.error.code} ${v.error.message}`, width: v.videoWidth, height: v.videoHeight,
               buffered: Array.from({length: v.buffered.length}, (_, i) => [v.buffered.start(i), v.buffered.end(i)])},
};
"""

#: The player's current frame, scaled down into a canvas: its luma mean and variance.
_FRAME = """
const v = document.getElementById("player");
if (!v || !v.videoWidth || v.readyState < 2) return null;
const canvas = document.createElement("canvas");
canvas.width = 160; canvas.height = 90;
const context = canvas.getContext("2d", {willReadFrequently: true});
context.drawImage(v, 0, 0, canvas.width, canvas.height);
const d = context.getImageData(0, 0, canvas.width, canvas.height).data;
let sum = 0, squares = 0;
for (let i = 0; i < d.length; i += 4) {
  const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  sum += y; squares += y * y;
}
const n = d.length / 4, mean = sum / n;
return {mean: mean, variance: squares / n - mean * mean};
"""


def check_page_plays(base_url: str, key: str, *, select: bool = True, timeout: float = 60.0,
                     min_variance: float = 100.0, screenshot: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Open the ingest page at `base_url` in headless Chromium and check that it lists the
    stream `key`, plays it (currentTime advances by more than 1 s, past 1.0) with a frame
    that is not blank, shows the level, and raised no JS errors. Fatal hls.js errors (the
    page retries after them: a stream listed before its first playlist is written gets a
    404) are left to the caller, in the result's `hlsErrors`.

    Args:
        select: open `/?stream=KEY`; else `/`, where the page picks the first live stream itself.
        min_variance: the least luma variance of a decoded frame (a flat frame has 0).
        screenshot: where to save a PNG of the page once it plays (default: $NEURTMP_SCREENSHOT, if set).

    Returns the page's final state (see `Browser.state`) with the frame's `frame` statistics.
    """
    screenshot = screenshot or os.environ.get("NEURTMP_SCREENSHOT") or None
    with Browser() as browser:
        browser.open(base_url.rstrip("/") + (f"/?stream={key}" if select else "/"))
        browser.wait("return document.title === 'neurtmp ingest'", "the page's title", timeout)
        browser.wait(f"const row = document.querySelector('#streams tbody tr[data-key={json.dumps(key)}]');"
                     f"return !!row && row.textContent.includes({json.dumps(key)})", f"{key!r} in the list", timeout)
        browser.wait(f"return document.getElementById('now-playing').textContent === {json.dumps(key)}",
                     f"{key!r} selected", timeout)
        start = browser.wait("const v = document.getElementById('player');"
                             "return v.readyState >= 2 && v.currentTime > 0 && [v.currentTime]", "playback", timeout)[0]
        browser.wait(f"return document.getElementById('player').currentTime > {max(1.0, start + 1.0)}",
                     "currentTime advancing by 1 s", timeout)
        frame = browser.wait(_FRAME, "a decoded frame", timeout)
        assert frame["variance"] > min_variance, f"the frame is blank: {frame}; page: {browser.state()}"
        browser.wait("return !['', '–'].includes(document.getElementById('level').textContent)", "the level", timeout)
        if screenshot:
            browser.screenshot(screenshot)
        state = browser.state()
        assert state["errors"] == [], f"JS errors: {state}"
        state["frame"] = frame
        return state


def longest_stall(samples: list[tuple[float, float]]) -> float:
    """The longest time (s) over which the sampled clock did not advance."""
    stall, since = 0.0, samples[0][0]
    for (when, position), (_, before) in zip(samples[1:], samples[:-1], strict=True):
        if position > before:
            since = when
        stall = max(stall, when - since)
    return stall
