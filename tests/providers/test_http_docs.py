"""The JSON examples of docs/providers/http.md fit the schemas beside it, and the events example parses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from herald.providers.http import HttpInbound

DOCS = Path(__file__).parents[2] / "docs/providers"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((DOCS / "http" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def examples() -> list[Any]:
    text = (DOCS / "http.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)]


def test_every_schema_is_a_valid_schema() -> None:
    for path in sorted((DOCS / "http").glob("*.schema.json")):
        validator(path.name.removesuffix(".schema.json"))


def test_the_examples_fit_the_schemas() -> None:
    found = examples()
    calls = [item for item in found if "call_id" in item]
    sends = [item for item in found if "message_id" in item]
    bodies = [item for item in found if "events" in item]
    assert calls and sends and bodies
    for item in calls:
        validator("start-call-request").validate(item)
    for item in sends:
        validator("send-message-request").validate(item)
    for item in bodies:
        validator("events").validate(item)
        assert HttpInbound().parse(json.dumps(item).encode(), {})
