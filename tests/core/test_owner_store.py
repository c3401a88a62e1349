"""The owner store: what one run learned about owners, kept for the next in the user's own
file. A file that is not plainly the user's own, or that is damaged, is ignored; a file that
is the user's but out of date costs a re-read, never a wrong holder.

Real processes and sockets on loopback; each test keeps its store in its own temporary
directory, so nothing here touches the user's real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portscope.core.collect.owner_store import (
    NAME,
    Learned,
    OwnerStore,
    identity,
    load,
    store_dir,
)
from portscope.core.collect.owners import IndexState, OwnerIndex
from portscope.core.collect.proc_collector import ProcNetCollector
from portscope.core.model import Holder
from support import NOBODY, ROOT_LISTENER, run_as_nobody, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown or drop to nobody")

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private runtime directory, as $XDG_RUNTIME_DIR is."""
    base = tmp_path / "run"
    base.mkdir(mode=0o700)
    return base


def store_in(home: Path) -> OwnerStore:
    found = store_dir({"XDG_RUNTIME_DIR": str(home)})
    assert found == str(home / "portscope")
    return OwnerStore(os.path.join(found, NAME))


def file_of(store: OwnerStore) -> Path:
    assert store.path is not None
    return Path(store.path)


def warm_store(home: Path, port: int) -> OwnerStore:
    """A store written by one collector that saw `port`'s holder."""
    store = store_in(home)
    first = ProcNetCollector(store=store)
    assert first.collect(port).listeners_on(port)[0].holders
    assert file_of(store).exists()
    return store


def holder_pids(collector: ProcNetCollector, port: int) -> set[int]:
    return {pid for s in collector.collect(port).listeners_on(port) for pid in s.pids}


