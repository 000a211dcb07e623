"""Translate a (simple) JSON schema into a regex whose every full match validates against it.

Used by the transformers backend, which enforces structured output with a regex-constrained
decoder (:mod:`vidagent.llm.constrain`). The output is compact JSON with the properties in schema
order, every declared property present. Supported keywords:

- ``type``: object (``properties``; ``additionalProperties`` may be false or absent — only declared
  keys are emitted), array (``items``, ``minItems``, ``maxItems``), string (``minLength``,
  ``maxLength``), integer, number, boolean, null, and a list of types;
- ``enum``, ``const``, ``anyOf``/``oneOf`` (alternation; ``oneOf`` exclusivity is not checked),
  single-element ``allOf``, local ``$ref`` (``#/$defs/...``, not recursive);
- integer ``minimum``/``maximum`` when both are given and the range has at most 1000 values, or
  ``minimum`` 0 alone; annotations (``title``, ``description``, ``default``, ``examples``).

Anything else (``pattern``, ``format``, number bounds, recursive refs, ...) raises
:class:`StructuredOutputUnsupportedError` rather than generating output that might not validate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vidagent.llm.errors import StructuredOutputUnsupportedError

_STRING_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])'
_INTEGER = r"-?(?:0|[1-9][0-9]{0,17})"
_NON_NEGATIVE = r"(?:0|[1-9][0-9]{0,17})"
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,3})?"
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment"}
_MAX_RANGE = 1000


def schema_to_regex(schema: dict[str, Any]) -> str:
    """A regex (for ``regex.fullmatch``) of compact JSON documents valid under ``schema``."""
    return _Translator(schema).node(schema, path="$", refs=())


class _Translator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = {**root.get("definitions", {}), **root.get("$defs", {})}

    def node(self, schema: Any, path: str, refs: tuple[str, ...]) -> str:
        if schema is True or schema == {}:
            raise StructuredOutputUnsupportedError(f"unconstrained value at {path} (any JSON)")
        if not isinstance(schema, dict):
            raise StructuredOutputUnsupportedError(f"schema at {path} is not an object: {schema!r}")
        if "$ref" in schema:
            return self.ref(schema, path, refs)
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            return _alternatives(re.escape(_dump(v)) for v in values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self.only(schema, {key}, path)
                return _alternatives(
                    self.node(s, f"{path}/{key}[{i}]", refs) for i, s in enumerate(schema[key])
                )
        if "allOf" in schema:
            self.only(schema, {"allOf"}, path)
            if len(schema["allOf"]) != 1:
                raise StructuredOutputUnsupportedError(f"allOf with several schemas at {path}")
            return self.node(schema["allOf"][0], f"{path}/allOf[0]", refs)
        kind = schema.get("type")
        if isinstance(kind, list):
            return _alternatives(self.node({**schema, "type": t}, path, refs) for t in kind)
        return self.typed(schema, kind, path, refs)

    def typed(self, schema: dict[str, Any], kind: Any, path: str, refs: tuple[str, ...]) -> str:
        if kind == "object":
            return self.object(schema, path, refs)
        if kind == "array":
            self.only(schema, {"type", "items", "minItems", "maxItems"}, path)
            item = self.node(schema.get("items", {}), f"{path}[]", refs)
            return _repeat(item, ",", schema.get("minItems", 0), schema.get("maxItems"), "[", "]")
        if kind == "string":
            self.only(schema, {"type", "minLength", "maxLength"}, path)
            low, high = schema.get("minLength", 0), schema.get("maxLength")
            return f'"{_STRING_CHAR}{{{low},{"" if high is None else high}}}"'
        if kind == "integer":
            self.only(schema, {"type", "minimum", "maximum"}, path)
            return _integer(schema, path)
        if kind == "number":
            self.only(schema, {"type"}, path)
            return _NUMBER
        if kind == "boolean":
            self.only(schema, {"type"}, path)
            return "(?:true|false)"
        if kind == "null":
            self.only(schema, {"type"}, path)
            return "null"
        raise StructuredOutputUnsupportedError(f"schema type {kind!r} at {path}")

    def object(self, schema: dict[str, Any], path: str, refs: tuple[str, ...]) -> str:
        self.only(schema, {"type", "properties", "required", "additionalProperties"}, path)
        if schema.get("additionalProperties") not in (None, False, True):
            raise StructuredOutputUnsupportedError(f"typed additionalProperties at {path}")
        properties: dict[str, Any] = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(properties)
        if missing:
            raise StructuredOutputUnsupportedError(f"required but undeclared {missing} at {path}")
        members = [
            re.escape(_dump(name) + ":") + self.node(sub, f"{path}.{name}", refs)
            for name, sub in properties.items()
        ]
        return r"\{" + ",".join(members) + r"\}"

    def ref(self, schema: dict[str, Any], path: str, refs: tuple[str, ...]) -> str:
        self.only(schema, {"$ref"}, path)
        target = schema["$ref"]
        name = target.rsplit("/", 1)[-1]
        if not target.startswith(("#/$defs/", "#/definitions/")) or name not in self.defs:
            raise StructuredOutputUnsupportedError(f"$ref {target!r} at {path}")
        if target in refs:
            raise StructuredOutputUnsupportedError(f"recursive $ref {target!r} at {path}")
        return self.node(self.defs[name], f"{path}->{name}", (*refs, target))

    @staticmethod
    def only(schema: dict[str, Any], allowed: set[str], path: str) -> None:
        extra = set(schema) - allowed - _ANNOTATIONS - {"$defs", "definitions"}
        if extra:
            raise StructuredOutputUnsupportedError(
                f"JSON-schema keyword(s) {sorted(extra)} at {path} cannot be enforced by the "
                "regex-constrained decoder; use the openai or vllm backend"
            )


def _integer(schema: dict[str, Any], path: str) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return _INTEGER
    if high is None and low == 0:
        return _NON_NEGATIVE
    if low is not None and high is not None and 0 <= high - low < _MAX_RANGE:
        return _alternatives(str(v) for v in range(int(low), int(high) + 1))
    raise StructuredOutputUnsupportedError(
        f"integer bounds minimum={low} maximum={high} at {path} (need both, <= 1000 values)"
    )


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _alternatives(parts: Any) -> str:
    return "(?:" + "|".join(parts) + ")"


def _repeat(item: str, sep: str, low: int, high: int | None, open_: str, close: str) -> str:
    """``open item (sep item)* close`` with between ``low`` and ``high`` items."""
    o, c = re.escape(open_), re.escape(close)
    if high == 0:
        return o + c
    rest_high = "" if high is None else str(high - 1)
    body = f"{item}(?:{re.escape(sep)}{item}){{{max(low - 1, 0)},{rest_high}}}"
    return f"{o}{body}{c}" if low > 0 else f"{o}(?:{body})?{c}"
