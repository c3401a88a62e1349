"""portscope's private directory: made 0700, never through a symlink, never where another
user's environment points."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portscope.core import private_dir


def test_made_private_and_appended(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    path = private_dir.append("audit.log", "one\n", env)
    private_dir.append("audit.log", "two\n", env)
    assert path == str(tmp_path / "portscope" / "audit.log")
    assert Path(path).read_text() == "one\ntwo\n"
    assert (tmp_path / "portscope").stat().st_mode & 0o777 == 0o700
    assert Path(path).stat().st_mode & 0o777 == 0o600


def test_a_symlink_on_the_way_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "state").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    env = {"XDG_STATE_HOME": str(tmp_path / "link" / "state")}
    with pytest.raises(private_dir.Unsafe):
        private_dir.append("audit.log", "x\n", env)
    assert not (real / "state" / "portscope").exists()


def test_a_symlinked_last_level_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "portscope").symlink_to(elsewhere)
    with pytest.raises(private_dir.Unsafe):
        private_dir.append("audit.log", "x\n", {"XDG_STATE_HOME": str(tmp_path)})
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a directory owned by another uid")
def test_another_users_state_home_is_not_used(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    assert private_dir.base({"XDG_STATE_HOME": str(theirs)}) != str(theirs)
    assert private_dir.base({"XDG_STATE_HOME": str(tmp_path)}) == str(tmp_path)


def test_a_crash_log_never_goes_through_a_symlinked_parent(tmp_path: Path) -> None:
    """The TUI's crash log: with a symlink on the way to the state directory it is written
    to a fresh 0600 file in the temp directory instead, never into the link's target."""
    import io
    from datetime import datetime

    from portscope.tui import crash

    target = tmp_path / "target"
    (target / "state").mkdir(parents=True)
    (tmp_path / "link").symlink_to(target)
    out = io.StringIO()
    env = {"XDG_STATE_HOME": str(tmp_path / "link" / "state")}
    path = crash.report(RuntimeError("boom"), out, env, datetime(2026, 12, 6))
    try:
        assert path is not None and not str(path).startswith(str(tmp_path))
        assert list((target / "state").iterdir()) == []
        assert str(path) in out.getvalue()
    finally:
        if path is not None:
            path.unlink()
