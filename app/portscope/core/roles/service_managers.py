"""Service managers above a holder (pm2, supervisord, runit, s6) restart what they run, so
the plan is their own stop command, confirmed by their own interface and printed only when
every part passed commands.py; `kill` signals nothing for it.

- pm2: PM2_HOME is read from the daemon's environment (a claim) and counts when the daemon
  holds PM2_HOME/rpc.sock (a kernel fact: pm2 jlist then talks to it rather than starting
  a new daemon); `pm2 jlist`, run as the daemon's user, names the app whose pid is in the
  chain (fork mode) or the one cluster app whose workers are the daemon's children
  (cluster mode: the daemon holds the socket itself, and signalling it would stop every
  pm2 app, so it is never signalled, confirmed or not).
- supervisord: `supervisorctl [-c CONF] status` (CONF from its own argv), run as its user,
  lists a PID of the chain; the name comes from there, never from SUPERVISOR_PROCESS_NAME.
- runit and s6: the supervisor runs in its service directory; `sv status` / `s6-svstat`
  confirm where they are installed.

A manager that signals only its own program leaves the server running when a wrapper
(`bash -c "server; ..."`) sits between: the command then stops the server too.
"""

from __future__ import annotations

import json
import os
import re

from ..model import Proto
from ..untrusted import shown
from . import commands as cmd
from .evidence import Fact, Kernel
from .managers import (
    RESTART_DELAY,
    SERVICE,
    KernelFacts,
    Manager,
    binary_agrees,
    chain_manager,
    facts_of,
    manager_facts,
    master_above,
    may_control,
    option,
    recognise,
    script_of,
    tops,
    user_name,
)
from .model import Role, StopPlan
from .procs import ProcessView, ProcInfo

# `supervisorctl status`: "web   RUNNING   pid 123, uptime 0:00:05" (a group: "grp:web").
_STATUS = re.compile(r"^(\S+)\s+(?:RUNNING|STARTING|STOPPING|BACKOFF)\s+pid (\d+)\b", re.M)
_SV_PID = re.compile(r"\(pid (\d+)\)")


def service_plan(
    infos: dict[int, ProcInfo], port: int, proto: Proto, view: ProcessView,
    roles: dict[int, Role],
) -> StopPlan | None:
    """pm2, supervisord, runit or s6 above (or, pm2 cluster mode, holding) the socket,
    confirmed: stop it through the manager. None: no confirmed service manager."""
    facts = facts_of(view)
    for top in tops(infos):
        k_top = facts.kernel(top.pid) if facts is not None else None
        if recognise(top) == "pm2" and (k_top is None or binary_agrees("pm2", k_top)):
            # Restraint needs no proof: a holder that only claims to be pm2's daemon is
            # not signalled either (the kernel saying it is not node is what clears it).
            return _pm2_cluster(top, k_top, view, facts, roles)
        if facts is None:
            continue
        start = master_above(top, infos, view, facts) or top.pid
        m = chain_manager(start, view, facts)
        if m is None or m.kind not in SERVICE or m.kernel is None:
            continue
        if not binary_agrees(m.kind, m.kernel) or not may_control(m.kernel, k_top):
            continue
        plan = _SERVICE_PLANS[m.kind](m, top.pid, view, facts)
        if plan is not None:
            roles[m.pid] = Role(m.pid, "supervisor", m.kind, False, m.info.ppid, m.info.started,
                                m.kind)
            return plan
    return None


def _pm2_home(d: ProcInfo, view: ProcessView) -> str | None:
    home = view.environ(d.pid, "PM2_HOME")
    if home is None:  # "PM2 v5.4.2: God Daemon (/home/a/.pm2)", unless cut short
        found = re.search(r"God Daemon \((/[^)]*)\)", " ".join(a for a in d.argv if a))
        home = found.group(1) if found else None
    return home


