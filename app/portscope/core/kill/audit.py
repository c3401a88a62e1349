"""The audit trail: every signal and container stop that `kill` or `k` sends, appended as
one JSON line to `audit.log` in portscope's private directory (private_dir.py), so root
can see afterwards what was stopped, by whom, and on which evidence.

Written before the action (a crash between the two still leaves the intent on record) and
never in the way of it: a log that cannot be written is reported once on stderr by the CLI
and costs the kill nothing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from .. import private_dir
from ..roles import evidence
from .plan import KillPlan

FILE = "audit.log"


def record(plan: KillPlan, action: str, *, pid: int | None = None,
           container: str | None = None) -> str | None:
    """Log one action ("SIGTERM" to `pid`, "docker stop" of `container`); the log's path,
    or None if it could not be written."""
    entry: dict[str, object] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "by": _invoker(),
        "action": action,
        "port": plan.port,
        "proto": plan.proto,
        "how": plan.how,
    }
    if pid is not None:
        target = next((t for t in plan.targets if t.pid == pid), None)
        k = evidence.kernel(pid)
        entry["target"] = {
            "pid": pid,
            "started": target.started if target else None,
            "name": target.name if target else None,  # a claim, kept as the prompt showed it
            "exe": k.exe if k else None,
            "euid": k.euid if k else None,
            "user": evidence.user_name(k.euid if k else None),
        }
    if container is not None:
        entry["container"] = container
    stop = plan.stop
    if stop is not None:
        entry["why"] = stop.why
        entry["evidence"] = [f.as_json() for f in stop.evidence]
    try:
        return private_dir.append(FILE, json.dumps(entry, ensure_ascii=True) + "\n")
    except OSError:
        return None


def _invoker() -> dict[str, object]:
    """Who ran portscope: the kernel's uids, and sudo's word for the person behind root
    (SUDO_USER is the environment's claim, recorded as such)."""
    uid, euid = os.getuid(), os.geteuid()
    found: dict[str, object] = {"uid": uid, "euid": euid, "user": evidence.user_name(euid)}
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        found["sudo_user"] = sudo
    return found
