"""A footer that shows whole keys only.

Textual's Footer lays its keys out in one line and clips what does not fit, so on a
60-column screen the last key visible is cut mid-word ("b Bind t") and the keys after it
are gone with no sign. This one hides whole keys instead, the least needed first (ranked
by action, keys.FOOTER_RANKS), keeping the others in their usual order; `?` lists them all.

Widths are measured from the laid-out keys and remembered by what each key shows: Footer
recomposes whenever the bindings change (Pause becomes Resume), and keys measured before
are fitted at once, so the new footer's first frame never shows a key cut at the edge.

Textual's Footer recomposes (removes and mounts all its keys again) once for every
refresh of the bindings, even when what it shows is the same, and queues one for each:
the monitor's start-up makes six (focus, screen stack), ~60-90 ms of CPU each with 2,000
processes on 2 cores, taken from the first poll whose frame names them (and the last
delayed that frame itself). This one recomposes only when what compose() would show
changed: every input compose() reads is compared (`_shows_now`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from textual.containers import HorizontalGroup
from textual.widget import Widget
from textual.widgets import Footer

PALETTE_CLASS = "-command-palette"  # Footer's class for its docked ctrl+p key


class FittingFooter(Footer):
    # Compact, a group's label ("s S Sort") would touch the next key: give it the gap
    # every other key has.
    DEFAULT_CSS = """
    FittingFooter.-compact FooterLabel {
        margin: 0 1 0 0;
    }
    """

    def __init__(self, ranks: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id, compact=True)  # a cell less per key: room for two more keys
        self._ranks = {action: rank for rank, action in enumerate(ranks)}
        self._widths: dict[tuple[str, ...], int] = {}  # what an item shows -> its cells
        self._composed: tuple[object, ...] = ()  # _shows_now() at the last recompose

    async def recompose(self) -> None:
        shows = self._shows_now()
        if shows == self._composed and self.children:
            return  # the same keys: nothing to remove and mount again
        self._composed = shows
        await super().recompose()
        self.fit()

    def _shows_now(self) -> tuple[object, ...]:
        """Everything Footer.compose() reads, as values: the keys it would yield now."""
        if not self._bindings_ready or not self.is_attached:
            return ()
        app = self.app
        shown = tuple(
            (key, b.key, app.get_key_display(b), b.description, b.action, b.show, enabled,
             tooltip, b.tooltip, b.group)
            for key, (_, b, enabled, tooltip) in self.screen.active_bindings.items()
        )
        palette = (self.show_command_palette, app.ENABLE_COMMAND_PALETTE,
                   app.COMMAND_PALETTE_BINDING)
        return shown, palette, self.compact, self.combine_groups

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        """Show the keys that fit whole, by rank; hide the rest."""
        items = list(self._items())
        palette = [c for c in self.children if c.has_class(PALETTE_CLASS)]
        if not items or not self.size.width or not self._measured([*items, (palette, "")]):
            return
        room = self.size.width - (self._widths[_shows(palette)] if palette else 0)
        chosen: set[int] = set()
        ranked = sorted(range(len(items)), key=lambda i: self._ranks.get(items[i][1], 999))
        for index in ranked:
            width = self._widths[_shows(items[index][0])]
            if width <= room:
                chosen.add(index)
                room -= width
        for index, (widgets, _) in enumerate(items):
            for w in widgets:
                w.display = index in chosen

    def _measured(self, items: list[tuple[list[Widget], str]]) -> bool:
        """Remember the width of every item not measured before; False (and a fit again
        after the next refresh) while one is not laid out yet."""
        for widgets, _ in items:
            if not widgets or _shows(widgets) in self._widths:
                continue
            if not all(w.display and w.outer_size.width for w in widgets):
                for w in widgets:
                    w.display = True
                self.call_after_refresh(self.fit)
                return False
            self._widths[_shows(widgets)] = sum(
                w.outer_size.width + w.styles.margin.width for w in widgets
            )
        return True

    def shown_actions(self) -> list[str]:
        """The actions whose keys are on show, in footer order (for tests)."""
        return [action for widgets, action in self._items() if widgets[0].display]

    def _items(self) -> Iterator[tuple[list[Widget], str]]:
        """(widgets, action) per key or key group: a group is its keys' box and its label."""
        children = [c for c in self.children if not c.has_class(PALETTE_CLASS)]
        index = 0
        while index < len(children):
            child = children[index]
            if isinstance(child, HorizontalGroup):  # grouped keys, then the group's label
                keys = list(child.children)
                action = str(getattr(keys[0], "action", "")) if keys else ""
                yield children[index : index + 2], action
                index += 2
            else:
                yield [child], str(getattr(child, "action", ""))
                index += 1


def _shows(widgets: Sequence[Widget]) -> tuple[str, ...]:
    """What an item shows, as text: its width is a function of it."""
    shown: list[str] = []
    for widget in widgets:
        for part in (widget, *widget.children):
            shown += [
                type(part).__name__,
                str(getattr(part, "key_display", "")),
                str(getattr(part, "description", "")),
                str(getattr(part, "content", "")),
            ]
    return tuple(shown)
