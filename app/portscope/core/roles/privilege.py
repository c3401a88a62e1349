"""Processes portscope does not signal unless `--allow-system`, decided where the stop plan
is made, so `check` advises what `kill` does.

Never a privilege step up: a socket can be handed to any process over a unix socket
(SCM_RIGHTS: D-Bus activation, systemd's fd store, any fd-passing daemon), so a user can
make a root daemon hold their listener. The socket's creator uid (sock_diag's `idiag_uid`,
/proc/net/tcp's uid column: the fsuid at `socket()`) survives the passing and cannot be
forged; a process's effective uid is the kernel's too. A root target on a port whose every
socket another user created is therefore withheld. Privilege-dropping servers (nginx: root
creates the socket, workers run as www-data) are untouched: the socket is root's.

System processes: sshd, told by the binary the kernel runs (root's, from a root-only
directory), never by its name; and init-managed system daemons, by their parent (PID 1)
and their uids. Their cgroup (a name, so a claim) only narrows the rule to units of
systemd's system manager, where only root can place a process: at worst a forger protects
their own process from portscope, which --allow-system undoes.

On the portable path (psutil: macOS, Windows, Linux with PORTSCOPE_PORTABLE) no socket's
creator is known, so the step-up rule cannot be proven either way. A root target is then
signalled only when the kernel's parent chain shows this very portscope's caller started
it (the shell or process portscope runs under, seen through sudo, is its ancestor): a
user cannot make a root process descend from someone else's shell. Any other root target
is withheld, with --allow-system to signal it anyway. There are no cgroups on that path,
so the init-managed daemon rule does not apply there (as on macOS and Windows); the sshd
rule, which rests on the binary, does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ..record import replace
from ..untrusted import shown
from . import evidence
from .cast import kill_command
from .model import Cast
from .procs import ProcessView

SYSTEM_UID_MAX = 999  # login.defs' SYS_UID_MAX: uids below 1000 are system accounts
NOBODY = 65534  # the daemons' unprivileged account, a system one too
# OpenSSH's daemon, and the per-connection binaries it execs since 9.8 (sshd-session) and
# 10.0 (sshd-auth): signalling any of them cuts off remote logins.
SSHD = frozenset({"sshd", "sshd-session", "sshd-auth"})
# Root-owned programs that run portscope for a person: their caller is that person's.
ELEVATORS = frozenset({"sudo", "doas", "su", "run0", "pkexec"})
ALLOW = "--allow-system signals it"


def withhold(
    cast: Cast,
    socket_uids: Mapping[int, Iterable[int | None]],
    view: ProcessView,
    *,
    allow_system: bool = False,
) -> Cast:
    """`cast` with the targets these rules protect moved from the plan to `withheld`.
    `socket_uids`: for each holder PID, the creator uids of the port's sockets it holds."""
    plan = cast.plan
    if plan.how != "signal" or not plan.pids or allow_system:
        return cast
    creators = [u for uids in socket_uids.values() for u in uids]
    withheld: list[tuple[int, str]] = []
    facts: list[evidence.Fact] = []
    for pid in plan.pids:
        k = evidence.kernel(pid)
        if k is None:
            continue
        system = system_refusal(pid, kernel=k)
        step_up = None if system else step_up_refusal(pid, creators, kernel=k)
        if system is None and step_up is None:
            continue
        withheld.append((pid, system or step_up or ""))
        facts += [k.exe_fact(), k.euid_fact()]
        if step_up is not None:  # the sockets' creators are what it rests on
            uids = sorted({c for c in creators if c is not None})
            facts += [evidence.Fact(None, "socket_uid", str(u)) for u in uids] or [
                evidence.Fact(None, "socket_uid", "?")  # unknown here: that is the reason
            ]
    if not withheld:
        return cast
    gone = {pid for pid, _ in withheld}
    # Holders that were to stop with a withheld master (a fork of it) are the user's own
    # processes on the user's socket: they become targets themselves.
    promoted = tuple(p for p in plan.followers
                     if (k := evidence.kernel(p)) and k.euid != 0 and not system_refusal(p))
    kept = (*(p for p in plan.pids if p not in gone), *promoted)
    why = "; ".join([plan.why, *(r for _, r in withheld)]) if plan.why else withheld[0][1]
    return replace(
        cast,
        plan=replace(
            plan, pids=kept, command=kill_command(kept, view) if kept else None, why=why,
            withheld=tuple(withheld),
            followers=tuple(p for p in plan.followers if p not in gone and p not in promoted),
            evidence=(*plan.evidence, *facts),
        ),
    )


