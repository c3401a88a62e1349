"""What each command's --help teaches besides its options: a one-line description (its line
in COMMANDS), two examples and its exit codes, in one place for every command.

Kept apart from the command modules so the help of every command reads alike, and applied
by build_parser to the one command parsed: the text costs nothing to the others.
"""

from __future__ import annotations

import argparse

# command -> (examples as (command line, what it does), exit codes as (code, meaning))
HELP: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "list": (
        (
            ("portscope list --port 8000-8010 --all", "every socket on those ports"),
            ("portscope list --user www-data --format csv", "a user's listeners, for a sheet"),
            ("portscope list --format plain | cut -f1", "the ports in use, one a line"),
        ),
        (("0", "listed (an empty list too)"), ("2", "bad input")),
    ),
    "check": (
        (
            ("portscope check 3000", "who holds 3000, and why a bind fails"),
            ("portscope check 3000 8080 8000-8010", "each port; a free one in one line"),
            ("portscope check 8080 --host localhost --json", "127.0.0.1 and ::1, as JSON "
             "(several ports: an array)"),
        ),
        (
            ("0", "a server can bind every port now (with --reuseaddr: one that sets "
             "SO_REUSEADDR)"),
            ("1", "it cannot bind one of them: in use, TIME_WAIT, privileged, excluded ..."),
            ("2", "bad input"),
        ),
    ),
    "wait": (
        (
            ("portscope kill 8000 && portscope wait 8000 --timeout 60", "until 8000 frees"),
            ("portscope wait db:5432 --listening --timeout 30", "until Postgres accepts"),
        ),
        (
            ("0", "the port is free (with --listening: it accepts connections)"),
            ("1", "timed out, or waiting cannot help (a privileged port, a foreign address)"),
            ("2", "bad input"),
        ),
    ),
    "kill": (
        (
            ("portscope kill 3000", "show who holds 3000, ask, stop it, prove it is free"),
            ("portscope kill 3000 8080 --dry-run", "the plans and the signals; nothing sent"),
            ("portscope kill 8080 --yes --timeout 10 --force", "no question; SIGKILL after 10 s"),
            ("portscope kill --pid 4242", "that process (asks first), then every port it "
             "held is checked"),
            ("portscope kill 22 --allow-system", "sshd, a system daemon, PID 1 or your own "
             "shell: refused without it"),
        ),
        (
            ("0", "every target exited and no process holds the ports afterwards"),
            ("1", "a target still runs or was refused, a port was taken again, or you "
             "said no"),
            ("2", "bad input, or no terminal to confirm on without --yes or --dry-run"),
            ("--dry-run", "0 if kill would act on every holder (or there is none), 1 if it "
             "would refuse one"),
        ),
    ),
    "watch": (
        (
            ("portscope watch", "print listeners as they appear and go"),
            ("portscope watch --port 8000 --json", "one JSON object a line, for a log"),
        ),
        (("0", "stopped by end of input"), ("130", "stopped by Ctrl+C"), ("2", "bad input")),
    ),
    "free": (
        (
            ("portscope free", "one port a server can bind now"),
            ("portscope free -n 3 --range 8000-8999 --json", "three in 8000-8999, as JSON"),
        ),
        (("0", "N ports found"), ("1", "fewer than N"), ("2", "bad input")),
    ),
    "run": (
        (
            ("portscope run --port 3000 --next -- npm run dev -- --port {port}",
             "3000, or the next free port"),
            ("portscope run --port 8000 --stop -- python -m http.server {port}",
             "stop what holds 8000 first"),
        ),
        (
            ("N", "COMMAND's own exit code (portscope becomes COMMAND)"),
            ("1", "the port is busy (no --next/--wait/--stop), the stop or the wait failed"),
            ("2", "bad input"),
            ("126/127", "COMMAND cannot be run / was not found"),
        ),
    ),
    "mcp": (
        (
            ("portscope mcp", "in an agent's MCP settings: list, check, free, wait; kill "
             "only shows plans"),
            ("portscope mcp --allow-kill", "kill acts too, on a second call that repeats "
             "its plan's id"),
        ),
        (
            ("0", "the client closed the connection"),
            ("2", "bad input, or the MCP SDK is missing (pip install 'portscope[mcp]')"),
        ),
    ),
    "export": (
        (
            ("portscope export", "serve http://127.0.0.1:9977/metrics, a poll every 5 s"),
            ("portscope export --listen 0.0.0.0:9977 --tls-cert cert.pem --tls-key key.pem",
             "for a Prometheus on another host, over HTTPS"),
            ("portscope export --textfile /var/lib/node_exporter/textfile/portscope.prom",
             "for node_exporter's textfile collector, rewritten every interval"),
            ("portscope export --print-rules > /etc/prometheus/rules/portscope.yml",
             "the alerting rules (--print-dashboard: the Grafana dashboard)"),
        ),
        (
            ("0", "stopped by SIGTERM, or --once and --print-* done"),
            ("1", "the address is taken, or the textfile cannot be written"),
            ("2", "bad input, or prometheus_client is missing (pip install "
             "'portscope[export]')"),
            ("130", "stopped by Ctrl+C"),
        ),
    ),
    "completion": (
        (
            ("portscope completion bash > ~/.local/share/bash-completion/completions/portscope",
             ""),
            ("portscope completion fish > ~/.config/fish/completions/portscope.fish", ""),
        ),
        (("0", "the script was printed"), ("2", "bad input")),
    ),
}


def epilog(command: str) -> str | None:
    found = HELP.get(command)
    if found is None:
        return None
    examples, codes = found
    lines = ["examples:"]
    for line, what in examples:
        lines.append(f"  {line}")
        if what:
            lines.append(f"      {what}")
    lines += ["", "exit codes:"]
    width = max(len(code) for code, _ in codes)
    lines += [f"  {code:<{width}}  {meaning}" for code, meaning in codes]
    return "\n".join(lines) + "\n"


def describe(parser: argparse.ArgumentParser, command: str, line: str) -> None:
    """Give `command`'s parser its description (the COMMANDS line) and epilog."""
    if parser.description is None:
        parser.description = line[0].upper() + line[1:] + "."
    if parser.epilog is None:
        parser.epilog = epilog(command)
