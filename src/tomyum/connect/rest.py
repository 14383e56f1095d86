"""Kafka Connect's REST API on a herder (Starlette; served by uvicorn).

Paths, status codes and bodies are those of Kafka's ConnectorsResource, ConnectorPluginsResource,
RootResource and LoggingResource: 201 + Location for a created connector, 202 for pause, resume
and a restart with ``includeTasks``/``onlyFailed`` (its body the restart plan), 204 for stop,
delete, task restart and a plain connector restart; errors as ``{"error_code": <status>,
"message": …}``. A distributed worker that is not the leader forwards writes to the leader (and a
task restart to the worker running the task), as Kafka's workers do; during a rebalance they are
answered 409. The OpenAPI document (:mod:`tomyum.connect.openapi`) is served at ``/openapi.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tomyum import __version__
from tomyum.connect.distributed import DistributedHerder
from tomyum.connect.herder import REBALANCING, BadRequestError, ForwardError, RestError
from tomyum.connect.openapi import document as openapi_document
from tomyum.connect.standalone import StandaloneHerder
from tomyum.connect.worker import TargetState

KAFKA_VERSION = "4.4.0"
#: how many workers a request has been forwarded through (a request is forwarded at most twice)
FORWARDED = "X-Tomyum-Forwarded"
Endpoint = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": status, "message": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as e:
        raise BadRequestError(f"Cannot deserialize value: {e}") from None


def _bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


async def _forward(request: Request, url: str, hops: int) -> Response:
    """The same request to ``url``; its answer as ours."""
    import httpx

    target = url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {FORWARDED: str(hops), "Content-Type": request.headers.get("content-type", "application/json")}
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.request(request.method, target, content=await request.body(), headers=headers)
    except httpx.HTTPError as e:
        return _error(409, f"{REBALANCING}: forwarding to {url} failed ({e})")
    kept = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "location")}
    return Response(r.content, status_code=r.status_code, headers=kept)


def _forwarding(herder: StandaloneHerder | DistributedHerder, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, forwarded where the herder says (:class:`ForwardError`): at most twice (a
    worker to the leader, the leader to the worker running a task), then 409."""
    async def wrapped(request: Request) -> Response:
        await request.body()  # read now: kept by the request for the endpoint or a forward
        try:
            return await endpoint(request)
        except ForwardError as e:
            hops = int(request.headers.get(FORWARDED, "0")) if request.headers.get(FORWARDED, "0").isdigit() else 2
            if not e.url or hops >= 2:
                logging.getLogger("tomyum.connect.rest").info("409 for %s %s: %s", request.method, request.url.path,
                                                               e.url or "no leader")
                return _error(409, REBALANCING)
            response = await _forward(request, e.url, hops + 1)
            if response.status_code < 300:
                await run_in_threadpool(herder.catch_up)
            return response
    return wrapped


