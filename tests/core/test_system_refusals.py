"""The system-process rules of core/kill/refusals.py on kernel facts as /proc gives them
(what each rule rests on, and what must not trigger it); the real processes are in
tests/roles/test_system_refusals_real.py."""

from __future__ import annotations

import os

from portscope.core.kill.refusals import (
    fixed_refusal,
    process_refusal,
    step_up_refusal,
    system_refusal,
)
from portscope.core.roles.evidence import Kernel

V2 = ["0::/system.slice/nginx.service"]
HYBRID = ["9:name=systemd:/system.slice/system-getty.slice/getty@tty1.service", "0::/"]


def kernel(*, exe: str = "/usr/sbin/nginx", trusted: bool = True, ppid: int = 1,
           uid: int = 0) -> Kernel:
    return Kernel(pid=640, ppid=ppid, ruid=uid, euid=uid, egid=uid, groups=(), exe=exe,
                  exe_uid=0 if trusted else 1000, exe_trusted=trusted)


def test_sshd_is_told_by_its_trusted_binary_not_its_name() -> None:
    sshd = kernel(exe="/usr/sbin/sshd", ppid=4000)
    reason = system_refusal(640, kernel=sshd, cgroups=["0::/"])
    assert reason is not None and "(rule: sshd; --allow-system signals it)" in reason
    session = kernel(exe="/usr/lib/openssh/sshd-session", ppid=4000)
    assert system_refusal(640, kernel=session, cgroups=["0::/"]) is not None
    forged = kernel(exe="/tmp/sshd", trusted=False, ppid=4000, uid=1000)  # a user's copy
    assert system_refusal(640, kernel=forged, cgroups=["0::/"]) is None
    assert system_refusal(640, kernel=sshd, cgroups=[], allow_system=True) is None


def test_an_init_managed_system_daemon_is_refused() -> None:
    reason = system_refusal(640, kernel=kernel(), cgroups=V2)
    assert reason is not None
    assert "started by init (parent PID 1), runs as root, in the system unit nginx.service" in (
        reason
    )
    assert "(rule: init-managed system daemons; --allow-system signals it)" in reason
    www = system_refusal(640, kernel=kernel(uid=33), cgroups=V2)
    assert www is not None and "runs as the system account" in www
    nested = system_refusal(640, kernel=kernel(), cgroups=HYBRID)  # v1's name=systemd line
    assert nested is not None and "getty@tty1.service" in nested


def test_what_is_not_a_system_daemon() -> None:
    orphan = kernel()  # `server &` from a script: parent PID 1, root, no system unit
    assert system_refusal(640, kernel=orphan, cgroups=["0::/"]) is None
    session = ["0::/user.slice/user-1000.slice/session-3.scope"]  # sudo in a terminal
    assert system_refusal(640, kernel=orphan, cgroups=session) is None
    user_unit = ["0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service"]
    assert system_refusal(640, kernel=kernel(uid=1000), cgroups=user_unit) is None
    assert system_refusal(640, kernel=kernel(uid=1000), cgroups=V2) is None  # a user's uid
    assert system_refusal(640, kernel=kernel(ppid=812), cgroups=V2) is None  # not init's
    scope = ["0::/system.slice/docker-0123abcd.scope"]
    assert system_refusal(640, kernel=orphan, cgroups=scope) is None
    assert system_refusal(640, kernel=kernel(), cgroups=V2, allow_system=True) is None


def test_allow_system_lifts_pid_1_and_the_session_but_never_portscope_or_threads() -> None:
    protected = frozenset({os.getpid(), os.getppid()})
    assert "rule: PID 1" in (fixed_refusal(1, protected) or "")
    assert "rule: portscope's own session" in (fixed_refusal(os.getppid(), protected) or "")
    assert fixed_refusal(1, protected, allow_system=True) is None
    assert fixed_refusal(os.getppid(), protected, allow_system=True) is None
    assert "portscope itself" in (fixed_refusal(os.getpid(), protected, allow_system=True)
                                  or "")
    assert fixed_refusal(0, protected, allow_system=True) is not None
    assert "never signalled" in (process_refusal(99, 2, 1.0, 1.0) or "")


def test_a_root_process_on_another_users_socket_is_a_step_up() -> None:
    root = kernel(ppid=300)
    reason = step_up_refusal(640, [1000], kernel=root)
    assert reason is not None and "(rule: no privilege step up" in reason
    assert step_up_refusal(640, [1000], kernel=root, allow_system=True) is None
    assert step_up_refusal(640, [0], kernel=root) is None  # root's own socket
    # Unknown creator (the portable path, psutil): only a root process that the caller of
    # portscope started (this test, under pytest's caller) is signalled; PID 1 never is.
    assert step_up_refusal(os.getpid(), [None], kernel=root) is None
    unknown = step_up_refusal(1, [None], kernel=root)
    assert unknown is not None and "does not say who created its socket" in unknown
    assert step_up_refusal(640, [1000], kernel=kernel(uid=1000)) is None  # not root
