#!/usr/bin/env python3
"""A terminal screen captured with its colours (`tmux capture-pane -e -p`) as a PNG picture.

    scripts/screen-to-png.py SCREEN.ansi COLSxROWS OUT.png

The screen's SGR escapes (bold, dim, italic, underline, reverse; the 16 ANSI colours as xterm
shows them, the 256-colour palette and 24-bit colours) become an HTML page of a COLS x ROWS
character grid, CELL_W x CELL_H pixels a cell, which headless Chromium (Debian's `chromium`,
driven over the DevTools protocol) renders to OUT.png. The PNG then gets two iTXt chunks: `vmmem-terminal` (COLSxROWS) and
`vmmem-capture` (the .ansi text it was rendered from), so tests/it/readme_pictures.rs can check that
the picture in the README is the committed capture at the committed terminal size.
"""

import base64
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# Cell size and margin in pixels; tests/it/readme_pictures.rs checks the PNG's size with these.
CELL_W, CELL_H, PAD = 9, 18, 10
FONT = "'DejaVu Sans Mono', 'Liberation Mono', monospace"
FONT_PX = 15  # DejaVu Sans Mono's advance at 15px is 9.03px: letter-spacing makes it 9.
BG, FG = "#000000", "#d0d0d0"

# xterm's default palette for the 16 ANSI colours.
ANSI16 = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]


def colour256(n):
    if n < 16:
        return ANSI16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + 10 * (n - 232)
    return "#%02x%02x%02x" % (v, v, v)


class Style:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def apply(self, params):
        """Apply one SGR sequence's parameters (`1;31`, `38;5;208`, ...)."""
        codes = [int(p) if p else 0 for p in re.split("[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.reset()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 3:
                self.italic = True
            elif c == 4:
                self.underline = True
            elif c == 7:
                self.reverse = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 23:
                self.italic = False
            elif c == 24:
                self.underline = False
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = ANSI16[c - 30]
            elif 90 <= c <= 97:
                self.fg = ANSI16[c - 90 + 8]
            elif 40 <= c <= 47:
                self.bg = ANSI16[c - 40]
            elif 100 <= c <= 107:
                self.bg = ANSI16[c - 100 + 8]
            elif c == 39:
                self.fg = None
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    value = colour256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    value = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                    i += 4
                else:
                    value = None
                if c == 38:
                    self.fg = value
                else:
                    self.bg = value
            i += 1

    def css(self):
        fg, bg = self.fg or FG, self.bg or BG
        if self.reverse:
            fg, bg = bg, fg
        out = []
        if fg != FG:
            out.append("color:" + fg)
        if bg != BG:
            out.append("background:" + bg)
        if self.bold:
            out.append("font-weight:bold")
        if self.dim:
            out.append("opacity:0.6")
        if self.italic:
            out.append("font-style:italic")
        if self.underline:
            out.append("text-decoration:underline")
        return ";".join(out)


SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def line_html(line, style):
    """One screen line as HTML spans; `style` carries over to the next line, as in a terminal."""
    out = []
    pos = 0
    for m in list(SGR.finditer(line)) + [None]:
        text = line[pos:m.start()] if m else line[pos:]
        if text:
            css = style.css()
            esc = html.escape(text)
            out.append('<span style="%s">%s</span>' % (css, esc) if css else esc)
        if m is None:
            break
        style.apply(m.group(1))
        pos = m.end()
    return "".join(out)


def page(screen, cols, rows):
    style = Style()
    lines = screen.split("\n")[:rows]
    # No text between the line divs: the grid is `white-space: pre`, a newline would be a line.
    body = "".join('<div class="l">%s</div>' % line_html(l, style) for l in lines)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
html, body {{ margin: 0; background: {BG}; }}
.screen {{ padding: {PAD}px; width: {cols * CELL_W}px; height: {rows * CELL_H}px; overflow: hidden;
  color: {FG}; font-family: {FONT}; font-size: {FONT_PX}px; line-height: {CELL_H}px;
  letter-spacing: {CELL_W - FONT_PX * 1233 / 2048:.4f}px; white-space: pre;
  font-variant-ligatures: none; }}
.l {{ height: {CELL_H}px; }}
</style></head><body><div class="screen">{body}</div></body></html>
"""


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def itxt(key, text):
    # keyword, NUL, compression flag 0, method 0, empty language tag and translated keyword.
    return chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def embed(png, terminal, screen):
    """The PNG with the iTXt chunks added right after IHDR."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "Chromium did not write a PNG"
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    extra = itxt("vmmem-terminal", terminal) + itxt("vmmem-capture", screen)
    return png[:ihdr_end] + extra + png[ihdr_end:]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("screen-to-png.py: Chromium is not installed (apt-get install -y chromium)")


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4): its own
    `--screenshot` flag writes a blank page in some containers, Page.captureScreenshot does not."""

    def __init__(self, profile, width, height):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1",
             "--user-data-dir=" + profile, "--remote-debugging-pipe",
             f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf, self.next_id, self.session = b"", 0, None

    def call(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self.next_id:
                    if "error" in answer:
                        sys.exit(f"screen-to-png.py: Chromium: {method}: {answer['error']}")
                    return answer["result"]
            data = os.read(self.from_chrome, 1 << 20)
            if not data:
                sys.exit("screen-to-png.py: Chromium exited")
            self.buf += data

    def screenshot(self, url, width, height):
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        # The page is local and small: wait until it and its fonts are there.
        for _ in range(100):
            done = self.call("Runtime.evaluate", expression="document.readyState", returnByValue=True)
            if done["result"].get("value") == "complete":
                break
            time.sleep(0.05)
        self.call("Runtime.evaluate", expression="document.fonts.ready.then(() => true)",
                  awaitPromise=True)
        shot = self.call("Page.captureScreenshot", format="png",
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        return base64.b64decode(shot["data"])

    def close(self):
        self.session = None
        try:
            self.call("Browser.close")
        finally:
            self.proc.wait(timeout=30)


def main():
    if len(sys.argv) != 4 or not re.fullmatch(r"\d+x\d+", sys.argv[2]):
        sys.exit("usage: screen-to-png.py SCREEN.ansi COLSxROWS OUT.png")
    src, size, out = sys.argv[1:]
    cols, rows = (int(v) for v in size.split("x"))
    with open(src, encoding="utf-8") as f:
        screen = f.read()
    width, height = cols * CELL_W + 2 * PAD, rows * CELL_H + 2 * PAD
    with tempfile.TemporaryDirectory() as tmp:
        page_path = os.path.join(tmp, "screen.html")
        with open(page_path, "w", encoding="utf-8") as f:
            f.write(page(screen, cols, rows))
        chrome = DevTools(os.path.join(tmp, "profile"), width, height)
        try:
            png = chrome.screenshot("file://" + page_path, width, height)
        finally:
            chrome.close()
    w, h = struct.unpack(">II", png[16:24])
    if (w, h) != (width, height):
        sys.exit(f"screen-to-png.py: Chromium wrote {w}x{h} pixels, not {width}x{height}")
    with open(out, "wb") as f:
        f.write(embed(png, size, screen))


if __name__ == "__main__":
    main()