def _pm2_apps(
    d: ProcInfo, k: Kernel, view: ProcessView, facts: KernelFacts
) -> tuple[str, list[dict[str, object]], list[Fact]] | str:
    """(PM2_HOME, apps of `pm2 jlist`, facts) confirmed by the daemon itself, or why not."""
    home = _pm2_home(d, view)
    if home is None or not os.path.isabs(home):
        return "its PM2_HOME is unknown"
    sock = os.path.join(home, "rpc.sock")
    # The daemon listening on PM2_HOME/rpc.sock (a kernel fact) makes the environment's
    # claim true, and means pm2 jlist talks to it rather than starting a new daemon.
    if sock not in facts.unix_listening(d.pid):
        return f"it does not hold {shown(sock)}"
    if k.euid is None or k.egid is None:
        return "its user is unknown"
    path = view.environ(d.pid, "PATH") if k.euid != 0 else None
    pm2 = facts.tool("pm2", None, path, k.euid)
    if pm2 is None:
        return "pm2 is not installed where portscope may run it"
    answer = facts.ask([pm2, "jlist"], k.euid, k.egid, {"PM2_HOME": home})
    apps = _json_list(answer)
    if apps is None:
        return "pm2 jlist did not answer"
    return home, apps, [Fact(d.pid, "socket", sock, user_name(k.euid))]


def _json_list(text: str | None) -> list[dict[str, object]] | None:
    """The JSON list in pm2's answer, after any "[PM2][WARN] ..." lines it prints first."""
    if text is None:
        return None
    decoder = json.JSONDecoder()
    at = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            try:
                found, _ = decoder.raw_decode(text, at)
            except ValueError:
                found = None
            if isinstance(found, list):
                return [a for a in found if isinstance(a, dict)]
        at += len(line)
    return None


def _pm2_env(app: dict[str, object]) -> dict[str, object]:
    env = app.get("pm2_env")
    return env if isinstance(env, dict) else {}


def _pm2_watch(app: dict[str, object]) -> float:
    delay = _pm2_env(app).get("restart_delay")
    ms = float(delay) if isinstance(delay, (int, float)) else 0.0
    return RESTART_DELAY["pm2"] + ms / 1000 + 1.0


def _pm2_fork(m: Manager, holder: int, view: ProcessView, facts: KernelFacts) -> StopPlan | None:
    assert m.kernel is not None
    confirmed = _pm2_apps(m.info, m.kernel, view, facts)
    if isinstance(confirmed, str):
        return None  # unconfirmed: the signal plan says so (controller)
    home, apps, evidence = confirmed
    app = next((a for a in apps if a.get("pid") in m.below), None)
    if app is None:
        return None
    name = str(app.get("name", ""))
    evidence = [*manager_facts(m, holder), *evidence,
                Fact(m.pid, "interface", f"pm2 jlist: {name} pid {app.get('pid')}")]
    command = _pm2_command(home, name, m.kernel)
    why = (
        f"pm2 (PID {m.pid}) runs it as the app {shown(name)} and starts it again when it "
        "exits: stop it through pm2"
    )
    return StopPlan("service", (), command, why + _unprintable(command),
                    evidence=tuple(evidence), watch=_pm2_watch(app))


