"""The REST application's routes and its OpenAPI document list the same paths and methods, and
the pure parts of the REST layer (listener parsing) behave as documented."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from tomyum.connect.connector import ConnectError
from tomyum.connect.offsets import MemoryOffsetBackingStore
from tomyum.connect.openapi import OPERATIONS, document
from tomyum.connect.rest import create_app
from tomyum.connect.runtime import parse_listener
from tomyum.connect.standalone import StandaloneHerder
from tomyum.connect.worker import Worker, WorkerConfig

pytestmark = pytest.mark.timeout(10)


def test_openapi_documents_every_route() -> None:
    config = WorkerConfig.from_props({"key.converter": "JsonConverter", "value.converter": "JsonConverter"}, "w:1")
    herder = StandaloneHerder(Worker(config, MemoryOffsetBackingStore(), listener=None))  # type: ignore[arg-type]
    app = create_app(herder)
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    documented = {(p, m) for p, methods in OPERATIONS.items() for m in methods}
    assert served == documented
    doc = document("4.4.0")
    assert doc["openapi"] == "3.1.0" and set(doc["paths"]) == set(OPERATIONS)


def test_listeners() -> None:
    assert parse_listener("http://:8083") == ("", 8083)
    assert parse_listener("http://127.0.0.1:0,http://other:1") == ("127.0.0.1", 0)
    with pytest.raises(ConnectError):
        parse_listener("tcp://x:1")
