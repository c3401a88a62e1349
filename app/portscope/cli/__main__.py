from __future__ import annotations

from . import entry

entry()
