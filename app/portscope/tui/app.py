"""`portscope` with no command: the live port monitor."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Checkbox, Input, RadioButton, RadioSet

from ..core.collect import Collector, default_collector
from ..core.history.recorder import History
from ..core.model import Snapshot
from ..core.roles.published import WithContainers
from ..core.untrusted import shown
from . import crash
from ._textual_hacks import CaptureCrash, preload_css
from .gc_pacing import FullCollections
from .keys import ACTION_HELP
from .main_screen import MainScreen, PauseChanged, PollRequested
from .poller import Poller, PollFailed, SnapshotReady
from .relatives import RelativesLookup, lookup_relatives
from .rows import TableRow, prepare_rows, sketch_rows
from .settings import Settings, SettingsError, config_file
from .stops import StopLookup, live_stop


class PortscopeApp(CaptureCrash[None]):
    """Polls `source` every `interval` seconds off the UI thread and shows the result.

    `tz` and `relatives` exist for tests and screenshots: a fixed time zone and made-up
    process relatives keep frozen data rendering the same on every machine. `settings`:
    where the theme is kept between runs (run_tui passes the user's file; without one,
    nothing is read or written). An unhandled exception ends the app with `crash` set (see
    run_app).
    """

    CSS_PATH = Path(__file__).with_name("portscope.tcss")  # absolute: subclasses elsewhere
    TITLE = "portscope"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        # As htop and btop: ctrl+c quits, from any screen and any input (priority), where
        # Textual's default only says which key would.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.quit_ctrl_c"),
    ]

    def __init__(
        self,
        source: Collector,
        interval: float = 1.0,
        *,
        tz: tzinfo | None = None,
        relatives: RelativesLookup = lookup_relatives,
        stops: StopLookup = live_stop,
        history: History | None = None,
        settings: Settings | None = None,
        sketch: bool = False,
    ) -> None:
        """`sketch`: show the sockets first, before the first whole poll (poller.py)."""
        super().__init__()
        self.source = source
        self.interval = interval
        self.latest_snapshot: Snapshot | None = None
        # Trends and listener events: fed by every poll, also while a dialog holds the table.
        self.history = history or History(interval=interval)
        self.main = MainScreen(tz, relatives, stops, self.history)
        self._poller = Poller(
            source, interval, self.post_message, prepare_rows,
            sketch=sketch_rows if sketch else None,
        )
        self.full_collections = FullCollections()
        self._quitting = False
        self._whole_polls = 0  # shown so far (a sketch is not one)
        self._settings = settings or Settings(None)
        self._saved_theme: str | None = None  # the theme the settings file holds

    def on_mount(self) -> None:
        self._load_theme()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(self.main)
        self._poller.start()
        self.set_interval(1.0, self._collect_garbage)

    def _load_theme(self) -> None:
        try:
            saved = self._settings.theme()
        except SettingsError as exc:
            self.notify(f"{exc}; the default theme is used.", severity="warning", markup=False)
            return
        self._saved_theme = saved
        if saved is None:
            return
        if saved in self.available_themes:
            self.theme = saved
        else:
            self.notify(
                f"Theme '{shown(saved)}' (in {shown(str(self._settings.path))}) is not one "
                "this version knows; the default theme is used.",
                severity="warning", markup=False,
            )

    def _theme_changed(self, theme: Theme) -> None:
        """Written only when the theme changes (the palette's Theme command)."""
        if theme.name == self._saved_theme or self._settings.path is None:
            return
        try:
            self._settings.save_theme(theme.name)
        except SettingsError as exc:
            self.notify(f"The theme is not kept: {exc}", severity="warning", markup=False)
            return
        self._saved_theme = theme.name

    def on_unmount(self) -> None:
        self._quitting = True
        self._poller.stop()
        self.full_collections.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.full_collections.key_pressed()
        await super().on_event(event)

    def _after_first_poll(self) -> None:
        """What would slow the first `b` down is done now, and what lives now is frozen."""
        if self._quitting:  # quit before the first refresh: nothing to speed up or freeze
            return
        # What `b` and `k` open (and the widgets only they use), so their first press does
        # not pay for parsing the stylesheet again. Not before: that parse (~0.1 s) would
        # take the CPU from the first poll, whose frame names the processes.
        from .bind_panel import BindPanel
        from .kill_modal import KillModal

        preload_css(self, BindPanel, KillModal, Input, Checkbox, RadioSet, RadioButton)
        self.main.prepare_bind_panel()
        self.full_collections.start()

    def _freeze_more(self) -> None:
        """What the second poll built is frozen too. The first may be a forked child's
        (ProcNetCollector.poll_ahead): then the collector's own state (2,000 processes'
        fd tables: ~100,000 objects) is made by the second, and every full collection
        would walk it again."""
        if not self._quitting:
            self.full_collections.freeze_more()

    def _collect_garbage(self) -> None:
        self.full_collections.tick(busy=self.main.opening)

    def hold_polls(self, seconds: float) -> None:
        """No poll starts for `seconds` (a key's answer is on its way)."""
        self._poller.hold(seconds)

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        # The newest poll waiting (poller.py: a busy UI skips polls, never queues them; the
        # trends then miss a sample, which they take as no change).
        ready = message.take()
        if ready is None:
            return
        if ready.sketch:  # sockets only: nothing for trends, events or `b` and `k` yet
            self.main.receive(ready.snapshot, ready)
            return
        self._whole_polls += 1
        if self._whole_polls == 1:  # the first poll: once it is on screen
            self.call_after_refresh(self._after_first_poll)
        elif self._whole_polls == 2:  # the first the collector took itself (launch.py)
            self.call_after_refresh(self._freeze_more)
        self.latest_snapshot = ready.snapshot
        self.history.update(ready.snapshot)
        self.main.receive(ready.snapshot, ready)

    def on_poll_failed(self, message: PollFailed) -> None:
        self.main.poll_failed(message.error)

    def on_pause_changed(self, message: PauseChanged) -> None:
        self._poller.set_paused(message.paused)

    def on_poll_requested(self, message: PollRequested) -> None:
        self._poller.poll_now(even_paused=message.even_paused)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The main screen's keys in the command palette too, from the same BINDINGS; only
        over the main screen (a kill started from the palette over the bind panel would
        stack dialogs)."""
        yield from super().get_system_commands(screen)
        if screen is not self.main:
            return
        for binding in MainScreen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.show:
                continue
            if self.main.check_action(binding.action, ()) is False:  # Pause or Resume
                continue
            key = binding.key_display or self.get_key_display(binding)
            what = ACTION_HELP.get(binding.action, binding.description)
            named = f"{binding.description}: "  # "Pause: hold ..." under the title Pause
            if what.startswith(named):
                what = what[len(named)].upper() + what[len(named) + 1 :]
            yield SystemCommand(
                binding.description,
                f"{what} (key {key})",
                partial(self.main.run_action, binding.action),
            )

    def selected_row(self) -> TableRow | None:
        """The row under the cursor, by key: what `k` and `b` act on."""
        return self.main.selected_row()

    def poll_now(self) -> None:
        """Ask for a poll without waiting for the interval (the next tick starts from it)."""
        self._poller.poll_now()


def run_app(app: PortscopeApp, *, headless: bool = False) -> int:
    """Run `app`; after a crash, one line on stderr, the traceback in a log file, and 1.

    Textual has restored the terminal by the time run() returns, so the line is readable.
    """
    try:
        app.run(headless=headless)
    except Exception as exc:  # failed before Textual could catch it (e.g. no terminal)
        crash.report(exc)
        return 1
    if app.crash is not None:
        crash.report(app.crash)
        return 1
    return app.return_code or 0


def run_tui(interval: float = 1.0, collector: Collector | None = None) -> int:
    """The monitor, polling `collector` (default_collector() if None; launch.py passes one
    whose first poll is already under way)."""
    # "docker web (nginx:1.27)" in the table
    source = WithContainers(collector if collector is not None else default_collector(polling=True))
    app = PortscopeApp(source, interval=interval, settings=Settings(config_file()), sketch=True)
    return run_app(app)
