"""An event in words and as JSON: `portscope watch` prints these, the TUI's event log shows
the same cells, so both tell one story."""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import text
from ..contracts import SCHEMAS
from ..kill.wording import uptime
from ..model import Holder
from ..untrusted import shown
from .events import ListenerEvent
from .trends import PortTrend


class EventTexts(NamedTuple):
    """Cells of one event, every one escaped: safe for a terminal and for a Text."""

    kind: str  # "listen", "unlisten", "holders", "restart"
    where: str  # "tcp 127.0.0.1:8080", "tcp6 [::1]:8080"
    what: str  # who, for how long, who restarted it, the command line


def where(event: ListenerEvent) -> str:
    proto = f"{event.proto}6" if event.family == "ipv6" else event.proto
    host = f"[{event.address}]" if event.family == "ipv6" else event.address
    return f"{proto} {shown(host)}:{event.port}"


def who(holders: tuple[Holder, ...]) -> str:
    """"PID 4242 (python3)", "PIDs 10,11,12 (gunicorn master +2)", or "a hidden owner"."""
    if not holders:
        return "a process portscope cannot see"
    noun = "PID" if len(holders) == 1 else "PIDs"
    return f"{noun} {text.pids_cell(holders)} ({text.process_cell(holders)})"


def _command(event: ListenerEvent) -> str:
    commands = [h for h in event.holders if h.cmdline]
    return f": {commands[0].command}" if commands else ""


def event_texts(event: ListenerEvent) -> EventTexts:
    what = ""
    if event.kind == "listen":
        early = ", already listening at start" if event.at_start else ""
        what = f"{who(event.holders)}{early}{_command(event)}"
    elif event.kind == "unlisten":
        span = uptime(0, event.listened_for or 0.0)
        after = f"after at least {span}" if event.at_start else f"after {span}"
        what = f"{who(event.holders)} stopped listening {after}"
    elif event.kind == "holders":
        was = text.pids_cell(event.previous) if event.previous else "none visible"
        what = f"now {who(event.holders)}, was {was}"
    else:
        was = text.pids_cell(event.previous) if event.previous else "?"
        by = event.restarted_by
        restarter = ""
        if by is not None:
            note = f", {shown(by.note)}" if by.note else ""
            restarter = f", restarted by PID {by.pid} ({shown(by.name)}{note})"
        what = f"{who(event.holders)} replaced {was}{restarter}{_command(event)}"
    return EventTexts(event.kind, where(event), what)


def event_line(event: ListenerEvent, clock: str) -> str:
    """One line for a terminal: "12:03:04  restart   tcp 127.0.0.1:8080  PID ...". """
    cells = event_texts(event)
    return f"{clock}  {cells.kind:<8}  {cells.where}  {cells.what}"


def event_json(event: ListenerEvent) -> dict[str, Any]:
    """The `portscope watch --json` contract: one object per line, raw strings."""
    data: dict[str, Any] = {
        "schema": SCHEMAS["watch"],
        "at": event.at.isoformat(timespec="milliseconds"),
        "event": event.kind,
        "proto": event.proto,
        "family": event.family,
        "address": event.address,
        "port": event.port,
        "pids": list(event.pids),
        "names": list(event.names),
    }
    if event.kind in ("listen", "unlisten"):
        data["at_start"] = event.at_start
    if event.kind == "unlisten":
        data["listened_for"] = round(event.listened_for or 0.0, 3)
    if event.kind in ("holders", "restart"):
        data["previous_pids"] = list(event.previous_pids)
    if event.kind == "restart":
        by = event.restarted_by
        data["restarted_by"] = None if by is None else {"pid": by.pid, "name": by.name}
    return data


def trend_summary(trend: PortTrend) -> str:
    """"TIME_WAIT 1,204 (peak 1,530 in the last 10 min), climbing 120/s; 20 closes/s over
    the last minute; live 35 (peak 80)": the details pane's words for a trend."""
    tw = trend.time_wait[-1]
    covered = trend.span + trend.step  # each sample stands for `step` seconds
    span = f"{round(covered / 60)} min" if covered >= 90 else f"{round(covered)} s"
    text = f"TIME_WAIT {tw:,} (peak {trend.peak_time_wait:,} in the last {span})"
    if trend.growth is not None and round(trend.growth) != 0:
        way = "climbing" if trend.growth > 0 else "draining"
        text += f", {way} {abs(trend.growth):,.0f}/s"
    if trend.close_rate is not None and tw:
        text += f"; {_rate(trend.close_rate)} closes/s over the last minute"
    text += f"; live {trend.live[-1]:,} (peak {trend.peak_live:,})"
    return text


def _rate(value: float) -> str:
    if 0 < value < 0.05:
        return "<0.1"  # one close in the last minute is not "0.0"
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"
