"""Checking a message read from a Kafka topic against its channel in the AsyncAPI document
(:func:`validate_against_channel`): the tests and the end-to-end checks read what the gateway wrote and hold it
to the published contract."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import referencing
from referencing.jsonschema import DRAFT202012

from gateway.contracts.topics import channel_id

__all__ = ["validate_against_channel"]

def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``node``, or what its local ``$ref`` (followed until there is none) points at."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _problems(validator: Any, instance: Any, where: str) -> tuple[list[str], bool]:
    """Problems of ``instance`` (place and rule, never the value) and whether it is another kind of message
    altogether: a different JSON type, or a different constant where a message names its kind."""
    problems = []
    other_kind = False
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        pointer = where + "".join(f"/{p}" for p in path)
        if error.validator in ("required", "additionalProperties"):
            what = error.message
        elif isinstance(error.validator_value, dict) or (
                isinstance(error.validator_value, list) and any(isinstance(v, dict) for v in error.validator_value)):
            what = f"fails {error.validator}"  # subschemas: too long to quote
        else:
            what = f"fails {error.validator} {json.dumps(error.validator_value, ensure_ascii=False)[:120]}"
        problems.append(f"{pointer}: {what}")
        other_kind |= (error.validator == "type" and not path) or (error.validator == "const" and len(path) == 1)
    return problems, other_kind


def validate_against_channel(document: Mapping[str, Any], channel_address: str, message_dict: Any,
                             headers: Mapping[str, str] | None = None, *, prefix: str = "") -> list[str]:
    """Problems of ``message_dict`` (a decoded message value) against the channel of ``channel_address``;
    empty when it matches one of the channel's messages. ``headers`` (name -> value), when given, are checked
    too; ``prefix`` (a deployment's topic prefix) is removed from the address first. Problems name the place
    and the rule, never the offending value."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # jsonschema ships no types

    address = channel_address.removeprefix(prefix) if prefix else channel_address
    channel = next((c for c in document["channels"].values() if c.get("address") == address), None)
    if channel is None:
        return [f"no channel has the address {address}"]
    if not channel.get("messages"):
        return [f"channel {address} carries no messages"]
    base = "urn:quartieri-gateway:asyncapi"
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        base, DRAFT202012.create_resource(dict(document)))
    cid = channel_id(address)
    candidates: list[tuple[str, list[str], bool]] = []
    for name in channel["messages"]:
        entry = channel["messages"][name]
        message = _resolve(document, entry)
        ref = entry.get("$ref") if isinstance(entry.get("$ref"), str) else f"#/channels/{cid}/messages/{name}"
        pointer = base + ref
        problems: list[str] = []
        other_kind = False
        checks = [("payload", message_dict)] + ([("headers", dict(headers))] if headers is not None else [])
        for part, instance in checks:
            if part in message:
                found, other = _problems(
                    Draft202012Validator({"$ref": f"{pointer}/{part}"}, registry=registry), instance, part)
                problems += found
                other_kind |= other
        if not problems:
            return []
        candidates.append((name, problems, other_kind))
    # Report against the messages of the same kind (all of them if none is), those that come closest.
    pool = [c for c in candidates if not c[2]] or candidates
    fewest = min(len(c[1]) for c in pool)
    return [f"{name}: {problem}" for name, problems, _ in pool if len(problems) == fewest for problem in problems]
