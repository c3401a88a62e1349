"""A shell is a restarter only when a loop runs the server's program: read from the
structure of its `-c` text or script (core/roles/shell_script.py), never from a word that
merely appears in it (issue 17, "roles from structure, not words")."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscope.core.roles import evidence, shell_script
from portscope.core.roles import signatures as sig
from portscope.core.roles.procs import ProcInfo
from real_servers import missing
from support import NOBODY, reap

PY = "/usr/bin/python3"
SERVER = ProcInfo(501, 500, "python3", (PY, "-m", "http.server", "8000"), 1.0)
SRV = ProcInfo(501, 500, "srv", ("srv", "--port", "8000"), 1.0)


def shell(*argv: str, pid: int = 500) -> ProcInfo:
    return ProcInfo(pid, 1, os.path.basename(argv[0]).lstrip("-"), argv, 1.0)


def loop_c(text: str, child: ProcInfo = SRV, *extra: str) -> bool:
    """Is `bash -c TEXT extra...` a restarter of `child`? From the argv alone."""
    return sig.shell_loop(shell("bash", "-c", text, *extra), child, live=False)


# ---------------------------------------------------------------------------------------
# Tokens


def words(text: str) -> list[str]:
    return [t.text for t in shell_script.tokens(text)]


def test_quotes_escapes_and_comments_make_words() -> None:
    assert words("a 'b c' \"d $x\" e\\ f") == ["a", "b c", "d $x", "e f"]
    assert words('"a\\"b" "\\$HOME" "\\q"') == ['a"b', "$HOME", "\\q"]
    assert words("a#b # comment while true\nc") == ["a#b", "\n", "c"]
    assert words("x;y&&z||w|v&u") == ["x", ";", "y", "&&", "z", "||", "w", "|", "v", "&", "u"]
    assert words("srv 2>&1 >log") == ["srv", ">&", "1", ">", "log"]
    assert words("a \\\n b") == ["a", "b"]  # a line continuation
    quoted = shell_script.tokens("'while' \\done \"x\"")
    assert [t.quoted for t in quoted] == [True, True, True]


def test_expansions_are_marked_unknown_and_substitutions_kept() -> None:
    [plain, var, sub, tick, glob] = shell_script.tokens("a $b $(c d) `e` f*")
    assert plain.literal and not var.literal and not glob.literal
    assert sub.subs == ("c d",) and tick.subs == ("e",)
    [assign] = shell_script.tokens("PORT=$X")
    assert assign.assign and not assign.literal


# ---------------------------------------------------------------------------------------
# Loops that run the server: restarters


@pytest.mark.parametrize(
    "text",
    [
        "while true; do srv --port 8000; done",
        "while :\ndo\n  srv --port 8000\n  sleep 1\ndone",
        "until false; do srv; done",
        "for ((;;)); do srv --port 8000; sleep 0.3; done",
        "for ((;;)) do srv; done",
        "for i in 1 2 3; do srv; done",
        "for i\ndo srv; done",
        "while true; do while true; do srv; done; done",
        "if [ -n x ]; then while true; do srv; done; fi",
        "while true; do exec srv --port 8000; done",
        "while true; do env -i PATH=/bin A=1 srv; done",
        "while true; do nohup srv >/dev/null 2>&1; done",
        "while true; do time -p srv; done",
        "while true; do PORT=8000 command srv; done",
        "while true; do /usr/local/bin/srv --port 8000 || sleep 1; done",
        "while true; do (cd /srv && srv --port \"$PORT\"); done",
        "while true; do out=$(srv 2>&1); done",
        "while true\ndo\n  'srv' --port 8000   # quoted program name\ndone",
        "run() { srv --port 8000; }\nwhile true; do run; sleep 1; done",
        "function run { exec srv \"$@\"; }; while :; do run --port 8000; done",
        "case x in x) while true; do srv; done;; *) echo no;; esac",
        "until srv --port 8000; do echo crashed; sleep 1; done",  # retried while it fails
        "while true; do srv; done <<< input > log",
    ],
)
def test_a_loop_that_runs_the_server_restarts_it(text: str) -> None:
    assert loop_c(text)


def test_positional_parameters_name_the_program() -> None:
    assert loop_c('while true; do "$@"; done', SRV, "loop", "srv", "--port", "8000")
    assert loop_c("while true; do exec $1 --port $2; done", SRV, "loop", "srv", "8000")
    assert loop_c('while :; do "${@}"; done', SRV, "loop", "srv")
    assert not loop_c('while true; do "$@"; done', SRV, "loop", "other", "--port", "8000")
    assert not loop_c('while true; do "$@"; done')  # no arguments: it runs nothing


def test_the_arguments_must_be_the_servers_own() -> None:
    """`python3 -c probe` is not `python3 -m http.server`: the literal arguments after the
    program name must agree with the child's argv; an expansion ends the comparison."""
    assert loop_c(f"while true; do {PY} -m http.server 8000; done", SERVER)
    assert loop_c("while true; do python3 -m http.server $PORT; done", SERVER)
    assert not loop_c("while true; do python3 -m http.server 9000; done", SERVER)
    assert not loop_c("while ! python3 -c 'import socket'; do sleep 0.1; done", SERVER)
    # An unknown program counts when some literal arguments are the server's and none differ.
    assert loop_c('while true; do "$PY" -m http.server 8000; done', SERVER)
    assert not loop_c('while true; do "$PY" -c probe; done', SERVER)
    assert not loop_c("while true; do $CMD; done", SERVER)


