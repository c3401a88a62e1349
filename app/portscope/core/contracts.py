"""The version of each JSON contract, printed as its "schema" field.

The contracts are described by the JSON Schemas in portscope/schemas/ (one per command) and
their changes by portscope/schemas/CHANGELOG.md: adding a field keeps the number; renaming
or removing one, or changing its type or meaning, moves it.
"""

from __future__ import annotations

SCHEMAS = {"list": 1, "check": 1, "kill": 1, "watch": 1, "free": 1}
