"""What the monitor keeps between runs: the theme picked in the command palette.

One JSON object in `$XDG_CONFIG_HOME/portscope/config.json`, else
`~/.config/portscope/config.json`. Read once at start, written only when the theme
changes, other keys in it kept. A directory owned by another user is not used (under
`sudo -E` the variables are the invoking user's, and root must not write a file into their
home): the effective user's home from the password database is, as the XDG spec ignores a
relative `XDG_CONFIG_HOME`. A file that cannot be read or parsed is reported in one line
and left alone, never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.untrusted import fit, shown

NAME = "config.json"


class SettingsError(Exception):
    """The file exists but cannot be used; the message is one line, escaped."""


def config_file(env: Mapping[str, str] = os.environ) -> Path | None:
    """Where the settings live, or None when there is no usable home."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg) and _ours(xdg):
        return Path(xdg) / "portscope" / NAME
    home = env.get("HOME", "")
    if not (os.path.isabs(home) and _ours(home)):
        import pwd

        try:
            home = pwd.getpwuid(os.geteuid()).pw_dir
        except KeyError:
            return None
        if not os.path.isabs(home):
            return None
    return Path(home) / ".config" / "portscope" / NAME


def _ours(path: str) -> bool:
    """Owned by the effective user, or not there yet (it will be made as theirs)."""
    try:
        return os.stat(path).st_uid == os.geteuid()
    except FileNotFoundError:
        return True
    except OSError:
        return False


class Settings:
    """The settings file at `path` (None: nothing is read or written)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read {self._where()}: {_reason(exc)}") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"{self._where()} is not valid JSON ({_reason(exc)})") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{self._where()} is not a JSON object")
        return data

    def theme(self) -> str | None:
        """The theme saved last; raises SettingsError for a file that cannot be used."""
        value = self._read().get("theme")
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"'theme' in {self._where()} is not a string")
        return value

    def save_theme(self, name: str) -> None:
        """Keep `name` (and whatever else the file holds); raises SettingsError."""
        if self.path is None:
            return
        data = self._read()
        if data.get("theme") == name:
            return
        data["theme"] = name
        folder = self.path.parent
        temp = folder / f".{NAME}.{os.getpid()}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(temp, self.path)  # whole or not at all, never half a file
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise SettingsError(f"cannot write {self._where()}: {_reason(exc)}") from None

    def _where(self) -> str:
        return shown(str(self.path))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return fit(shown(str(exc)), 80)