def test_a_script_run_by_its_interpreter_is_its_program() -> None:
    """`./app.py` runs as `/usr/bin/python3 ./app.py`: argv[1] is the command's word."""
    app = ProcInfo(501, 500, "app.py", (PY, "./app.py", "--port", "8000"), 1.0)
    assert loop_c("while true; do ./app.py --port 8000; done", app)
    assert not loop_c("while true; do ./other.py; done", app)


def test_a_retitled_server_is_known_by_its_name() -> None:
    nginx = ProcInfo(501, 500, "nginx", ("nginx: master process nginx -g daemon off;",), 1.0)
    assert loop_c("while true; do nginx -g 'daemon off;'; done", nginx)


# ---------------------------------------------------------------------------------------
# Words that are no loop


@pytest.mark.parametrize(
    "text",
    [
        "# keep this open while it runs\nsrv --port 8000",
        "srv --port 8000 # while true; do srv; done",
        "echo 'while true; do srv; done'; srv",
        'echo "until false; do srv; done"',
        "srv & while ! curl -s localhost:8000; do sleep 1; done; wait",
        "srv & until nc -z 127.0.0.1 8000; do sleep 0.1; done; wait",
        "while ! test -e ready; do sleep 1; done; srv",
        "for f in *.conf; do echo $f; done; srv",
        "while true; do other-server; done",
        "while true; do command -v srv; sleep 1; done",
        "cat <<EOF\nwhile true; do srv; done\nEOF\nsrv",
        "cat <<-'EOF'\n\twhile true; do srv; done\n\tEOF\nsrv",
        "echo while do srv done",
        "srv; echo done",
        "x='while true; do srv; done' srv",
        "while true; do sleep 1; done & srv",
    ],
)
def test_words_that_look_like_a_loop_are_not_a_restarter(text: str) -> None:
    assert not loop_c(text)


def test_not_a_shell_or_not_a_script_is_no_loop() -> None:
    py = ProcInfo(500, 1, "python3", ("python3", "-c", "while True: srv()"), 1.0)
    assert not sig.shell_loop(py, SRV, live=False)
    assert not sig.shell_loop(shell("-bash"), SRV, live=False)  # an interactive shell
    assert not sig.shell_loop(shell("bash", "-s", "x"), SRV, live=False)  # reads stdin


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("bash", "-c", "T"), ("T", None, ("bash",))),
        (("bash", "-ec", "T", "zero", "one"), ("T", None, ("zero", "one"))),
        (("bash", "-o", "pipefail", "-c", "T"), ("T", None, ("bash",))),
        (("bash", "--norc", "-x", "run.sh", "a"), (None, "run.sh", ("run.sh", "a"))),
        (("sh", "--", "-odd.sh"), (None, "-odd.sh", ("-odd.sh",))),
        (("/bin/busybox", "sh", "-c", "T"), ("T", None, ("/bin/busybox",))),
        (("bash",), None),
        (("bash", "-i"), None),
        (("bash", "-s", "a"), None),
    ],
)
def test_a_shells_argv(argv: tuple[str, ...], expected: object) -> None:
    assert sig.shell_invocation(argv) == expected


def test_garbage_never_raises() -> None:
    """Hostile text: any mix of the shell's metacharacters parses to some answer."""
    rng = random.Random(17)
    alphabet = list("while do done until for (( )) ; & | ' \" \\ $ ` # \n { } < > << EOF = srv")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert isinstance(loop_c(text), bool)
        assert isinstance(loop_c(text, SRV, "loop", "srv"), bool)
    for text in ("'", '"', "$(", "${", "`", "((", "<<", "<<EOF", "\\", "for", "case", "f()"):
        assert not loop_c(text)
    assert loop_c("while true; do " * 30 + "srv" + "; done" * 30)
    # Deeper than anyone writes: unknown, so no loop (and no deep recursion).
    assert shell_script.commands("{ " * 1000 + "srv" + "; }" * 1000) is None
    assert not loop_c("while true; do " * 1000 + "srv" + "; done" * 1000)
    nested = "$(" * 200 + "srv" + ")" * 200
    assert isinstance(loop_c(f"while true; do x={nested}; done"), bool)
    assert not loop_c("f() { f; f; f; }; while true; do f; done")  # recursion ends