def test_the_next_collector_starts_warm_and_right(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    second = ProcNetCollector(store=store)
    assert holder_pids(second, port) == {proc.pid}
    # Everything came from the store, confirmed by the witnesses: no walk, no psutil.
    assert second.full_walks == 0
    assert second.described == 0


def test_the_file_is_private_and_written_whole(spawn: Spawn, home: Path) -> None:
    _, line = spawn(ROOT_LISTENER)
    store = warm_store(home, int(line))
    mode = file_of(store).lstat().st_mode
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(file_of(store).parent.lstat().st_mode) == 0o700
    assert file_of(store).stat().st_uid == os.geteuid()
    # Renamed into place: no temporary file is left beside it.
    assert [p.name for p in file_of(store).parent.iterdir()] == [NAME]


def ignored(store: OwnerStore, port: int, proc: subprocess.Popen[str]) -> None:
    """A collector on this store learns nothing from it, and still finds the holder."""
    collector = ProcNetCollector(store=store)
    assert holder_pids(collector, port) == {proc.pid}
    assert collector.full_walks == 1  # the store was not believed


def test_garbage_is_ignored(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    for junk in (b"\x00\xff garbage \x1b[2J", b"{}", b"[1, 2", b'{"identity": 1}'):
        file_of(store).write_bytes(junk)
        file_of(store).chmod(0o600)
        assert store.load() is None
    ignored(store, port, proc)


def test_a_damaged_entry_voids_the_whole_file(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    data = json.loads(file_of(store).read_bytes())
    pid = next(iter(data["pids"]))
    data["pids"][pid][0] = "not a start time"
    file_of(store).write_text(json.dumps(data))
    assert store.load() is None
    ignored(store, port, proc)


def test_wrong_mode_is_ignored(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    file_of(store).chmod(0o644)
    assert store.load() is None
    ignored(store, port, proc)


def test_a_symlink_is_ignored(spawn: Spawn, home: Path, tmp_path: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    elsewhere = tmp_path / "elsewhere.json"
    file_of(store).rename(elsewhere)  # a perfectly good store file, reached through a link
    file_of(store).symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    assert store.load() is None
    ignored(store, port, proc)
    assert elsewhere.read_bytes() == before  # never written through the link either


@as_root
def test_a_file_owned_by_someone_else_is_ignored(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    os.chown(file_of(store), NOBODY, NOBODY)
    assert store.load() is None
    ignored(store, port, proc)


def test_a_directory_that_is_not_private_is_not_used(home: Path, tmp_path: Path) -> None:
    (home / "portscope").mkdir(mode=0o755)
    (home / "portscope").chmod(0o755)
    assert store_dir({"XDG_RUNTIME_DIR": str(home)}) is None
    (home / "portscope").rmdir()
    target = tmp_path / "other"
    target.mkdir(mode=0o700)
    (home / "portscope").symlink_to(target)  # a link, even to a private directory
    assert store_dir({"XDG_RUNTIME_DIR": str(home)}) is None


def test_a_runtime_directory_behind_a_symlink_is_passed_over(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "run").mkdir(parents=True, mode=0o700)
    (real / "run").chmod(0o700)
    (tmp_path / "link").symlink_to(real)
    found = store_dir({"XDG_RUNTIME_DIR": str(tmp_path / "link" / "run")})
    assert found is None or not found.startswith(str(tmp_path))
    assert not (real / "run" / "portscope").exists()


@as_root
def test_a_runtime_directory_of_another_user_is_passed_over(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)  # `sudo -E` keeps the user's XDG_RUNTIME_DIR
    found = store_dir({"XDG_RUNTIME_DIR": str(theirs)})
    assert found is None or not found.startswith(str(theirs))
    assert not (theirs / "portscope").exists()


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory other users may pass through (not list), unlike pytest's tmp_path."""
    top = Path(tempfile.mkdtemp(prefix="portscope-store-"))
    top.chmod(0o711)
    yield top
    shutil.rmtree(top)


@as_root
def test_root_and_a_user_keep_separate_files(reachable: Path) -> None:
    """Given root's runtime directory (as `sudo -E` or a shared environment would), nobody
    finds it is not theirs and keeps elsewhere, or nowhere; and root's file says whose it
    is, so no other user's run takes it."""
    base = reachable / "root-run"
    base.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(base)}
    mine = store_dir(env)
    assert mine == str(base / "portscope")
    ProcNetCollector(store=OwnerStore(os.path.join(mine, NAME))).collect()

    def nobody_view() -> str | None:
        where = store_dir(env)
        return None if where is None else str(where)

    where = run_as_nobody(nobody_view)
    assert where is None or not str(where).startswith(str(base))
    who = identity()
    assert who is not None
    assert load(os.path.join(mine, NAME), who) is not None
    assert load(os.path.join(mine, NAME), {**who, "uid": NOBODY}) is None


def test_another_boot_or_user_is_not_this_one(spawn: Spawn, home: Path) -> None:
    _, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    who = identity()
    assert who is not None
    assert load(str(file_of(store)), who) is not None
    for key, value in (("boot", "another-boot"), ("uid", who["uid"] + 1), ("pidns", 1)):
        assert load(str(file_of(store)), {**who, key: value}) is None


IDLE_LISTENER = """
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(600)
"""


def aged(learned: Learned, seconds: float, ran: int | None = None) -> Learned:
    """The same store as if written `seconds` ago (and its descriptions' CPU-time witness
    replaced by `ran`, if given)."""
    owners = learned.owners._replace(searched=learned.owners.searched - seconds)
    described = {
        pid: d._replace(at=d.at - seconds, ran=d.ran if ran is None else ran)
        for pid, d in learned.described.items()
    }
    return Learned(owners, described)


def test_an_old_store_still_spares_the_walk(spawn: Spawn, home: Path) -> None:
    """A run after a pause (the store written long ago): the holder has not run since it
    was read, so its table and its description are still right, and taken without a walk
    or a description read."""
    proc, line = spawn(IDLE_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    learned = store.load()
    assert learned is not None and learned.described[proc.pid].ran > 0
    store.save(aged(learned, 3600))
    collector = ProcNetCollector(store=store)
    assert holder_pids(collector, port) == {proc.pid}
    assert collector.full_walks == 0
    assert collector.described == 0


def test_an_old_description_of_a_process_that_ran_is_read_again(spawn: Spawn, home: Path) -> None:
    proc, line = spawn(IDLE_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    learned = store.load()
    assert learned is not None
    store.save(aged(learned, 3600, ran=1))  # not its CPU time now: it ran since
    collector = ProcNetCollector(store=store)
    assert holder_pids(collector, port) == {proc.pid}
    assert collector.full_walks == 0
    assert collector.described == 1


def test_a_reused_pid_is_another_process(spawn: Spawn, home: Path) -> None:
    """An entry whose start time no longer matches its PID is dropped: its table and its
    description are another process's."""
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    learned = store.load()
    assert learned is not None
    table = learned.owners.tables[proc.pid]
    tables = {**learned.owners.tables, proc.pid: table._replace(start=table.start - 1)}
    described = dict(learned.described)
    entry = described[proc.pid]
    described[proc.pid] = entry._replace(
        start=entry.start - 1, holder=Holder(proc.pid, "impostor", None, (), 0.0)
    )
    owners = IndexState(learned.owners.searched, tables, learned.owners.nobody)
    store.save(learned._replace(owners=owners, described=described))
    collector = ProcNetCollector(store=store)
    [sock] = collector.collect(port).listeners_on(port)
    assert [h.name for h in sock.holders] != ["impostor"]
    assert sock.pids == (proc.pid,)
    assert collector.described == 1  # read again, not taken from the file


def test_a_table_that_lies_is_caught_by_its_witnesses(spawn: Spawn, home: Path) -> None:
    """The file says the listener's process holds nothing; its fd count and CPU time say
    otherwise, so it is read again and found."""
    proc, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    learned = store.load()
    assert learned is not None
    table = learned.owners.tables[proc.pid]
    blank = table._replace(fds={}, fd_count=table.fd_count + 1, ran=(-1, False))
    tables = {**learned.owners.tables, proc.pid: blank}
    owners = IndexState(learned.owners.searched, tables, learned.owners.nobody)
    store.save(learned._replace(owners=owners))
    assert holder_pids(ProcNetCollector(store=store), port) == {proc.pid}


def test_a_socket_handed_to_a_new_child_between_runs(
    passer: subprocess.Popen[str], home: Path
) -> None:
    assert passer.stdout is not None and passer.stdin is not None
    port = int(passer.stdout.readline())
    store = warm_store(home, port)
    passer.stdin.write("\n")
    passer.stdin.flush()
    child = int(passer.stdout.readline())
    assert holder_pids(ProcNetCollector(store=store), port) == {child}


def test_a_new_server_on_the_same_port(spawn: Spawn, home: Path) -> None:
    first, line = spawn(ROOT_LISTENER)
    port = int(line)
    store = warm_store(home, port)
    first.kill()
    first.wait(timeout=5)
    wait_for(lambda: not ProcNetCollector().collect(port).listeners_on(port))
    code = f"""
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", {port})); s.listen()
print("ready", flush=True)
time.sleep(600)
"""
    second, _ = spawn(code)
    assert holder_pids(ProcNetCollector(store=store), port) == {second.pid}


def test_a_free_port_needs_no_owners(home: Path) -> None:
    """`check` on a free port: TIME_WAIT and listeners of that port only, no fd walk, no
    store read or written."""
    store = store_in(home)
    collector = ProcNetCollector(store=store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    snap = collector.collect(port, owners=None)
    assert snap.sockets == ()
    assert collector.fd_reads == 0 and collector.full_walks == 0
    assert not file_of(store).exists()


def test_a_socket_read_before_any_dump_saw_it(tmp_path: Path) -> None:
    """One run's dump can be older than its fd read (another run's, or its own): a socket
    that was not yet listening at the dump is in the fd table all the same. Its process,
    idle from then on, gives no witness a reason to be read again, so the table must have
    kept the socket: the next dump that shows it finds its holder at once."""
    code = """
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
import os
print(os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.readline()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        inode = int(proc.stdout.readline())
        (tmp_path / str(proc.pid)).symlink_to(f"/proc/{proc.pid}")
        index = OwnerIndex(str(tmp_path))
        assert index.holders(set()) == {}  # a dump taken before it listened
        assert index.holders({inode}) == {inode: [proc.pid]}
        assert index.full_walks == 1
    finally:
        proc.kill()
        proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def test_a_master_that_listened_after_the_last_run_read_it(home: Path) -> None:
    """The last run read a process before it listened; since then it opened a listener and
    forked a worker that shares it. The worker is new, so it is read and answers for the
    socket; the master's stored table must not be believed: it ran since."""
    code = """
import os, socket, sys, time
print("ready", flush=True)
sys.stdin.readline()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
child = os.fork()
if child == 0:
    time.sleep(600)
    os._exit(0)
print(s.getsockname()[1], child, flush=True)
sys.stdin.readline()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        store = store_in(home)
        ProcNetCollector(store=store).collect()  # reads the master, holding no socket yet
        proc.stdin.write("\n")
        proc.stdin.flush()
        port, child = (int(x) for x in proc.stdout.readline().split())
        assert holder_pids(ProcNetCollector(store=store), port) == {proc.pid, child}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()