def _pm2_cluster(
    d: ProcInfo, k: Kernel | None, view: ProcessView, facts: KernelFacts | None,
    roles: dict[int, Role],
) -> StopPlan:
    """The pm2 daemon holds the socket itself (cluster mode): signalling it stops every pm2
    app, so this is always a service plan, confirmed or not."""
    roles[d.pid] = Role(d.pid, "supervisor", "pm2", True, d.ppid, d.started,
                        "pm2 daemon (cluster mode)")
    danger = (
        f"the pm2 daemon (PID {d.pid}) holds the socket itself (cluster mode): signalling it "
        "would stop every pm2 app"
    )
    confirmed = (
        _pm2_apps(d, k, view, facts) if k is not None and facts is not None
        else "no kernel facts here"
    )
    if isinstance(confirmed, str):
        home = cmd.safe_path(_pm2_home(d, view))
        command = cmd.with_env("PM2_HOME", home, cmd.command("pm2", "list"))
        return StopPlan(
            "service", (), command,
            f"{danger}; portscope could not confirm which app ({confirmed}): find it in "
            "pm2 list and stop it with pm2 stop",
            evidence=() if k is None else (
                k.exe_fact(), k.euid_fact(), Fact(d.pid, "holder", "holds the socket")
            ),
        )
    home, apps, evidence = confirmed
    assert k is not None  # confirmed only with kernel facts
    workers = set(view.children(d.pid))
    cluster = [a for a in apps if _pm2_env(a).get("exec_mode") == "cluster_mode"
               and a.get("pid") in workers]
    names = sorted({str(a.get("name", "")) for a in cluster})
    fact = [k.exe_fact(), k.euid_fact(), Fact(d.pid, "holder", "holds the listening socket"),
            *evidence]
    if len(names) != 1:
        listed = ", ".join(shown(n) for n in names) or "none"
        command = cmd.with_env("PM2_HOME", cmd.safe_path(home), cmd.command("pm2", "list"))
        return StopPlan(
            "service", (), command,
            f"{danger}; pm2 runs {len(names)} cluster apps ({listed}) and any of them may own "
            "this port: find it in pm2 list and stop that one with pm2 stop",
            evidence=tuple(fact),
        )
    name = names[0]
    pids = sorted(int(str(a.get("pid"))) for a in cluster)
    fact.append(Fact(d.pid, "interface",
                     f"pm2 jlist: {name} cluster workers {', '.join(map(str, pids))}"))
    command = _pm2_command(home, name, k)
    why = f"{danger}; the port is the cluster app {shown(name)}'s: stop it through pm2"
    app = next(a for a in cluster)
    return StopPlan("service", (), command, why + _unprintable(command), evidence=tuple(fact),
                    watch=_pm2_watch(app))


def _pm2_command(home: str, name: str, k: Kernel) -> str | None:
    home_ok, name_ok = cmd.safe_path(home), cmd.safe_name(name)
    if k.euid is not None and k.euid != invoker():
        env = f"PM2_HOME={home_ok}" if home_ok else None
        return cmd.command("sudo", "-u", _sudo_user(k.euid), "env", env, "pm2", "stop", name_ok)
    return cmd.with_env("PM2_HOME", home_ok, cmd.command("pm2", "stop", name_ok))


def _supervisord(
    m: Manager, holder: int, view: ProcessView, facts: KernelFacts
) -> StopPlan | None:
    """Confirmed by `supervisorctl [-c CONF] status` (run as supervisord's user) listing a
    PID of the chain under that very name; the name comes from there, never from the
    program's SUPERVISOR_PROCESS_NAME."""
    k = m.kernel
    assert k is not None
    if k.euid is None or k.egid is None:
        return None
    argv = list(m.info.argv)
    conf = option(argv, "-c", "--configuration")
    if conf is not None and not os.path.isabs(conf):
        conf = os.path.normpath(os.path.join(m.info.cwd, conf)) if m.info.cwd else None
        if conf is None:
            return None
    _, script = script_of(argv)
    path = view.environ(m.pid, "PATH") if k.euid != 0 else None
    ctl = facts.tool("supervisorctl", script or None, path, k.euid)
    if ctl is None:
        return None
    where = ["-c", conf] if conf is not None else []
    answer = facts.ask([ctl, *where, "status"], k.euid, k.egid, {})
    if answer is None:
        return None
    found = next(((n, int(p)) for n, p in _STATUS.findall(answer) if int(p) in m.below), None)
    if found is None:
        return None
    name, pid = found
    stop = ["-c", cmd.safe_path(conf)] if conf is not None else []
    command = _and_leftover(
        _as_user(k, cmd.command("supervisorctl", *stop, "stop", cmd.safe_name(name))), m, pid
    )
    evidence = (*manager_facts(m, holder),
                Fact(m.pid, "interface", f"supervisorctl status: {name} RUNNING pid {pid}"))
    why = (
        f"supervisord (PID {m.pid}) runs it as the program {shown(name)} and starts it again "
        "when it exits: stop it through supervisorctl" + _wrapper_note(m, pid)
    )
    return StopPlan("service", (), command, why + _unprintable(command), evidence=evidence,
                    watch=RESTART_DELAY["supervisord"] + 1.0)