def test_text_longer_than_the_limit_is_unknown() -> None:
    text = "while true; do srv; done\n" + "#" * shell_script.TEXT_LIMIT
    assert shell_script.loop_runs(text, lambda w: True) is None
    assert not loop_c(text)


# ---------------------------------------------------------------------------------------
# Scripts: read only through evidence.read_script, only when live


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="portscope-shell-script-"))
    path.chmod(0o755)  # nobody may look inside
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bash(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """A real bash (the kernel's exe is a shell) idling in `workdir`; tests claim argv."""
    proc = subprocess.Popen(
        ["bash", "-c", "sleep 600; :"], cwd=workdir, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    yield proc
    reap(proc)


LOOP_SCRIPT = "#!/bin/bash\nwhile true; do srv --port 8000; sleep 1; done\n"


def test_a_script_file_is_read_when_live(
    workdir: Path, bash: subprocess.Popen[str]
) -> None:
    (workdir / "loop.sh").write_text(LOOP_SCRIPT)
    (workdir / "once.sh").write_text("# runs while the job runs\nsrv --port 8000\n")
    assert sig.shell_loop(shell("bash", str(workdir / "loop.sh"), pid=bash.pid), SRV)
    # Relative: from the shell's own working directory (/proc/PID/cwd), not ours.
    assert sig.shell_loop(shell("bash", "loop.sh", pid=bash.pid), SRV)
    assert not sig.shell_loop(shell("bash", str(workdir / "once.sh"), pid=bash.pid), SRV)
    # Not live (recorded data, or the TUI's UI thread): the file is never opened.
    assert not sig.shell_loop(
        shell("bash", str(workdir / "loop.sh"), pid=bash.pid), SRV, live=False
    )


def test_a_fifo_a_device_or_a_symlink_is_unknown_at_once(
    workdir: Path, bash: subprocess.Popen[str]
) -> None:
    fifo = workdir / "fifo"
    os.mkfifo(fifo)
    (workdir / "loop.sh").write_text(LOOP_SCRIPT)
    (workdir / "link.sh").symlink_to(workdir / "loop.sh")
    answers: list[bool] = []

    def ask() -> None:
        for path in (str(fifo), "/dev/zero", "/dev/tty", str(workdir / "link.sh")):
            answers.append(sig.shell_loop(shell("bash", path, pid=bash.pid), SRV))

    asker = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    asker.start()
    asker.join(timeout=5)
    if asker.is_alive():  # blocked opening the FIFO: give it a writer so it ends
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        asker.join(timeout=5)
        pytest.fail("shell_loop blocked on a FIFO named by a shell's argv")
    assert answers == [False, False, False, False]
    assert time.monotonic() - started < 5


def test_a_script_its_shells_user_may_not_read_is_unknown(workdir: Path) -> None:
    """Root reading a file for nobody's shell would be an oracle: the shell's own user must
    be able to read it, as the kernel's facts about that shell say."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a shell as another user")
    if not os.access("/usr/bin/setpriv", os.X_OK):
        missing("setpriv is not installed")
    secret = workdir / "secret.sh"
    secret.write_text(LOOP_SCRIPT)
    secret.chmod(0o600)  # root's
    public = workdir / "public.sh"
    public.write_text(LOOP_SCRIPT)
    public.chmod(0o644)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "bash", "-c", "sleep 600; :"],
        stdin=subprocess.DEVNULL, text=True, start_new_session=True, cwd="/",
    )
    try:
        deadline = time.monotonic() + 10
        # Dropped to nobody, and bash exec'd (setpriv itself runs as nobody for a moment).
        while (k := evidence.kernel(proc.pid)) is None or k.euid != NOBODY or (
            _comm(proc.pid) != "bash"
        ):
            assert time.monotonic() < deadline, "the shell did not drop to nobody"
            time.sleep(0.02)
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert not sig.shell_loop(shell("bash", str(secret), pid=proc.pid), SRV)
        assert sig.shell_loop(shell("bash", str(public), pid=proc.pid), SRV)
    finally:
        reap(proc)


def test_a_process_that_only_claims_to_be_a_shell_is_no_loop(workdir: Path) -> None:
    """argv says bash; the kernel's exe says python: not a shell loop when live."""
    (workdir / "loop.sh").write_text(LOOP_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    try:
        claim = shell("bash", str(workdir / "loop.sh"), pid=proc.pid)
        assert not sig.shell_loop(claim, SRV)
        assert not sig.shell_loop(shell("bash", "-c", LOOP_SCRIPT, pid=proc.pid), SRV)
    finally:
        reap(proc)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