def create_app(herder: StandaloneHerder | DistributedHerder) -> Starlette:
    """The REST application for ``herder``; herder calls run in a thread pool (they may block)."""

    def call(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args)

    async def root(request: Request) -> Response:
        return JSONResponse({"version": KAFKA_VERSION, "commit": f"tomyum-{__version__}",
                             "kafka_cluster_id": herder.kafka_cluster_id})

    async def health(request: Request) -> Response:
        if not herder.ready:
            return JSONResponse({"status": "starting", "message": "Worker is still starting up."}, status_code=503)
        return JSONResponse({"status": "healthy",
                             "message": "Worker has completed startup and is ready to handle requests."})

    async def list_connectors(request: Request) -> Response:
        names = await call(herder.connectors)
        expand = request.query_params.getlist("expand")
        if not expand:
            return JSONResponse(names)
        out: dict[str, Any] = {}
        for name in names:
            entry: dict[str, Any] = {}
            try:
                if "status" in expand:
                    entry["status"] = await call(herder.connector_status_json, name)
                if "info" in expand:
                    entry["info"] = await call(herder.connector_info, name)
            except RestError:
                continue  # deleted while we looked
            out[name] = entry
        return JSONResponse(out)

    async def create_connector(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("config"), dict):
            raise BadRequestError("Connector config must be a JSON object under \"config\"")
        name = (body.get("name") or "").strip()
        config = {str(k): str(v) for k, v in body["config"].items() if v is not None}
        _check_name(name, config)
        initial = body.get("initial_state")
        state = TargetState.STARTED
        if initial is not None:
            try:
                state = {"RUNNING": TargetState.STARTED, "PAUSED": TargetState.PAUSED,
                         "STOPPED": TargetState.STOPPED}[str(initial).upper()]
            except KeyError:
                raise BadRequestError(f"Invalid initial state: {initial}") from None
        _, info = await call(herder.put_connector_config, name, config, False, state)
        return JSONResponse(info, status_code=201, headers={"Location": f"/connectors/{name}"})

    async def get_connector(request: Request) -> Response:
        return JSONResponse(await call(herder.connector_info, request.path_params["name"]))

    async def connector_config(request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(await call(herder._require, name))
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequestError("Connector configuration must be a JSON object")
        if request.method == "PATCH":
            return JSONResponse(await call(herder.patch_connector_config, name, body))
        config = {str(k): str(v) for k, v in body.items() if v is not None}
        _check_name(name, config)
        created, info = await call(herder.put_connector_config, name, config, True)
        if created:
            return JSONResponse(info, status_code=201, headers={"Location": f"/connectors/{name}"})
        return JSONResponse(info)

    async def delete_connector(request: Request) -> Response:
        await call(herder.delete_connector, request.path_params["name"])
        return Response(status_code=204)

    async def status(request: Request) -> Response:
        return JSONResponse(await call(herder.connector_status_json, request.path_params["name"]))

    async def restart(request: Request) -> Response:
        name = request.path_params["name"]
        include_tasks, only_failed = _bool_param(request, "includeTasks"), _bool_param(request, "onlyFailed")
        if not include_tasks and not only_failed:
            await call(herder.restart_connector, name)
            return Response(status_code=204)
        plan = await call(herder.restart_connector_and_tasks, name, include_tasks, only_failed)
        return JSONResponse(plan, status_code=202)

    async def pause(request: Request) -> Response:
        await call(herder.pause, request.path_params["name"])
        return Response(status_code=202)

    async def resume(request: Request) -> Response:
        await call(herder.resume, request.path_params["name"])
        return Response(status_code=202)

    async def stop(request: Request) -> Response:
        await call(herder.stop_connector, request.path_params["name"])
        return Response(status_code=204)

    async def fence(request: Request) -> Response:
        await call(herder.fence_zombies, request.path_params["name"])
        return Response(status_code=204)

    async def tasks(request: Request) -> Response:
        return JSONResponse(await call(herder.task_infos, request.path_params["name"]))

    async def put_task_configs(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
            raise BadRequestError("Task configs must be a JSON array of objects")
        configs = [{str(k): str(v) for k, v in c.items() if v is not None} for c in body]
        await call(herder.put_task_configs, request.path_params["name"], configs)
        return Response(status_code=204)

    def _task(request: Request) -> int:
        try:
            return int(request.path_params["task"])
        except ValueError:
            raise RestError("HTTP 404 Not Found", 404) from None

    async def task_status(request: Request) -> Response:
        return JSONResponse(await call(herder.task_status_json, request.path_params["name"], _task(request)))

    async def task_restart(request: Request) -> Response:
        await call(herder.restart_task, request.path_params["name"], _task(request))
        return Response(status_code=204)

    async def topics(request: Request) -> Response:
        return JSONResponse(await call(herder.topics, request.path_params["name"]))

    async def topics_reset(request: Request) -> Response:
        await call(herder.reset_topics, request.path_params["name"])
        return Response(status_code=202)

    async def offsets(request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(await call(herder.offsets, name))
        if request.method == "DELETE":
            return JSONResponse({"message": await call(herder.reset_offsets, name)})
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("offsets"), list) or not body["offsets"]:
            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets request")
        return JSONResponse({"message": await call(herder.alter_offsets, name, body["offsets"])})

    async def connector_plugins(request: Request) -> Response:
        only = request.query_params.get("connectorsOnly", "true").strip().lower() != "false"
        return JSONResponse(herder.connector_plugins(only))

    async def plugin_config(request: Request) -> Response:
        return JSONResponse(await call(herder.plugin_config, request.path_params["plugin"]))

    async def validate(request: Request) -> Response:
        plugin = request.path_params["plugin"]
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequestError("Connector configuration must be a JSON object")
        config = {str(k): str(v) for k, v in body.items() if v is not None}
        included = config.get("connector.class")
        if included is not None and not _normalized(included).endswith(_normalized(plugin)):
            raise BadRequestError(f"Included connector type {included} does not match request type {plugin}")
        config.setdefault("connector.class", plugin)
        return JSONResponse(await call(herder.validate, config))

    async def loggers(request: Request) -> Response:
        out = {}
        manager = logging.Logger.manager
        names = sorted(n for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger) and lg.level)
        out["root"] = {"level": logging.getLevelName(logging.getLogger().getEffectiveLevel())}
        for n in names:
            out[n] = {"level": logging.getLevelName(logging.getLogger(n).level)}
        return JSONResponse(out)

    async def logger(request: Request) -> Response:
        name = request.path_params["logger"]
        target = logging.getLogger() if name == "root" else logging.getLogger(name)
        if request.method == "GET":
            if name != "root" and name not in logging.Logger.manager.loggerDict:
                return _error(404, f"Logger {name} not found.")
            return JSONResponse({"level": logging.getLevelName(target.getEffectiveLevel())})
        body = await _json_body(request)
        level = str((body or {}).get("level", "")).upper()
        levels = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
                  "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}
        if level not in levels:
            raise BadRequestError(f"Invalid log level '{level}'.")
        scope = request.query_params.get("scope", "worker")
        if scope not in ("worker", "cluster"):
            scope = "worker"
        target.setLevel(levels[level])
        prefix = "" if name == "root" else name + "."
        changed = sorted([name] + [n for n in logging.Logger.manager.loggerDict if n.startswith(prefix) and prefix])
        if scope == "cluster":
            return Response(status_code=204)
        return JSONResponse(changed)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(KAFKA_VERSION))

    c = "/connectors/{name}"
    routes = [
        Route("/", root, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/connectors", list_connectors, methods=["GET"]),
        Route("/connectors", _forwarding(herder, create_connector), methods=["POST"]),
        Route(c, get_connector, methods=["GET"]),
        Route(c, _forwarding(herder, delete_connector), methods=["DELETE"]),
        Route(c + "/config", _forwarding(herder, connector_config), methods=["GET", "PUT", "PATCH"]),
        Route(c + "/status", status, methods=["GET"]),
        Route(c + "/restart", _forwarding(herder, restart), methods=["POST"]),
        Route(c + "/pause", _forwarding(herder, pause), methods=["PUT"]),
        Route(c + "/resume", _forwarding(herder, resume), methods=["PUT"]),
        Route(c + "/stop", _forwarding(herder, stop), methods=["PUT"]),
        Route(c + "/fence", _forwarding(herder, fence), methods=["PUT"]),
        Route(c + "/tasks", tasks, methods=["GET"]),
        Route(c + "/tasks", _forwarding(herder, put_task_configs), methods=["POST"]),
        Route(c + "/tasks/{task}/status", task_status, methods=["GET"]),
        Route(c + "/tasks/{task}/restart", _forwarding(herder, task_restart), methods=["POST"]),
        Route(c + "/topics", topics, methods=["GET"]),
        Route(c + "/topics/reset", topics_reset, methods=["PUT"]),
        Route(c + "/offsets", _forwarding(herder, offsets), methods=["GET", "PATCH", "DELETE"]),
        Route("/connector-plugins", connector_plugins, methods=["GET"]),
        Route("/connector-plugins/{plugin}/config", plugin_config, methods=["GET"]),
        Route("/connector-plugins/{plugin}/config/validate", validate, methods=["PUT"]),
        Route("/admin/loggers", loggers, methods=["GET"]),
        Route("/admin/loggers/{logger}", logger, methods=["GET", "PUT"]),
    ]

    async def rest_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RestError)
        return _error(exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "HTTP 404 Not Found", 405: "HTTP 405 Method Not Allowed"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, reason)

    async def server_error(request: Request, exc: Exception) -> Response:
        logging.getLogger("tomyum.connect.rest").error("Uncaught exception in REST call to %s", request.url.path,
                                                       exc_info=exc)
        return _error(500, str(exc))

    app = Starlette(routes=routes, exception_handlers={RestError: rest_error, HTTPException: http_error,
                                                        Exception: server_error})
    return app


def _check_name(name: str, config: dict[str, str]) -> None:
    included = config.get("name")
    if included is not None:
        if included != name:
            raise BadRequestError(f"Connector name configuration ({included}) doesn't match connector name in the URL ({name})")
    else:
        config["name"] = name


def _normalized(plugin: str) -> str:
    return plugin[: -len("Connector")] if plugin.endswith("Connector") else plugin
