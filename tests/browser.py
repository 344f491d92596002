"""A headless Chromium driven through the Chrome DevTools Protocol over a pipe: no driver package, no port.

Chromium is started with ``--remote-debugging-pipe``: it reads JSON commands, each ended by a NUL byte, on its
file descriptor 3 and writes answers and events on 4. :class:`Browser` opens one page and offers what the app's
tests need: navigate, evaluate JavaScript, real mouse events, a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page of ``width`` x ``height`` CSS pixels."""

    def __init__(self, executable: str, width: int = 1280, height: int = 1000, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Above 4, so that putting one end on 3 or 4 cannot overwrite the other before it is moved.
        to_browser_read, from_browser_write = (
            self._above_nine(descriptor) for descriptor in (to_browser_read, from_browser_write)
        )
        # A small Python puts the two pipe ends on descriptors 3 and 4, where Chromium expects them, and becomes Chromium.
        place = (
            f"import os, sys; os.dup2({to_browser_read}, 3); os.dup2({from_browser_write}, 4); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        command = [
            sys.executable,
            "-c",
            place,
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.log = tempfile.NamedTemporaryFile(prefix="chromium-", suffix=".log")  # noqa: SIM115 (closed by close(); a pipe nobody reads could fill up)
        self.process = subprocess.Popen(
            command,
            pass_fds=(to_browser_read, from_browser_write),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._next_id = 0
        self._closed = False
        self._answers: dict[int, dict] = {}
        self.events: list[dict] = []
        self._condition = threading.Condition()
        self._reader = threading.Thread(target=self._read_messages, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain, session=True)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    @staticmethod
    def _above_nine(descriptor: int) -> int:
        import fcntl

        moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(descriptor)
        return moved

    # ------------------------------------------------------------ the protocol
    def _read_messages(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._condition:
                    self._closed = True
                    self._condition.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._condition:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._condition.notify_all()

    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one command and wait for its answer's result; :class:`BrowserError` for an error answer."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"chromium has exited ({self.process.poll()}): {self.log_tail()}") from None
        deadline = time.monotonic() + self.timeout
        with self._condition:
            while self._next_id not in self._answers:
                if self._closed:
                    raise BrowserError(f"chromium closed the pipe: {self.log_tail()}")
                if not self._condition.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise BrowserError(f"no answer to {method} in {self.timeout} s")
            answer = self._answers.pop(self._next_id)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def log_tail(self, size: int = 2000) -> str:
        return Path(self.log.name).read_bytes()[-size:].decode(errors="replace")

    # ------------------------------------------------------------ what tests use
    def navigate(self, url: str) -> None:
        with self._condition:
            self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_for(
            lambda: any(event.get("method") == "Page.loadEventFired" for event in list(self.events)),
            f"the page {url} to load",
        )

    def evaluate(self, expression: str):
        """Evaluate JavaScript in the page and return its (JSON) value."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"JavaScript error in {expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, condition, what: str, timeout: float | None = None, interval: float = 0.2):
        """Poll ``condition()`` until it returns something true; return it, or BrowserError after ``timeout``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {what}")
            time.sleep(interval)

    def rect(self, selector: str) -> dict | None:
        """The element's bounding box in CSS pixels of the viewport (after scrolling it into view), or None."""
        return self.evaluate(
            f"(() => {{ const element = document.querySelector({json.dumps(selector)}); if (!element) return null;"
            " element.scrollIntoView({block: 'center'}); const box = element.getBoundingClientRect();"
            " return box.width > 0 && box.height > 0 ? {x: box.x, y: box.y, width: box.width, height: box.height} : null; })()"
        )

    def mouse(self, kind: str, x: float, y: float, buttons: int = 0) -> None:
        params = {
            "type": kind,
            "x": x,
            "y": y,
            "button": "left" if kind != "mouseMoved" or buttons else "none",
            "buttons": buttons,
            "pointerType": "mouse",
        }
        if kind in ("mousePressed", "mouseReleased"):
            params["clickCount"] = 1
        self.send("Input.dispatchMouseEvent", params, session=True)

    def drag(self, points: list[tuple[float, float]]) -> None:
        """Press the left button at the first point, move through the others, release at the last."""
        first = points[0]
        self.mouse("mouseMoved", *first)
        self.mouse("mousePressed", *first, buttons=1)
        for point in points[1:]:
            self.mouse("mouseMoved", *point, buttons=1)
        self.mouse("mouseReleased", *points[-1])

    def click(self, selector: str) -> None:
        box = self.wait_for(lambda: self.rect(selector), f"{selector} to be visible")
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, buttons=1)
        self.mouse("mouseReleased", x, y)

    def drop_files(self, selector: str, files: list) -> None:
        """Put files into a file input, as choosing them in the file dialog (or dropping them) does."""
        document = self.send("DOM.getDocument", session=True)["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": document, "selector": selector}, session=True)["nodeId"]
        if not node:
            raise BrowserError(f"no {selector} in the page")
        self.send(
            "DOM.setFileInputFiles",
            {"nodeId": node, "files": [str(Path(file).resolve()) for file in files]},
            session=True,
        )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "({width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight})"
            )
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        data = self.send("Page.captureScreenshot", params, session=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            os.write(self._to_browser, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            for descriptor in (self._to_browser, self._from_browser):
                try:
                    os.close(descriptor)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)
            self.log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
