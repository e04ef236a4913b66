"""docs/api.md and the live OpenAPI schema agree: every route documented and described, same examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from ember.platform.api import schemas

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROUTE_HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`$", re.MULTILINE)
CURL_BODY = re.compile(r"-d '(\{.*?\})'", re.DOTALL)


def doc_sections() -> dict[tuple[str, str], str]:
    """(method, path) → the text under that route's heading, up to the next heading."""
    text = API_DOC.read_text(encoding="utf-8")
    headings = list(ROUTE_HEADING.finditer(text))
    sections = {}
    for heading, following in zip(headings, headings[1:] + [None], strict=True):
        end = following.start() if following else len(text)
        body = text[heading.end() : end].split("\n## ", 1)[0]
        sections[(heading.group(1), heading.group(2))] = body
    return sections


@pytest.fixture(scope="module")
def openapi(base_url) -> dict:
    return httpx.get(f"{base_url}/openapi.json", timeout=30).json()


def operations(openapi: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, methods in openapi["paths"].items()
        for method, operation in methods.items()
    }


def request_schema_name(operation: dict) -> str | None:
    for content in operation.get("requestBody", {}).get("content", {}).values():
        return content["schema"]["$ref"].rsplit("/", 1)[-1]
    return None


def undescribed_fields(openapi: dict, name: str, seen: set[str]) -> list[str]:
    """Fields of component ``name``, and of the components it refers to, that have no description."""
    if name in seen:
        return []
    seen.add(name)
    component = openapi["components"]["schemas"][name]
    missing = [
        f"{name}.{field}"
        for field, spec in component.get("properties", {}).items()
        if not spec.get("description")
    ]
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(component)):
        missing += undescribed_fields(openapi, ref, seen)
    return missing


def test_every_route_is_documented_with_a_curl_example(openapi):
    sections = doc_sections()
    served = set(operations(openapi))
    assert sorted(served - set(sections)) == [], "routes missing from docs/api.md"
    assert sorted(set(sections) - served) == [], "docs/api.md documents routes the app does not serve"
    for route, section in sections.items():
        assert "curl " in section, f"{route} has no curl example"


def test_every_route_parameter_and_request_field_is_described(openapi):
    missing = []
    for route, operation in operations(openapi).items():
        if not operation.get("description"):
            missing.append(f"{route}: route description")
        missing += [
            f"{route}: {p['name']}" for p in operation.get("parameters", []) if not p.get("description")
        ]
        if name := request_schema_name(operation):
            missing += undescribed_fields(openapi, name, set())
    assert missing == []


def test_the_docs_request_bodies_are_the_schema_examples_and_valid(openapi):
    sections = doc_sections()
    for route, operation in operations(openapi).items():
        name = request_schema_name(operation)
        if name is None or not hasattr(schemas, name):  # multipart uploads have no JSON body
            continue
        bodies = [json.loads(body) for body in CURL_BODY.findall(sections[route])]
        assert bodies, f"{route}: no JSON body in its curl example"
        for body in bodies:
            getattr(schemas, name).model_validate(body)
        examples = openapi["components"]["schemas"][name].get("examples")
        assert examples, f"{name} has no example in the schema"
        assert examples[0] in bodies, f"{route}: the schema's example is not the documented body"


def test_search_without_collections_is_refused_as_documented(admin):
    response = admin.post("/v1/search", json={"query": "how do decorators work"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "collections"
    assert '"param": "collections"' in doc_sections()[("POST", "/v1/search")]
