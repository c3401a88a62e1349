"""The shipped alerting rules and dashboard: `portscope export --print-rules` is the packaged
file, promtool accepts it, and promtool's rule unit test (alerts_test.yml, recorded series)
fires each alert when it should and not before; the dashboard is JSON whose queries use
only metrics the exporter serves and alerts the rules define."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from export.exporting import promtool
from portscope.cli.export_cmd import DASHBOARD, RULES

HERE = Path(__file__).resolve().parent


def printed(flag: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "portscope", "export", flag], capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def test_print_rules_writes_the_packaged_rules_and_promtool_accepts_them(tmp_path: Path) -> None:
    rules = printed("--print-rules")
    assert rules == RULES.read_text(encoding="utf-8")
    (tmp_path / "alerts.yml").write_text(rules)
    checked = promtool("check", "rules", str(tmp_path / "alerts.yml"))
    assert checked.returncode == 0, checked
    assert b"SUCCESS: 4 rules found" in checked.stdout


def test_the_rule_unit_test_fires_the_alerts_on_recorded_series(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(printed("--print-rules"))
    shutil.copy(HERE / "alerts_test.yml", tmp_path)
    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()
    assert b"SUCCESS" in tested.stdout


def test_the_rule_unit_test_can_fail(tmp_path: Path) -> None:
    """The unit test is no rubber stamp: a threshold of 80 % leaves it failing."""
    rules = printed("--print-rules").replace("> 0.7\n", "> 0.8\n")
    (tmp_path / "alerts.yml").write_text(rules)
    shutil.copy(HERE / "alerts_test.yml", tmp_path)
    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0
    assert b"alertname: PortscopeEphemeralPortsExhausting" in tested.stdout + tested.stderr


SERVED = {
    "portscope_listeners", "portscope_listener_processes", "portscope_listener_info",
    "portscope_time_wait_sockets", "portscope_time_wait_clears_seconds",
    "portscope_client_time_wait_sockets", "portscope_ephemeral_ports_used",
    "portscope_ephemeral_port_range_size", "portscope_listener_events_total",
    "portscope_listener_restarts_total", "portscope_hidden_sockets",
    "portscope_collect_duration_seconds_bucket", "portscope_collect_errors_total",
}


def test_the_dashboard_uses_served_metrics_and_the_shipped_alerts() -> None:
    text = printed("--print-dashboard")
    assert text == DASHBOARD.read_text(encoding="utf-8")
    dashboard = json.loads(text)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bportscope_\w+", e)}
    assert used <= SERVED, used - SERVED
    assert len(used) >= 10
    rules = RULES.read_text(encoding="utf-8")
    alerts = set(re.findall(r"alert: (\w+)", rules))
    [firing] = [e for e in exprs if e.startswith("ALERTS")]
    pattern = re.search(r'alertname=~"([^"]+)"', firing)
    assert pattern is not None and all(re.fullmatch(pattern.group(1), a) for a in alerts)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