def system_refusal(
    pid: int, *, allow_system: bool = False, kernel: evidence.Kernel | None = None,
    cgroups: Iterable[str] | None = None,
) -> str | None:
    """sshd (by the binary the kernel runs) and init-managed system daemons, unless
    `allow_system`. `kernel` and `cgroups` (the lines of /proc/PID/cgroup): for tests."""
    if allow_system:
        return None
    k = kernel if kernel is not None else evidence.kernel(pid)
    if k is None:
        return None
    if k.program in SSHD and k.exe_trusted:
        return (
            f"PID {pid} is the SSH server ({shown(k.exe)}, root's): stopping it can cut off "
            f"remote logins, this one too (rule: sshd; {ALLOW})"
        )
    unit = system_unit(k, _cgroup_lines(pid) if cgroups is None else cgroups)
    if unit is None:
        return None
    account = "root" if k.euid == 0 else f"the system account {_user(k.euid)}"
    return (
        f"PID {pid} is a system daemon: started by init (parent PID 1), runs as {account}, "
        f"in the system unit {shown(unit)}; stop the unit with the service manager "
        f"(rule: init-managed system daemons; {ALLOW})"
    )


def system_unit(k: evidence.Kernel, cgroups: Iterable[str]) -> str | None:
    """The systemd system unit of an init-managed daemon, or None: its kernel parent is
    PID 1, its real and effective uids are system ones, and its cgroup (v2, or v1's
    name=systemd) is a `.service` under /system.slice."""
    if k.ppid != 1 or not (_system_uid(k.ruid) and _system_uid(k.euid)):
        return None
    from .services import systemd_unit

    for line in cgroups:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not ((hierarchy == "0" and controllers == "") or controllers == "name=systemd"):
            continue
        found = systemd_unit(path) if path.startswith("/system.slice/") else None
        if found is not None and not found[1]:
            return found[0]
    return None


def step_up_refusal(
    pid: int, creators: Iterable[int | None], *, allow_system: bool = False,
    kernel: evidence.Kernel | None = None,
) -> str | None:
    """The privilege rule of roles/privilege.py for a process named by PID: a root process
    whose sockets on the ports were all created by other users is not signalled unless
    `allow_system`. `creators`: the creator uids of those sockets."""
    uids = set(creators)
    if allow_system or not uids or 0 in uids:
        return None
    k = kernel if kernel is not None else evidence.kernel(pid)
    if k is None or k.euid != 0:
        return None
    if None in uids:  # the portable path: who created the socket is unknown
        if started_by_caller(pid):
            return None
        return (
            f"PID {pid} runs as root and this platform does not say who created its "
            "socket, nor did the shell that runs portscope start it: portscope does not "
            "signal a root process it cannot prove holds root's own socket (rule: no "
            f"privilege step up; {ALLOW})"
        )
    owners = ", ".join(f"uid {u} ({_user(u)})" for u in sorted(u for u in uids if u))
    return (
        f"PID {pid} runs as root but its socket was created by {owners}: portscope does not "
        f"signal a root process on another user's behalf (rule: no privilege step up; {ALLOW})"
    )


def started_by_caller(pid: int) -> bool:
    """Is `pid` the process that runs portscope (its parent, or the caller of sudo and the
    like when that parent is their root-owned binary), or its descendant? Kernel facts only:
    the parent chain and the binaries the kernel runs."""
    caller = os.getppid()
    for _ in range(4):  # sudo may run portscope from a second sudo (use_pty)
        k = evidence.kernel(caller)
        if k is None or not (k.program in ELEVATORS and k.exe_trusted and k.ppid):
            break
        caller = k.ppid
    return caller > 1 and (pid == caller or caller in evidence.ancestors(pid))


def _system_uid(uid: int | None) -> bool:
    return uid is not None and (uid <= SYSTEM_UID_MAX or uid == NOBODY)


def _cgroup_lines(pid: int) -> list[str]:
    from .. import platform_path

    if not platform_path.linux_proc():
        return []
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read(65536).splitlines()
    except OSError:
        return []


def _user(uid: int | None) -> str:
    from ..text import user_of

    name = user_of(uid)
    return shown(name) if name else str(uid)


