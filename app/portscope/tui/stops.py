"""The stop plan of the selected row, for the details pane: looked up in a worker thread
when the row is selected (it reads parents and environments, like `check`), never per poll.
Frozen tests and screenshots use `from_holders`, which reads nothing."""

from __future__ import annotations

from collections.abc import Callable

from ..core.model import Snapshot
from ..core.roles.cast import holders_only
from ..core.roles.model import Cast
from ..core.roles.port import cast_port
from .rows import TableRow

StopLookup = Callable[[Snapshot, TableRow], Cast]


def live_stop(snapshot: Snapshot, row: TableRow) -> Cast:
    return cast_port(snapshot, row.port, row.proto, only=[h.identity for h in row.holders])


def from_holders(snapshot: Snapshot, row: TableRow) -> Cast:
    return cast_port(
        snapshot, row.port, row.proto, view=holders_only(),
        only=[h.identity for h in row.holders],
    )
