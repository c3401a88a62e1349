"""Issue 18: Docker's answers are untrusted input. Against a fake daemon on a real unix
socket (fake_docker.py): a malformed answer is one DockerUnavailable with one clear note
(never AttributeError, TypeError or RecursionError), a daemon that drips a byte every 1.5 s
is given up within the one deadline, a 100 MB body is never read into memory, and a socket
that neither root nor the effective user owns is never asked (`sudo -E`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from fake_docker import (
    SERVE_EMPTY_LIST,
    delayed,
    drip,
    fake_docker,
    huge,
    json_answer,
    routes,
)
from portscope.core.roles import docker_api
from portscope.core.roles.docker_api import DockerUnavailable, Published
from support import NOBODY, reap, run_as_nobody

ID = "a" * 64
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root can act as another user")


def container(**fields: Any) -> dict[str, Any]:
    """One item of GET /containers/json as Docker 20-28 writes it, with `fields` changed."""
    item: dict[str, Any] = {
        "Id": ID, "Names": ["/web"], "Image": "nginx:1.27", "State": "running",
        "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
        "Ports": [
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "::0001", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"PrivatePort": 443, "Type": "tcp"},  # exposed, not published
        ],
    }
    item.update(fields)
    return item


def inspected(**config: Any) -> dict[str, Any]:
    """GET /containers/{id}/json, the fields portscope reads."""
    return {
        "Id": ID, "Name": "/web",
        "State": {"Running": True, "Pid": 4242},
        "Config": {"Image": "nginx:1.27", "Labels": {}, **config},
    }


def test_a_well_formed_answer_is_read() -> None:
    with fake_docker(json_answer([container()])) as daemon:
        listing = docker_api.listing()
    [listed] = listing.containers
    assert listed.container.name == "web" and listed.container.compose_project == "shop"
    # "::0001" is ::1: compared as addresses, not as text; unpublished ports are left out
    assert listed.published == (Published("127.0.0.1", 8080, "tcp"), Published("::1", 8080, "tcp"))
    assert daemon.requests == ["GET /containers/json HTTP/1.0"]
    assert listing.owner == os.geteuid()  # the test's own socket


@pytest.mark.parametrize(
    ("body", "note"),
    [
        ([container(Ports=["notadict"])], "Ports[0]: expected an object, got a string"),
        ([container(Labels=["a=b"])], "Labels: expected an object, got a list"),
        ([container(Labels={"a": 1})], "Labels['a']: expected a string, got an integer"),
        ([container(Names="/web")], "Names: expected a list, got a string"),
        ([container(Names=[7])], "Names[0]: expected a string, got an integer"),
        ([container(Ports=[{"Type": "tcp", "PublicPort": "8080", "IP": "::"}])],
         "PublicPort: expected an integer, got a string"),
        ([container(Ports=[{"Type": "tcp", "PublicPort": True, "IP": "::"}])],
         "PublicPort: expected an integer, got a boolean"),
        ([container(Ports=[{"Type": 6, "PublicPort": 80, "IP": "::"}])],
         "Type: expected a string, got an integer"),
        ([container(Ports=[{"Type": "tcp", "PublicPort": 80, "IP": ["::"]}])],
         "IP: expected a string, got a list"),
        ([container(Id="../../../_ping")], "Id is not a container id"),
        ([{k: v for k, v in container().items() if k != "Image"}], "Image is missing"),
        (["notadict"], "[0]: expected an object, got a string"),
        ({"message": "page not found"}, "expected a list, got an object"),
        (b"[" * 100_000, "the answer nests deeper than 64"),
        (b'{"a": ' * 100_000, "the answer nests deeper than 64"),
        (b"<html>502 Bad Gateway</html>", "the answer is not JSON"),
        (b"[" + b"9" * 5000 + b"]", "the answer is not JSON"),  # past int's digit limit
        (b'["\xff\xfe"]', "the answer is not JSON"),
    ],
)
def test_a_malformed_list_is_one_clear_note(body: object, note: str) -> None:
    with fake_docker(json_answer(body)), pytest.raises(DockerUnavailable) as caught:
        docker_api.listing()
    message = str(caught.value)
    assert note in message and "\n" not in message


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (inspected(StopTimeout="30"), "StopTimeout: expected an integer, got a string"),
        ({**inspected(), "State": {"Running": True, "Pid": "4242"}},
         "Pid: expected an integer, got a string"),
        ({**inspected(), "State": []}, "State: expected an object, got a list"),
        ({**inspected(), "Config": None}, "Config is missing"),
    ],
)
def test_a_malformed_inspect_is_one_clear_note(body: object, note: str) -> None:
    with fake_docker(json_answer(body)), pytest.raises(DockerUnavailable) as caught:
        docker_api.inspect(ID)
    assert note in str(caught.value)


def test_deep_nesting_inside_strings_is_not_nesting() -> None:
    names = ["/" + "[" * 500 + "{" * 500]
    with fake_docker(json_answer([container(Names=names)])):
        [listed] = docker_api.listing().containers
    assert listed.container.name == names[0][1:]


def test_a_daemon_dripping_a_byte_every_1_5_s_is_given_up_at_the_deadline() -> None:
    with fake_docker(drip(1.5)):
        start = time.monotonic()
        with pytest.raises(DockerUnavailable, match="no complete answer within 3 s"):
            docker_api.listing()
        elapsed = time.monotonic() - start
    # Every read got a byte within 1.5 s: only the one overall deadline ends the wait.
    assert docker_api.DEADLINE - 0.5 <= elapsed < docker_api.DEADLINE + 1.0


def test_a_declared_100_mb_answer_is_refused_before_reading_it() -> None:
    with fake_docker(huge(declared=True)):
        start = time.monotonic()
        with pytest.raises(DockerUnavailable, match="100,000,000 bytes, more than the 4 MiB"):
            docker_api.listing()
    assert time.monotonic() - start < 1.5


def test_an_undeclared_100_mb_answer_stops_at_the_cap_with_little_memory() -> None:
    with fake_docker(huge(declared=False)):
        tracemalloc.start()
        start = time.monotonic()
        try:
            with pytest.raises(DockerUnavailable, match="larger than 4 MiB"):
                docker_api.listing()
            elapsed = time.monotonic() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert elapsed < docker_api.DEADLINE
    assert peak < 24 * 2**20  # the 4 MiB cap and its buffer, never the 100 MB


def test_a_complete_answer_is_not_waited_past_its_content_length() -> None:
    with fake_docker(json_answer([], keep_open=True)):
        start = time.monotonic()
        assert docker_api.listing().containers == ()
    assert time.monotonic() - start < 1.5


def test_stop_sends_no_t_and_waits_the_containers_own_stop_timeout() -> None:
    """`docker stop NAME` semantics: no `t`, so the daemon uses StopTimeout (30 here); the
    answer, which the daemon sends only once the container stopped, is awaited past the
    3 s lookup deadline."""
    answer = routes({
        "GET": json_answer(inspected(StopTimeout=30)),
        "POST": delayed(docker_api.DEADLINE + 0.5, json_answer(b"", 204)),
    })
    with fake_docker(answer) as daemon:
        assert docker_api.stop(ID) == 204
    assert daemon.requests == [
        f"GET /containers/{ID}/json HTTP/1.0", f"POST /containers/{ID}/stop HTTP/1.0",
    ]


def test_stop_with_the_persons_timeout_sends_it_rounded_up() -> None:
    with fake_docker(routes({"POST": json_answer(b"", 204)})) as daemon:
        assert docker_api.stop(ID, 2.5) == 204
    assert daemon.requests == [f"POST /containers/{ID}/stop?t=3 HTTP/1.0"]


def test_only_a_unix_socket_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    with pytest.raises(DockerUnavailable, match="is not a unix socket"):
        docker_api.listing()
    with tempfile.NamedTemporaryFile() as plain:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{plain.name}")
        with pytest.raises(DockerUnavailable, match="is not a socket"):
            docker_api.listing()


# ---------------------------------------------------------------------------------------
# Whose socket: root's or the effective user's only


@pytest.fixture
def nobodys_daemon() -> Iterator[str]:
    """A fake daemon run by nobody, on a socket nobody made: a user's own (rootless) Docker,
    or a user's trap for a root `sudo -E portscope`."""
    where = tempfile.mkdtemp(prefix="portscope-docker-")
    os.chown(where, NOBODY, NOBODY)
    os.chmod(where, 0o755)
    path = os.path.join(where, "docker.sock")
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "/usr/bin/python3", "-c", SERVE_EMPTY_LIST, path],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield path
    finally:
        reap(proc)
        shutil.rmtree(where, ignore_errors=True)


