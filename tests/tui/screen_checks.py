"""What a person would see on the screen, read back for assertions (no tests in here).

`screen_lines` reads the screen as Textual exports it (every layer composited, dialogs
over the table), so a string found there is what the terminal shows. `click_actions`
finds text that Textual markup turned into a clickable action, the way `[@click=...]` in
a process name would. `assert_safe_screen` is the check every hostile test makes.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from typing import Any

from rich.cells import cell_len
from textual.app import App
from textual.widget import Widget

from portscope.core.untrusted import shown

_TEXT = re.compile(
    r'<text[^>]*\bx="([0-9.]+)"[^>]*\btextLength="([0-9.]+)"'
    r'[^>]*clip-path="url\(#terminal-(?:\d+-)?line-(\d+)\)"[^>]*>([^<]*)</text>'
)


def screen_svg(app: App[Any]) -> str:
    return app.export_screenshot()


def screen_lines(app: App[Any], svg: str | None = None) -> list[str]:
    """The screen's text, one string per terminal line, each run at its own column (the
    SVG leaves out runs of blank cells, which are only a background)."""
    runs: dict[int, list[tuple[float, str]]] = defaultdict(list)
    cell = 0.0
    for x, length, line, raw in _TEXT.findall(svg if svg is not None else screen_svg(app)):
        # Each line's last run ends in the newline that ends the line: not screen content.
        text = html.unescape(raw).replace("\xa0", " ").removesuffix("\n")
        if text and not cell:
            cell = float(length) / cell_len(text)
        runs[int(line)].append((float(x), text))
    left = min((x for found in runs.values() for x, _ in found), default=0.0)
    lines = []
    for number in sorted(runs):
        out = ""
        for x, text in sorted(runs[number]):
            column = round((x - left) / cell) if cell else cell_len(out)
            out += " " * max(0, column - cell_len(out)) + text
        lines.append(out)
    return lines


def screen_text(app: App[Any]) -> str:
    return "\n".join(screen_lines(app))


def toasts(app: App[Any]) -> str:
    """The notifications' words on screen: the text right of each toast's left edge (▌),
    its wrapped lines joined with single spaces (run_test needs notifications=True)."""
    parts = [line.rsplit("▌ ", 1)[1] for line in screen_lines(app) if "▌ " in line]
    return " ".join(" ".join(parts).split())


def click_actions(app: App[Any]) -> list[str]:
    """Every `@click` action in what the visible widgets of the top screen render."""
    found: list[str] = []
    for widget in app.screen.walk_children(Widget, with_self=True):
        if not widget.display or not widget.size.area:
            continue
        for strip in widget.render_lines(widget.size.region):
            for segment in strip:
                meta = segment.style.meta if segment.style else {}
                if "@click" in meta:
                    found.append(str(meta["@click"]))
    return found


def assert_safe_screen(app: App[Any]) -> list[str]:
    """The app runs, nothing on screen is a control or bidi character (each would have been
    shown as an escape), and no text became a clickable action. Returns the screen lines."""
    assert app.is_running and app.return_code is None
    svg = screen_svg(app)
    assert "\x1b" not in svg
    lines = screen_lines(app, svg)
    assert lines
    for line in lines:
        assert shown(line) == line, f"unescaped character on screen: {line!r}"
    assert click_actions(app) == []
    return lines
