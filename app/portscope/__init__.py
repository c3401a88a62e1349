"""portscope: who holds the port, why bind() fails, and when it will free itself."""

from __future__ import annotations

__version__ = "0.1.0"
