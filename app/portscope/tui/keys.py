"""The main screen's keys: the bindings, and the words the command palette and the help
screen give each one (the footer shows the bindings' short descriptions).

Pairs share a footer group ("s S Sort"), so the footer keeps room for every key on a
120-column screen; the footer drops whole keys, least needed first (footer.py), on a
narrower one. `p` is two bindings, Pause and Resume, of which the screen enables one.
"""

from __future__ import annotations

from textual.binding import Binding

SORT = Binding.Group("Sort")
COPY = Binding.Group("Copy")
KILL = Binding.Group("Kill")

MAIN_BINDINGS: list[Binding] = [
    # priority: run before the keys typed after it are routed, so "/8080" typed fast
    # (or pasted) all lands in the filter input.
    Binding("slash", "filter", "Filter", key_display="/", priority=True, id="main.filter"),
    Binding("s", "cycle_sort", "Sort", id="main.sort", group=SORT),
    Binding("S", "reverse_sort", "Reverse sort", id="main.reverse_sort", group=SORT),
    Binding("t", "cycle_proto", "TCP/UDP", id="main.proto"),
    Binding("a", "all_sockets", "Sockets", id="main.all_sockets"),
    Binding("c", "copy_pids", "Copy PID", id="main.copy_pids", group=COPY),
    Binding("C", "copy_command", "Copy command line", id="main.copy_command", group=COPY),
    Binding("p", "pause", "Pause", id="main.pause"),
    Binding("p", "resume", "Resume", id="main.resume"),
    Binding("r", "refresh", "Refresh", id="main.refresh"),
    Binding("b", "bind_test", "Bind test", id="main.bind_test"),
    Binding("k", "kill", "Kill", id="main.kill", group=KILL),
    Binding("K", "force_kill", "Force kill", id="main.force_kill", group=KILL),
    Binding("e", "events", "Events", id="main.events"),
    Binding("escape", "clear_filter", "Clear filter", show=False, id="main.clear_filter"),
    Binding("question_mark", "help", "Help", key_display="?", id="main.help"),
]

# What each key does, in the command palette (under its name, as Textual describes its own
# "Theme" and "Quit") and in the help screen.
ACTION_HELP: dict[str, str] = {
    "filter": "Show only the rows that match: a port (8080 or :8080), a range (8000-8100), "
              "a prefix (80*), user:NAME, pid:N or part of a process name",
    "cycle_sort": "Sort by the next column: port, process, TIME_WAIT, PID, user (or click a "
                  "column's header)",
    "reverse_sort": "Reverse the sort order (or click the sorted column's header again)",
    "cycle_proto": "Show TCP and UDP, TCP only, or UDP only",
    "all_sockets": "Show every socket of the selected port in the details: listeners, "
                   "established, close-wait, TIME_WAIT (again to go back)",
    "copy_pids": "Copy the selected row's PIDs to the clipboard",
    "copy_command": "Copy the command line of the selected row's process to the clipboard",
    "pause": "Pause: hold the table still; polls taken meanwhile wait until you resume",
    "resume": "Resume: show the newest poll and poll on the interval again",
    "refresh": "Refresh now rather than at the next poll (also while paused)",
    "bind_test": "Test whether a server could bind the selected port now, and why not",
    "kill": "Kill what holds the selected port: SIGTERM, then SIGKILL only if you agree "
            "(asks first)",
    "force_kill": "Force-kill what holds the selected port with SIGKILL: it cannot clean up "
                  "(asks first)",
    "events": "List the listeners that appeared, stopped or came back under a new PID",
    "help": "Help: the keys, the filter's words and what the columns mean",
    "quit": "Quit portscope",
}

# The footer's keys by need, most needed first: a narrow footer shows what fits of these,
# whole, in their usual order (footer.py). Help stays while anything fits: it lists the rest.
FOOTER_RANKS: tuple[str, ...] = (
    "help", "quit", "filter", "pause", "resume", "kill", "force_kill", "cycle_sort",
    "reverse_sort", "bind_test", "refresh", "cycle_proto", "all_sockets", "copy_pids",
    "copy_command", "events",
)
