"""Every response field in /api/openapi.json has a type: no opaque objects for clients to guess at."""

from __future__ import annotations

# How apispec writes "or null" beside a nullable Nested (OpenAPI 3.0): not a value of its own.
NULL = {"type": "object", "nullable": True}


def untyped(spec: dict) -> list[str]:
    """Where a response schema (followed through $ref, once each) leaves a value's shape unsaid."""
    components = spec.get("components", {}).get("schemas", {})
    problems: list[str] = []
    seen: set[str] = set()

    def check(node: dict, where: str) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                check(components[name], name)
            return
        for key in ("allOf", "oneOf", "anyOf"):
            for index, part in enumerate(node.get(key, ())):
                if part != NULL:
                    check(part, f"{where}.{key}[{index}]")
            if key in node:
                return
        kind = node.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        if kind is None:
            problems.append(f"{where}: no type")
        elif kind == "array":
            if "items" not in node:
                problems.append(f"{where}: an array of unsaid items")
            else:
                check(node["items"], f"{where}[]")
        elif kind == "object":
            properties = node.get("properties") or {}
            extra = node.get("additionalProperties")
            for name, prop in properties.items():
                check(prop, f"{where}.{name}")
            if isinstance(extra, dict) and extra:
                check(extra, f"{where}.*")
            elif not properties and not node.get("description"):
                problems.append(f"{where}: an object with neither properties, typed values nor a description")

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for status, response in (operation.get("responses") or {}).items():
                if "$ref" in response:
                    response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
                for media, content in (response.get("content") or {}).items():
                    if media == "application/json" and "schema" in content:
                        check(content["schema"], f"{method.upper()} {path} {status}")
    return sorted(set(problems))


def test_every_response_field_in_the_openapi_document_has_a_type(client):
    spec = client.get("/api/openapi.json").get_json()
    assert untyped(spec) == []


def test_the_check_finds_an_opaque_object():
    spec = {"paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/X"}}}}}}}},
        "components": {"schemas": {"X": {"type": "object", "properties": {
            "ok": {"type": "object", "additionalProperties": {"type": "integer"}},
            "opaque": {"type": "object"}, "raw": {}}}}}}
    assert untyped(spec) == ["X.opaque: an object with neither properties, typed values nor a description",
                             "X.raw: no type"]
