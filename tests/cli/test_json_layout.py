"""--json's writer: the C encoder's text, laid out one record per line, written whole."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from portscope.cli import json_layout

PROCESS = {"pid": 7, "name": "srv\x1b]0;x\x07", "cmdline": ["srv", "-p", "8080"], "user": None}


def sample() -> dict[str, object]:
    shared = dict(PROCESS)
    return {
        "sockets": [
            {"port": 8080, "holders": [shared], "v6only": False},
            {"port": 8081, "holders": [shared], "v6only": True},
        ],
        "ports": [1, 2.5, None, True],
        "empty": {},
        "argv": ["\udcff raw byte", "ünïcode", "tab\there"],
        "ratio": 0.1,
    }


def test_the_text_is_the_json_of_the_value_with_one_record_per_line() -> None:
    value = sample()
    text = json_layout.dumps(value)
    assert json.loads(text) == value
    assert text.isascii()  # ensure_ascii, as json.dump did: a lone surrogate is escaped
    assert "\\udcff" in text and "\x1b" not in text
    lines = text.splitlines()
    # A process record is one line; the list of numbers stays on one line.
    assert sum(line.strip().startswith('{"pid": 7') for line in lines) == 2
    assert '  "ports": [1, 2.5, null, true],' in lines


def test_a_record_shared_by_many_sockets_is_encoded_once() -> None:
    parts = json_layout.pieces(sample())
    records = [p for p in parts if p.startswith(b'{"pid": 7')]
    assert len(records) == 2 and records[0] is records[1]
    compact = json_layout.pieces(sample(), pretty=False)
    records = [p for p in compact if p.startswith(b'{"pid":7')]
    assert len(records) == 2 and records[0] is records[1]


def test_without_the_c_accelerator_the_text_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = json_layout._encoder()
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    slow = json_layout._encoder()
    for value in (PROCESS, [1, 2.0, None], "x\udcffy", math.inf, {"a": {"b": [1]}}):
        assert fast(value) == slow(value) == json.dumps(value, separators=(", ", ": "))


def test_unencodable_values_still_raise() -> None:
    with pytest.raises(TypeError):
        json_layout.dumps({"when": object()})


def test_write_sends_every_piece_through_a_file_descriptor(tmp_path: Path) -> None:
    # More pieces than one writev takes (1,024): the batches must follow each other in order.
    value = {"sockets": [{"port": p, "holders": [dict(PROCESS, pid=p)]} for p in range(3000)]}
    assert len(json_layout.pieces(value)) > 3 * 1024
    path = tmp_path / "out.json"
    with path.open("w") as out:
        out.write("before\n")  # buffered text goes out first
        json_layout.write(value, out)
    before, _, rest = path.read_text().partition("\n")
    assert before == "before" and rest.endswith("\n")
    assert json.loads(rest) == value


def test_write_to_a_pipe_delivers_all_of_it() -> None:
    read_end, write_end = os.pipe()
    value = {"argv": ["x" * 200_000]}  # more than a pipe buffer holds at once
    pid = os.fork()
    if pid == 0:  # the reader drains the pipe so the writer can finish
        os.close(write_end)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        os._exit(0 if json.loads(b"".join(chunks)) == value else 1)
    os.close(read_end)
    with os.fdopen(write_end, "w") as out:
        json_layout.write(value, out)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_compact_is_one_line_with_no_spaces_and_the_same_value(tmp_path: Path) -> None:
    """For a program (stdout not a terminal): the C encoder's compact text, ASCII, written
    through the same file-descriptor path."""
    value = sample()
    text = json_layout.compact(value)
    assert text == json.dumps(value, separators=(",", ":"))
    assert json_layout.compact(value, shared=True) == text  # records encoded once, same text
    assert "\n" not in text and '{"pid":7,' in text and text.isascii()
    path = tmp_path / "out.json"
    with path.open("w") as out:
        json_layout.write(value, out, pretty=False)
    assert path.read_text() == text + "\n"
    assert json.loads(path.read_text()) == value
