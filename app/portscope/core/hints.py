"""typing's run-time names without importing typing.

A one-shot command is a whole Python process, and `import typing` costs it ~3 ms (a twentieth
of a quiet `portscope list`). Annotations are strings here (`from __future__ import
annotations`), so only four names are needed while the program runs; mypy reads the
TYPE_CHECKING branch and sees typing's own. At run time:

- `Protocol` is a plain base class (nothing here checks isinstance against a protocol);
- `Literal[...]` keeps its values, for `get_args`;
- a class deriving from `NamedTuple` becomes a collections.namedtuple with the class's
  fields, defaults, methods and docstring, as typing builds it.

Modules write `TYPE_CHECKING = False` and import annotation-only names under
`if TYPE_CHECKING:` (mypy treats any constant of that name as true).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal as Literal
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
    from typing import get_args as get_args
else:
    from collections import namedtuple

    class Protocol:
        __slots__ = ()

    class _LiteralAlias:
        __slots__ = ("values",)

        def __init__(self, values: tuple[object, ...]) -> None:
            self.values = values

    class _LiteralForm:
        __slots__ = ()

        def __getitem__(self, values: object) -> _LiteralAlias:
            return _LiteralAlias(values if isinstance(values, tuple) else (values,))

    Literal = _LiteralForm()

    def get_args(alias: _LiteralAlias) -> tuple[object, ...]:
        return alias.values

    class _NamedTupleMeta(type):
        def __new__(
            cls, name: str, bases: tuple[type, ...], namespace: dict[str, object]
        ) -> type:
            if not bases:  # NamedTuple itself
                return super().__new__(cls, name, bases, namespace)
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            built = namedtuple(
                name, fields, defaults=defaults, module=namespace["__module__"]
            )
            for key, value in namespace.items():
                if key not in fields and key not in _KEPT:
                    setattr(built, key, value)
            return built

    _KEPT = frozenset({"__module__", "__qualname__", "__annotations__", "__dict__"})

    class NamedTuple(metaclass=_NamedTupleMeta):
        pass