@root_only
def test_root_never_asks_a_users_daemon(
    nobodys_daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nobodys_daemon}")  # what `sudo -E` keeps
    with pytest.raises(DockerUnavailable, match=r"belongs to nobody \(uid 65534\), not to root"):
        docker_api.listing()


@root_only
def test_a_users_own_rootless_daemon_still_answers_that_user(
    nobodys_daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nobodys_daemon}")

    def as_nobody() -> tuple[int, int]:
        listing = docker_api.listing()
        return listing.owner, len(listing.containers)

    assert run_as_nobody(as_nobody) == (NOBODY, 0)


@root_only
def test_a_root_owned_socket_file_with_a_users_daemon_behind_it_is_refused(
    nobodys_daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's owner could change between the look and the connect: the listening
    process's own credentials (SO_PEERCRED) are checked too."""
    os.chown(nobodys_daemon, 0, 0)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nobodys_daemon}")
    with pytest.raises(DockerUnavailable, match=r"runs as nobody \(uid 65534\): not asked"):
        docker_api.listing()


@root_only
def test_roots_daemon_answers_another_user_too() -> None:
    """A user in the docker group asks root's daemon: root's answer is trusted by anyone."""
    with fake_docker(json_answer([container()])) as daemon:
        os.chmod(daemon.dir, 0o755)
        os.chmod(daemon.path, 0o666)
        owner = run_as_nobody(lambda: docker_api.listing().owner)
    assert owner == 0
