"""Check every response the service tests see against the shipped OpenAPI file."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from keymgmt.server import OPENAPI_PATH


class OpenApiChecker:
    """Finds the documented operation of a response and validates status, type and body."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
        jsonschema.Draft202012Validator.check_schema({"$defs": self.doc["components"]["schemas"]})
        self._registry: Registry[Any] = Registry().with_resource(
            "urn:openapi", Resource.from_contents(self.doc, default_specification=DRAFT202012)
        )
        self._paths = [
            (re.compile("^" + re.sub(r"\{[a-z]+\}", self._param, p) + "$"), p)
            for p in self.doc["paths"]
        ]
        self.checked = 0

    @staticmethod
    def _param(match: re.Match[str]) -> str:
        return "(.+)" if match.group(0) == "{request}" else "([^/]+)"

    def _schema(self, ref: str) -> dict[str, Any]:
        return {"$ref": "urn:openapi" + ref}

    def _validate(self, schema: dict[str, Any], value: Any) -> None:
        validator = jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=jsonschema.FormatChecker()
        )
        validator.validate(value)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        """The documented operation for a request, or None for an undocumented route."""
        for pattern, template in self._paths:
            if pattern.match(path):
                return self.doc["paths"][template].get(method.lower())  # type: ignore[no-any-return]
        return None

    def check(self, response: httpx.Response) -> None:
        """Raise AssertionError unless ``response`` is what the OpenAPI file documents."""
        response.read()
        request = response.request
        operation = self.operation(request.method, request.url.path)
        status = str(response.status_code)
        content_type = response.headers.get("content-type", "").split(";")[0]
        if operation is None:
            assert status in ("404", "405"), f"undocumented route answered {status}"
            documented: dict[str, Any] = self.doc["components"]["responses"]["Error"]
        else:
            assert status in operation["responses"], (
                f"{request.method} {request.url.path}: status {status} is not documented"
            )
            documented = operation["responses"][status]
            if "$ref" in documented:
                documented = self.doc["components"]["responses"]["Error"]
        content = documented.get("content")
        if content is None:
            assert not response.content, f"{status} should have no body"
        else:
            assert content_type in content, (
                f"{request.method} {request.url.path}: {content_type} not documented for {status}"
            )
            if content_type == "application/json":
                schema = content[content_type]["schema"]
                ref = schema.get("$ref")
                self._validate(self._schema(ref) if ref else schema, response.json())
        self.checked += 1