def _service_dir(
    m: Manager, holder: int, view: ProcessView, facts: KernelFacts
) -> StopPlan | None:
    """runsv and s6-supervise run in their service directory (their cwd): `sv down DIR`,
    `s6-svc -d DIR`, confirmed by `sv status` / `s6-svstat` naming a PID of the chain
    where the tool is there to ask."""
    k = m.kernel
    assert k is not None
    where = m.info.cwd
    if not where and m.info.argv[1:]:
        where = m.info.argv[1] if os.path.isabs(m.info.argv[1]) else None
    name = "sv" if m.kind == "runit" else "s6-svc"
    status = "sv" if m.kind == "runit" else "s6-svstat"
    evidence = manager_facts(m, holder)
    tool = facts.tool(status, None, None, 0) if k.euid is not None and where else None
    if tool is not None and k.euid is not None and k.egid is not None and where:
        answer = facts.ask([tool, "status", where] if m.kind == "runit" else [tool, where],
                           k.euid, k.egid, {})
        pids = [int(p) for p in _SV_PID.findall(answer or "")]
        if not any(p in m.below for p in pids):
            return None
        evidence.append(Fact(m.pid, "interface",
                             f"{status}: {shown(where)} pid {', '.join(map(str, pids))}"))
    stop = ["down"] if m.kind == "runit" else ["-d"]
    run = m.below[-1] if m.below else holder
    command = _and_leftover(_as_user(k, cmd.command(name, *stop, cmd.safe_path(where))), m, run)
    manager = "runit" if m.kind == "runit" else "s6"
    why = (
        f"{manager}'s supervisor (PID {m.pid}) starts it again when it exits: take the "
        "service down" + _wrapper_note(m, run)
    )
    return StopPlan("service", (), command, why + _unprintable(command),
                    evidence=tuple(evidence), watch=RESTART_DELAY[m.kind] + 1.0)


_SERVICE_PLANS = {
    "pm2": _pm2_fork, "supervisord": _supervisord, "runit": _service_dir, "s6": _service_dir,
}


def _and_leftover(command: str | None, m: Manager, program: int) -> str | None:
    """The manager signals only the program it started: a wrapper between it and the server
    (`bash -c "server; ..."`) dies and leaves the server holding the port (checked with
    supervisord). Then the command also stops the server, once the manager has let go."""
    server = m.below[0]
    if command is None or program == server:
        return command
    return f"{command} && {cmd.command('kill', str(server))}"


def _wrapper_note(m: Manager, program: int) -> str:
    server = m.below[0]
    if program == server:
        return ""
    return (
        f"; it signals only its program (PID {program}), a wrapper that would leave the "
        f"server (PID {server}) holding the port, so the command stops that too"
    )


def _unprintable(command: str | None) -> str:
    return "" if command else (
        " (its name or path holds characters a shell would interpret, so no command is "
        "printed: use the manager's own tools)"
    )


def _as_user(k: Kernel, command: str | None) -> str | None:
    """The command as the manager's user when that is not who runs portscope."""
    if command is None or k.euid is None or k.euid == invoker():
        return command
    prefix = cmd.command("sudo") if k.euid == 0 else cmd.command("sudo", "-u", _sudo_user(k.euid))
    return f"{prefix} {command}" if prefix else None


def _sudo_user(uid: int) -> str:
    """sudo's name for a user: the login name, or "#UID" for a user passwd does not know."""
    return cmd.safe_name(user_name(uid)) or f"#{uid}"


def invoker() -> int:
    """Who runs portscope (and so would run a printed command)."""
    return os.geteuid()
