"""The footer mounts its keys again only when what it shows changes (footer.py): Textual's
Footer recomposes on every refresh of the bindings, six times while the monitor starts."""

from __future__ import annotations

from textual.widget import Widget

from portscope.tui.footer import FittingFooter
from tui.test_narrow_60 import settled
from tui.test_snapshots import demo_app


def keys(footer: FittingFooter) -> list[Widget]:
    return list(footer.query("FooterKey"))


def described(widgets: list[Widget], action: str) -> list[str]:
    return [
        str(getattr(w, "description", "")) for w in widgets if getattr(w, "action", "") == action
    ]


async def test_bindings_refreshed_unchanged_mount_nothing_and_a_change_shows() -> None:
    app = demo_app()
    async with app.run_test(size=(170, 40)) as pilot:
        await settled(app, pilot)
        footer = app.main.query_one(FittingFooter)
        before = keys(footer)
        assert described(before, "pause") == ["Pause"]
        for _ in range(5):  # what focus moves and screen changes do
            app.main.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        after = keys(footer)
        assert len(after) == len(before)
        assert all(a is b for a, b in zip(after, before, strict=True))  # the very widgets
        await pilot.press("p")  # Pause becomes Resume: the keys are composed again
        await pilot.pause()
        await pilot.pause()
        paused = keys(footer)
        assert described(paused, "resume") == ["Resume"] and described(paused, "pause") == []
        assert footer.shown_actions()[:5] == [
            "filter", "cycle_sort", "cycle_proto", "all_sockets", "copy_pids",
        ]
