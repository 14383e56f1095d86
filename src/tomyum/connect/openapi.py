"""The OpenAPI 3.1 document of the REST API (served at ``/openapi.json``): every path and
method of :mod:`tomyum.connect.rest`, with Kafka Connect's status codes and body shapes."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJ: dict[str, Any] = {"type": "object", "additionalProperties": True}
_CONFIG = {"type": "object", "additionalProperties": {"type": "string"}}
_INFO = {"$ref": "#/components/schemas/ConnectorInfo"}
_STATUS = {"$ref": "#/components/schemas/ConnectorStatus"}
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}}}

# path → method → (summary, {status: body schema or None}, request body schema or None)
OPERATIONS: dict[str, dict[str, tuple[str, dict[int, Any], Any]]] = {
    "/": {"get": ("Worker version and the Kafka cluster id", {200: _OBJ}, None)},
    "/health": {"get": ("Worker health", {200: _OBJ, 503: _OBJ}, None)},
    "/openapi.json": {"get": ("This document", {200: _OBJ}, None)},
    "/connectors": {
        "get": ("List connectors (?expand=status|info)", {200: _OBJ}, None),
        "post": ("Create a connector", {201: _INFO, 400: _ERROR, 409: _ERROR},
                 {"type": "object", "properties": {"name": {"type": "string"}, "config": _CONFIG,
                                                   "initial_state": {"enum": ["RUNNING", "PAUSED", "STOPPED"]}}}),
    },
    "/connectors/{name}": {
        "get": ("Connector info", {200: _INFO, 404: _ERROR}, None),
        "delete": ("Delete a connector", {204: None, 404: _ERROR}, None),
    },
    "/connectors/{name}/config": {
        "get": ("Connector config", {200: _CONFIG, 404: _ERROR}, None),
        "put": ("Create or replace a connector's config", {200: _INFO, 201: _INFO, 400: _ERROR}, _CONFIG),
        "patch": ("Patch a connector's config (null removes a key)", {200: _INFO, 400: _ERROR, 404: _ERROR}, _OBJ),
    },
    "/connectors/{name}/status": {"get": ("Connector and task states", {200: _STATUS, 404: _ERROR}, None)},
    "/connectors/{name}/restart": {"post": (
        "Restart the connector (?includeTasks, ?onlyFailed: 202 with the plan)", {202: _STATUS, 204: None, 404: _ERROR},
        None)},
    "/connectors/{name}/pause": {"put": ("Pause the connector and its tasks", {202: None, 404: _ERROR}, None)},
    "/connectors/{name}/resume": {"put": ("Resume the connector and its tasks", {202: None, 404: _ERROR}, None)},
    "/connectors/{name}/stop": {"put": ("Stop the connector; its tasks are shut down", {204: None, 404: _ERROR}, None)},
    "/connectors/{name}/fence": {"put": (
        "Between distributed workers: fence the connector's old task producers (KIP-618), by the leader",
        {204: None, 400: _ERROR, 404: _ERROR, 409: _ERROR}, None)},
    "/connectors/{name}/tasks": {
        "get": ("Task configs", {200: {"type": "array", "items": _OBJ}, 404: _ERROR}, None),
        "post": ("Between distributed workers only: a connector's new task configs, for the leader to write",
                 {204: None, 400: _ERROR, 409: _ERROR}, {"type": "array", "items": _CONFIG}),
    },
    "/connectors/{name}/tasks/{task}/status": {"get": ("A task's state", {200: _OBJ, 404: _ERROR}, None)},
    "/connectors/{name}/tasks/{task}/restart": {"post": ("Restart a task", {204: None, 404: _ERROR}, None)},
    "/connectors/{name}/topics": {"get": ("Topics the connector has used", {200: _OBJ, 404: _ERROR}, None)},
    "/connectors/{name}/topics/reset": {"put": ("Forget the used topics", {202: None, 404: _ERROR}, None)},
    "/connectors/{name}/offsets": {
        "get": ("The connector's offsets (KIP-875)", {200: _OBJ, 404: _ERROR}, None),
        "patch": ("Alter offsets (STOPPED state only)", {200: _MESSAGE, 400: _ERROR, 404: _ERROR}, _OBJ),
        "delete": ("Reset offsets (STOPPED state only)", {200: _MESSAGE, 400: _ERROR, 404: _ERROR}, None),
    },
    "/connector-plugins": {"get": ("Installed plugins (?connectorsOnly=false for all)", {200: {"type": "array"}}, None)},
    "/connector-plugins/{plugin}/config": {"get": ("A plugin's declared configs", {200: {"type": "array"}, 404: _ERROR}, None)},
    "/connector-plugins/{plugin}/config/validate": {"put": (
        "Validate a connector config", {200: _OBJ, 400: _ERROR}, _CONFIG)},
    "/admin/loggers": {"get": ("Logger levels", {200: _OBJ}, None)},
    "/admin/loggers/{logger}": {
        "get": ("A logger's level", {200: _OBJ, 404: _ERROR}, None),
        "put": ("Set a logger's level (?scope=worker|cluster)", {200: {"type": "array"}, 204: None, 400: _ERROR},
                {"type": "object", "properties": {"level": {"type": "string"}}}),
    },
}


def document(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        for method, (summary, responses, body) in methods.items():
            op: dict[str, Any] = {"summary": summary, "responses": {
                str(code): {"description": summary if code < 300 else "error",
                            **({"content": {"application/json": {"schema": schema}}} if schema else {})}
                for code, schema in responses.items()}}
            params = [p[1:-1] for p in path.split("/") if p.startswith("{")]
            if params:
                op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for p in params]
            if body is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "tomyum connect REST API (Kafka Connect's)", "version": version},
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error_code", "message"],
                      "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}}},
            "ConnectorInfo": {"type": "object", "properties": {
                "name": {"type": "string"}, "config": _CONFIG, "type": {"enum": ["source", "sink", "unknown"]},
                "tasks": {"type": "array", "items": {"type": "object", "properties": {
                    "connector": {"type": "string"}, "task": {"type": "integer"}}}}}},
            "ConnectorStatus": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string"},
                "connector": {"type": "object", "properties": {"state": {"type": "string"},
                                                               "worker_id": {"type": "string"},
                                                               "trace": {"type": "string"}}},
                "tasks": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "state": {"type": "string"}, "worker_id": {"type": "string"},
                    "trace": {"type": "string"}}}}}},
        }},
    }
