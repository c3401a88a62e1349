"""Slotted value classes without importing `dataclasses`.

A one-shot command is a whole Python process, and `dataclasses` cost it ~18 ms to import
(it pulls in inspect, ast, dis and tokenize) plus ~0.8 ms per class to build: with forty
value classes that was a third of a quiet `portscope list`. `@record` and `@mutable_record`
are declared and type-checked like `@dataclass(frozen=True, slots=True)` and
`@dataclass(slots=True)` (mypy reads them through `dataclass_transform`), and build each class
with one small generated `__init__`; equality, hashing and repr compare the fields in order,
as a dataclass's do. No inheritance between records, no keyword-only fields: none is used.
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # typing's own flag would import typing (~4 ms) at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
    C = TypeVar("C", bound=type)
else:

    def dataclass_transform(**_: object) -> object:
        return lambda decorator: decorator


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record (dataclasses' exception of the same name)."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is made afresh for each instance (a dict, a list)."""
    return _Factory(default_factory)  # type: ignore[return-value]  # swapped out by _build


def fields(cls: type) -> tuple[str, ...]:
    """A record class's field names, in order (dataclasses.fields, names only)."""
    names: tuple[str, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    return names


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with some fields changed (dataclasses.replace)."""
    names = fields(type(obj))
    unknown = set(changes).difference(names)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    values = {name: changes[name] if name in changes else getattr(obj, name) for name in names}
    return type(obj)(**values)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: C) -> C:
    """A frozen, slotted value class: fields cannot be assigned after __init__."""
    return _build(cls, frozen=True)


@dataclass_transform(field_specifiers=(field,))
def mutable_record(cls: C) -> C:
    """A slotted class with an __init__ and field-wise equality (unhashable, like a
    dataclass with eq and not frozen)."""
    return _build(cls, frozen=False)


_NO_VALUE = object()  # the parameter default of a field that has a factory


def _build(cls: C, frozen: bool) -> C:
    namespace = dict(cls.__dict__)
    names = tuple(namespace.get("__annotations__", {}))
    params: list[str] = []
    lines: list[str] = []
    scope: dict[str, object] = {"_set": object.__setattr__, "_no_value": _NO_VALUE}
    for name in names:
        default = namespace.pop(name, _NO_VALUE)
        value = name
        if isinstance(default, _Factory):
            scope[f"_make_{name}"] = default.make
            params.append(f"{name}=_no_value")
            value = f"_make_{name}() if {name} is _no_value else {name}"
        elif default is not _NO_VALUE:
            scope[f"_default_{name}"] = default
            params.append(f"{name}=_default_{name}")
        else:
            params.append(name)
        lines.append(f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n " + "\n ".join(lines or ["pass"])
    exec(source, scope)  # the source is built from this class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    namespace["__init__"] = init
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = names
    namespace["__match_args__"] = names
    namespace["__record_fields__"] = names
    _add_methods(namespace, names, frozen)
    built = type(cls)(cls.__name__, cls.__bases__, namespace)
    built.__qualname__ = cls.__qualname__
    return built


def _add_methods(namespace: dict[str, Any], names: tuple[str, ...], frozen: bool) -> None:
    fields: Callable[[object], tuple[object, ...]]
    if len(names) > 1:
        fields = attrgetter(*names)
    elif names:
        one = attrgetter(names[0])
        fields = lambda obj: (one(obj),)  # noqa: E731
    else:
        fields = lambda obj: ()  # noqa: E731

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return fields(self) == fields(other)
        return NotImplemented

    def __repr__(self: object) -> str:
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, fields(self), strict=True))
        return f"{type(self).__qualname__}({shown})"

    namespace["__eq__"] = __eq__
    namespace["__repr__"] = __repr__
    if not frozen:
        namespace["__hash__"] = None
        return

    def __hash__(self: object) -> int:
        return hash(fields(self))

    def __setattr__(self: object, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: object, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    # Slotted objects pickle and copy through these (the default would call __setattr__).
    def __getstate__(self: object) -> tuple[object, ...]:
        return fields(self)

    def __setstate__(self: object, state: tuple[object, ...]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    namespace.update(
        __hash__=__hash__,
        __setattr__=__setattr__,
        __delattr__=__delattr__,
        __getstate__=__getstate__,
        __setstate__=__setstate__,
    )
