"""The shape a file's contents must have before any of it is used: one line naming the entry.

A schema is a type (or a tuple of types, `NONE` among them where an entry may be null), a
dict of schemas (a mapping that holds at least these keys), or a one-element list of a
schema (a list whose items all match it). An int is never a bool; a float may be an int.
Checksums prove a file is the one written, not that the writer wrote what this version reads.
"""
from __future__ import annotations

from typing import Any

NONE = type(None)


def mismatch(value: Any, schema: Any, where: str = "") -> str | None:
    """Where `value` departs from `schema`, as a few words ("'rng.numpy' is missing"), or None."""
    name = f"'{where}'" if where else "the top level"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{name} is {kind(value)}, not {kind_name(dict)}"
        for key, inner in schema.items():
            at = f"{where}.{key}" if where else key
            if key not in value:
                return f"'{at}' is missing"
            found = mismatch(value[key], inner, at)
            if found:
                return found
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{name} is {kind(value)}, not {kind_name(list)}"
        return next((found for i, item in enumerate(value) if (found := mismatch(item, schema[0], f"{where}[{i}]"))),
                    None)
    types = schema if isinstance(schema, tuple) else (schema,)
    if any(fits(value, t) for t in types):
        return None
    return f"{name} is {kind(value)}, not {' or '.join(kind_name(t) for t in types)}"


def fits(value: Any, t: type) -> bool:
    if isinstance(value, bool) and t in (int, float):
        return False
    return isinstance(value, int) if t is float and not isinstance(value, float) else isinstance(value, t)


NAMES = {NONE: "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
         dict: "a mapping", list: "a list"}


def kind(value: Any) -> str:
    return kind_name(type(value))


def kind_name(t: type) -> str:
    return NAMES.get(t) or f"a {t.__name__}"


ARRAY_KINDS = {"iu": "integers", "f": "floats", "U": "text"}


def array_mismatch(arrays, schema: dict[str, tuple[int, str]], optional: tuple[str, ...] = ()) -> str | None:
    """Where the arrays of an npz file (`arrays[name]`, names in `arrays.files`) depart from
    `schema`, name -> (dimensions, numpy kind letters of ARRAY_KINDS); None when they fit."""
    for name, (ndim, kinds) in schema.items():
        if name not in arrays.files:
            if name in optional:
                continue
            return f"'{name}' is missing"
        array = arrays[name]
        if array.ndim != ndim or array.dtype.kind not in kinds:
            return f"'{name}' is a {array.ndim}-d array of {array.dtype}, not a {ndim}-d array of {ARRAY_KINDS[kinds]}"
    return None
