"""A first poll taken by a forked child, while this process does something else.

The monitor spends its first ~0.4 s importing Textual and drawing its first screen: one core,
holding the GIL. Its first whole poll wants the same GIL, and at 2,000 processes ~0.6 s of
/proc reads; run side by side in two threads, each slows the other (1.7 s to the first frame
naming the processes, where the poll alone takes 0.65 s). A child forked before Textual is
imported takes that poll on the other core and hands the Snapshot back through a pipe
(pickled: ~0.1 MB for 2,000 processes, ~4 ms to load), then does what comes after it (the
collector saves its owner store, so the parent's next poll starts from what the child
learned) and exits.

Forked only while this process runs one thread: a fork copies every lock as it is, and
another thread's held lock would never be released in the child. The child runs niced (the
parent's screen comes first), closes the sockets the fork copied (its poll must not find
itself holding them), ignores SIGINT (a Ctrl+C at start-up is the parent's to answer; the
child ends when its answer cannot be delivered) and leaves through os._exit, so nothing of
the parent's (buffered output, atexit handlers) runs twice. A child that fails, or has not
answered within the caller's timeout, costs that time only: it is killed, and the caller
polls itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import select
import signal
import stat
import sys
import time
from collections.abc import Callable

HEADER = 8  # bytes: the answer's length, then the answer
# Bytes of pipe asked for (the unprivileged maximum by default): the answer goes in one
# write and comes out in one read. In 64 KiB pieces each read waited for the GIL (the
# parent's UI thread draws meanwhile), ~15 ms a piece.
PIPE_SIZE = 1 << 20
# The child's niceness, raised by this much (its helpers inherit it): where both want the
# CPU the parent wins it, so the parent's own first frame is not made later by the poll
# taken for it (at 2,000 processes, 0.8 s instead of 0.5 s un-niced); the child has the
# other core, and both once the parent waits.
NICER = 10


def fork_safe() -> bool:
    """True while this process runs one thread, as far as `threading` knows (nothing this
    program imports starts one without it): a fork then copies no lock another thread
    holds."""
    threading = sys.modules.get("threading")
    return hasattr(os, "fork") and (threading is None or threading.active_count() == 1)


class Ahead:
    """One child's answer: `answer()` hands it over once, `finish()` waits for the child
    to exit (what it did after answering is then done) and reaps it."""

    def __init__(self, pid: int, pipe: int) -> None:
        self._pid = pid
        self._pipe = pipe
        self._got: list[bytes] = []
        self._need: int | None = None  # the answer's length, once its header came
        self._answer: object | None = None
        self._given = False  # answer() handed it over (or said it had none)
        self._read_whole = False  # the answer is in (or will never be)
        self._ended = False  # reaped

    @classmethod
    def start(cls, work: Callable[[], object], then: Callable[[], object]) -> Ahead | None:
        """Fork a child that runs `work`, sends its result, runs `then` and exits; None if no
        child was started (threads running, fork refused)."""
        if not fork_safe():
            return None
        readable, writable = os.pipe()
        with contextlib.suppress(OSError):  # a lower pipe-max-size: more pieces
            fcntl.fcntl(writable, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            pid = os.fork()
        except OSError:
            os.close(readable)
            os.close(writable)
            return None
        if pid == 0:  # the child: never returns
            os.close(readable)
            _child(work, then, writable)
        os.close(writable)
        return cls(pid, readable)

    @property
    def given(self) -> bool:
        """answer() was called: the answer is handed over, or there was none."""
        return self._given

    def ready(self) -> bool:
        """Whether the answer (or the child's end) is in: answer() would not wait."""
        return self._read_whole or self._readable(0.0)

    def answer(self, timeout: float) -> object | None:
        """The child's result, the first time only; None after that, if the child failed,
        or if it has not answered within `timeout` s (it is then killed)."""
        if self._given:
            return None
        self._given = True
        self._read(time.monotonic() + timeout)
        found, self._answer = self._answer, None
        return found

    def finish(self, timeout: float) -> None:
        """Wait (up to `timeout` s) for the child to exit, killed if it has not by then, and
        reap it. An answer not yet handed over is kept for answer()."""
        if self._ended:
            return
        deadline = time.monotonic() + timeout
        self._read(deadline)
        while not self._closed(deadline):  # what it does after answering
            pass
        self._end()

    def _read(self, deadline: float) -> None:
        """Read the answer, if it is not in yet, until `deadline`."""
        while not self._read_whole:
            if not self._readable(max(0.0, deadline - time.monotonic())):
                self._end()  # late: killed, and it has no answer
                return
            try:
                data = os.read(self._pipe, PIPE_SIZE)
            except OSError:
                data = b""
            if not data:  # the end, short of a whole answer: it failed
                self._read_whole = True
                return
            self._got.append(data)
            self._take()

    def _take(self) -> None:
        whole = b"".join(self._got)
        self._got = [whole]
        if self._need is None and len(whole) >= HEADER:
            self._need = HEADER + int.from_bytes(whole[:HEADER], "big")
        if self._need is None or len(whole) < self._need:
            return
        self._read_whole = True
        self._got = []
        try:
            self._answer = pickle.loads(whole[HEADER:self._need])
        except Exception:  # our own child's bytes; anything else is no answer
            self._answer = None

    def _closed(self, deadline: float) -> bool:
        """True once the child closed its end (exited), or the deadline passed."""
        if not self._readable(max(0.0, deadline - time.monotonic())):
            return True
        try:
            return not os.read(self._pipe, 1 << 16)
        except OSError:
            return True

    def _readable(self, timeout: float) -> bool:
        if self._ended:
            return True
        poller = select.poll()
        poller.register(self._pipe, select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def _end(self) -> None:
        """Kill the child if it still runs (ours: forked by start), close, reap."""
        if self._ended:
            return
        self._ended = self._read_whole = True
        try:
            if os.waitpid(self._pid, os.WNOHANG) == (0, 0):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
        except ChildProcessError:  # SIGCHLD ignored: reaped already
            pass
        os.close(self._pipe)


def _close_sockets() -> None:
    """Close the sockets the fork copied (the parent's own, or its launcher's): a poll must
    not find this short-lived child among their holders."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:  # the listing's own descriptor, closed since
            pass


def _child(work: Callable[[], object], then: Callable[[], object], pipe: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.nice(NICER)
        _close_sockets()
        data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(HEADER, "big") + data)
        while view:
            view = view[os.write(pipe, view):]
        then()
        code = 0
    except BaseException:  # nothing to say it to: no answer is the answer
        pass
    finally:
        os._exit(code)
