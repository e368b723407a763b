"""``components.schemas`` of the AsyncAPI document under construction: message schemas are collected with their
``$defs``, which are then hoisted into ``components.schemas`` (identical definitions become one; a name with several
variants is prefixed with the first schema that has each) and every reference is rewritten to point into the
document, so that the document is self-contained."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["ComponentSchemas"]

def _walk_refs(node: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: rewrite(v) if k == "$ref" and isinstance(v, str) else _walk_refs(v, rewrite)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_refs(v, rewrite) for v in node]
    return node


def _signature(owner: str, name: str, schema: dict[str, Any], label: Mapping[tuple[str, str], int]) -> str:
    """A definition's name and body, its references replaced by the groups of what they refer to."""

    def group(ref: str) -> str:
        if ref.startswith("#/$defs/"):
            return f"@{label[(owner, ref.removeprefix('#/$defs/'))]}"
        return ref

    return name + json.dumps(_walk_refs(schema, group), sort_keys=True)


class ComponentSchemas:
    """components.schemas under construction."""

    def __init__(self) -> None:
        self._roots: dict[str, dict[str, Any]] = {}

    def add(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        """Register ``schema`` (possibly with ``$defs``) as ``name``; returns a reference to it."""
        if name in self._roots and self._roots[name] != schema:
            raise ValueError(f"two different schemas are called {name}")
        self._roots[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def model(self, name: str, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, str]:
        return self.add(name, model.model_json_schema(mode=mode))

    def build(self) -> dict[str, Any]:
        """Every schema, with the definitions of all hoisted; references rewritten to point at them."""
        defs = {owner: dict(schema.get("$defs", {})) for owner, schema in self._roots.items()}
        nodes = [(owner, name) for owner, owned in defs.items() for name in owned]
        # Partition refinement: two definitions are the same when their names, bodies and everything they
        # refer to are; identical ones become one component.
        label = {node: 0 for node in nodes}
        groups = 1 if nodes else 0
        while True:
            signature = {(owner, name): _signature(owner, name, defs[owner][name], label) for owner, name in nodes}
            ids = {sig: i for i, sig in enumerate(sorted(set(signature.values())))}
            label = {node: ids[signature[node]] for node in nodes}
            if len(ids) == groups:
                break
            groups = len(ids)
        variants: dict[str, list[int]] = {}
        first_owner: dict[int, str] = {}
        for owner, name in nodes:
            group = label[(owner, name)]
            first_owner.setdefault(group, owner)
            if group not in variants.setdefault(name, []):
                variants[name].append(group)

        def component(owner: str, def_name: str) -> str:
            if len(variants[def_name]) == 1:
                return def_name
            return f"{first_owner[label[(owner, def_name)]]}.{def_name}"

        result: dict[str, Any] = {}

        def put(name: str, owner: str, schema: dict[str, Any]) -> None:
            def rewrite(ref: str) -> str:
                if ref.startswith("#/$defs/"):
                    return f"#/components/schemas/{component(owner, ref.removeprefix('#/$defs/'))}"
                return ref

            body = _walk_refs({k: v for k, v in schema.items() if k != "$defs"}, rewrite)
            if name in result and result[name] != body:
                raise ValueError(f"schema name {name} is used twice")
            result[name] = body

        for owner, schema in self._roots.items():
            put(owner, owner, schema)
            for def_name, definition in defs[owner].items():
                put(component(owner, def_name), owner, definition)
        return dict(sorted(result.items()))

