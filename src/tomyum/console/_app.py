"""The console's pages: Starlette routes rendering Jinja2 templates, over :class:`Cluster`.

Kafka calls block, so each runs in a worker thread (``run_in_threadpool``); a Kafka error is
shown on the page as one line (Kafka's error name and message), never as a traceback.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from confluent_kafka import KafkaException
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tomyum import __version__
from tomyum.console._connect import ConnectCluster, ConnectError
from tomyum.console._kafka import Cluster, iso

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__
templates.env.filters["iso"] = iso
templates.env.filters["q"] = lambda s: quote(str(s), safe="")


def size(n: int | None) -> str:
    """Bytes as a person reads them: 0 B, 512 B, 1.5 KiB, 20.0 MiB."""
    if n is None or n < 0:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


templates.env.filters["size"] = size


def kafka_message(e: KafkaException) -> str:
    error: Any = e.args[0] if e.args else None
    if hasattr(error, "name") and hasattr(error, "str"):
        return f"{error.name()}: {error.str()}"
    return str(e)


async def form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1].strip() for k, v in parse_qs(body, keep_blank_values=True).items()}


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from a number of ms or ``YYYY-MM-DDTHH:MM[:SS]`` in UTC."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return calendar.timegm(time.strptime(text.rstrip("Z"), fmt)) * 1000
        except ValueError:
            continue
    raise ValueError(f"{text!r} is neither milliseconds nor YYYY-MM-DDTHH:MM[:SS] (UTC)")


def parse_headers(text: str) -> list[tuple[str, str]]:
    headers = []
    for line in text.splitlines():
        if line.strip():
            name, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"header {line!r} is not NAME=VALUE")
            headers.append((name.strip(), value))
    return headers


def optional_int(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a whole number") from None


def position(field: str, kind: str, text: str, ends: tuple[str, str]) -> int | None:
    """The number a position of ``kind`` needs: ms for a timestamp, an offset; None for the ends."""
    if kind == "timestamp":
        return parse_time(text)
    if kind == "offset":
        return optional_int(text, "offset") or 0
    if kind not in ends:
        raise ValueError(f"{field}: {kind!r} is not {ends[0]}, {ends[1]}, offset or timestamp")
    return None


class Console:
    def __init__(self, cluster: Cluster, about: Callable[[], dict[str, Any]] | None = None,
                 connect: ConnectCluster | None = None) -> None:
        self.cluster = cluster
        self.about = about  # the broker's version and uptime, when the console runs inside it
        self.connect = connect  # a Kafka Connect worker's REST API, when the console was given one

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("error", request.query_params.get("error"))
        context.setdefault("notice", request.query_params.get("notice"))
        return templates.TemplateResponse(request, name, context, status_code=status)

    @staticmethod
    def back(path: str, notice: str = "", error: str = "") -> RedirectResponse:
        sep = "&" if "?" in path else "?"
        if error:
            return RedirectResponse(f"{path}{sep}error={quote(error)}", status_code=303)
        return RedirectResponse(f"{path}{sep}notice={quote(notice)}" if notice else path, status_code=303)

    # --- pages ---

    async def overview(self, request: Request) -> Response:
        info = await self.call(self.cluster.overview)
        rates = await self.call(self.cluster.throughput)
        sizes, disk_error = await self.call(self.cluster.disk)
        return self.page(request, "overview.html", info=info, rates=rates, nav="overview",
                         disk_used=None if sizes is None else sum(sizes.values()), disk_error=disk_error,
                         about=self.about() if self.about is not None else None)

    async def throughput(self, request: Request) -> Response:
        return JSONResponse({"rates": await self.call(self.cluster.throughput)})

    async def topics(self, request: Request) -> Response:
        internal = request.query_params.get("internal") == "1"
        rows = await self.call(self.cluster.topics, internal)
        sizes, disk_error = await self.call(self.cluster.disk)
        for row in rows:
            row["size"] = None if sizes is None else sum(n for (t, _), n in sizes.items() if t == row["name"])
        return self.page(request, "topics.html", topics=rows, internal=internal, disk_error=disk_error, nav="topics")

    async def create_topic(self, request: Request) -> Response:
        f = await form(request)
        try:
            configs = dict(line.split("=", 1) for line in f.get("configs", "").splitlines() if "=" in line)
            partitions = optional_int(f.get("partitions"), "partitions") or 1
            replication = optional_int(f.get("replication"), "replication factor") or 1
            await self.call(self.cluster.create_topic, f.get("name", ""), partitions, replication,
                            {k.strip(): v.strip() for k, v in configs.items()})
        except (KafkaException, ValueError) as e:
            return self.back("/topics", error=self.describe(e))
        return self.back(f"/topics/{quote(f['name'], safe='')}", notice=f"created topic {f['name']}")

    async def topic(self, request: Request) -> Response:
        name = request.path_params["name"]
        info = await self.call(self.cluster.topic, name)
        sizes, disk_error = await self.call(self.cluster.disk)
        for p in info["partitions"]:
            p["size"] = None if sizes is None else sizes.get((name, p["id"]), 0)
        producers: list[dict[str, Any]] | str
        try:
            producers = await self.call(self.cluster.producers, name)
        except KafkaException as e:
            producers = kafka_message(e)
        return self.page(request, "topic.html", topic=info, disk_error=disk_error, producers=producers, nav="topics")

    async def topic_action(self, request: Request) -> Response:
        name = request.path_params["name"]
        action = request.path_params["action"]
        here = f"/topics/{quote(name, safe='')}"
        f = await form(request)
        try:
            if action == "delete":
                await self.call(self.cluster.delete_topic, name)
                return self.back("/topics", notice=f"deleted topic {name}")
            if action == "config":
                value = None if f.get("op") == "delete" else f.get("value", "")
                await self.call(self.cluster.alter_topic_config, name, f.get("key", ""), value)
                notice = f"{f.get('key')} reset to its default" if value is None else f"{f.get('key')} = {value}"
            elif action == "partitions":
                total = optional_int(f.get("total"), "partitions") or 0
                await self.call(self.cluster.add_partitions, name, total)
                notice = f"{name} now has {total} partitions"
            elif action == "delete-records":
                partition = optional_int(f.get("partition"), "partition")
                before = optional_int(f.get("before"), "before offset")
                await self.call(self.cluster.delete_records, name, partition, -1 if before is None else before)
                notice = "records deleted"
            elif action == "produce":
                partition = optional_int(f.get("partition"), "partition")
                p, o = await self.call(self.cluster.produce, name, f.get("key") or None, f.get("value", ""),
                                       parse_headers(f.get("headers", "")), partition)
                return self.back(f"{here}/messages?partition={p}&start=offset&value={o}",
                                 notice=f"produced to partition {p} at offset {o}")
            else:
                return Response("not found", 404)
        except (KafkaException, ValueError) as e:
            return self.back(here, error=self.describe(e))
        return self.back(here, notice=notice)

    async def messages(self, request: Request) -> Response:
        name = request.path_params["name"]
        q = request.query_params
        start = q.get("start", "newest")
        error = q.get("error")
        records: list[Any] = []
        scanned = 0
        try:
            partition = optional_int(q.get("partition"), "partition")
            limit = min(optional_int(q.get("limit"), "limit") or 50, 1000)
            value = position("start", start, q.get("value", ""), ("newest", "oldest"))
            records, scanned = await self.call(self.cluster.browse, name, partition, start, value,
                                               q.get("q", ""), limit)
        except (KafkaException, ValueError) as e:
            error = self.describe(e)
        info = await self.call(self.cluster.topic, name)
        return self.page(request, "messages.html", topic=info, records=records, scanned=scanned,
                         params=dict(q), start=start, error=error, nav="topics")

    async def tail(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            after = {int(k): int(v) for k, v in json.loads(request.query_params.get("after") or "{}").items()}
        except (ValueError, AttributeError):
            return JSONResponse({"error": "after: not a JSON object of partition: offset"}, 400)
        try:
            records, positions = await self.call(self.cluster.tail, name, after)
        except KafkaException as e:
            return JSONResponse({"error": kafka_message(e)}, 502)
        return JSONResponse({"records": [r.as_dict() for r in records], "after": positions})

    async def groups(self, request: Request) -> Response:
        q = request.query_params
        rows = await self.call(self.cluster.groups)
        states = sorted({r["state"] for r in rows})
        if q.get("state"):
            rows = [r for r in rows if r["state"] == q["state"]]
        min_lag = optional_int(q.get("min_lag"), "min lag") if (q.get("min_lag") or "").isdigit() else None
        if min_lag is not None:
            rows = [r for r in rows if r["lag"] >= min_lag]
        sort = q.get("sort", "id")
        if sort not in ("id", "state", "members", "lag"):
            sort = "id"
        rows.sort(key=lambda r: r[sort], reverse=q.get("desc") == "1")
        return self.page(request, "groups.html", groups=rows, states=states, params=dict(q), sort=sort,
                         nav="groups")

    async def group(self, request: Request) -> Response:
        gid = request.path_params["group"]
        info = await self.call(self.cluster.group, gid)
        return self.page(request, "group.html", group=info, plan=None, params={}, nav="groups")

    async def group_action(self, request: Request) -> Response:
        gid = request.path_params["group"]
        here = f"/groups/{quote(gid, safe='')}"
        action = request.path_params["action"]
        f = await form(request)
        try:
            if action == "delete":
                await self.call(self.cluster.delete_group, gid)
                return self.back("/groups", notice=f"deleted group {gid}")
            if action != "reset":
                return Response("not found", 404)
            to = f.get("to", "earliest")
            value = position("to", to, f.get("value", ""), ("earliest", "latest"))
            plan = await self.call(self.cluster.reset_plan, gid, to, value)
            if f.get("apply") == "1":
                await self.call(self.cluster.reset, gid, plan)
                return self.back(here, notice=f"offsets of {gid} reset to {to}")
        except (KafkaException, ValueError) as e:
            return self.back(here, error=self.describe(e))
        info = await self.call(self.cluster.group, gid)
        return self.page(request, "group.html", group=info, plan=plan, params=f, nav="groups")

    async def brokers(self, request: Request) -> Response:
        info = await self.call(self.cluster.describe)
        node = optional_int(request.query_params.get("node"), "node")
        if node is None:
            node = info["nodes"][0][0] if info["nodes"] else 0
        configs = await self.call(self.cluster.broker_configs, node)
        log_dirs: list[dict[str, Any]] | str
        try:
            log_dirs = await self.call(self.cluster.log_dirs)
        except KafkaException as e:
            log_dirs = kafka_message(e)
        return self.page(request, "brokers.html", info=info, node=node, configs=configs, log_dirs=log_dirs,
                         nav="brokers")

    async def transactions(self, request: Request) -> Response:
        rows = await self.call(self.cluster.transactions)
        state = request.query_params.get("state", "")
        states = sorted({r["state"] for r in rows})
        if state:
            rows = [r for r in rows if r["state"] == state]
        return self.page(request, "transactions.html", transactions=rows, states=states, state=state,
                         nav="transactions")

    async def connectors(self, request: Request) -> Response:
        if self.connect is None:
            return self.page(request, "connectors.html", connect=None, connectors=[], worker=None, nav="connectors")
        rows: list[dict[str, Any]] | str
        worker: dict[str, Any] | None = None
        try:
            worker = await self.call(self.connect.worker)
            rows = await self.call(self.connect.connectors)
        except ConnectError as e:
            rows = str(e)
        return self.page(request, "connectors.html", connect=self.connect.url, connectors=rows, worker=worker,
                         nav="connectors")

    async def connector_action(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        if self.connect is None:
            return Response("not found", 404)
        try:
            await self.call(self.connect.act, name, action)
        except ConnectError as e:
            return self.back("/connectors", error=str(e))
        return self.back("/connectors", notice=f"{action} {name}: done")

    async def security(self, request: Request) -> Response:
        acls: list[Any] | str
        users: dict[str, Any] | str
        try:
            acls = await self.call(self.cluster.acls)
        except KafkaException as e:
            acls = kafka_message(e)
        try:
            users = await self.call(self.cluster.users)
        except KafkaException as e:
            users = kafka_message(e)
        return self.page(request, "security.html", acls=acls, users=users, nav="security")

    @staticmethod
    def describe(e: Exception) -> str:
        return kafka_message(e) if isinstance(e, KafkaException) else str(e)

    async def on_error(self, request: Request, exc: Exception) -> Response:
        status = 502 if isinstance(exc, KafkaException) else 400
        return self.page(request, "error.html", status=status, error=self.describe(exc), nav="")


def create_app(cluster: Cluster, about: Callable[[], dict[str, Any]] | None = None,
               connect: ConnectCluster | None = None) -> Starlette:
    """The console's routes over ``cluster``; ``about()`` gives ``version`` and ``uptime`` (s) of
    the broker the console runs inside (``tomyum serve``), which Kafka's protocol tells no client;
    ``connect``, a Kafka Connect worker whose connectors the Connectors page shows and drives."""
    c = Console(cluster, about, connect)
    routes = [
        Route("/", c.overview),
        Route("/api/throughput", c.throughput),
        Route("/topics", c.topics),
        Route("/topics", c.create_topic, methods=["POST"]),
        Route("/topics/{name}", c.topic),
        Route("/topics/{name}/messages", c.messages),
        Route("/topics/{name}/tail", c.tail),
        Route("/topics/{name}/{action}", c.topic_action, methods=["POST"]),
        Route("/groups", c.groups),
        Route("/groups/{group}", c.group),
        Route("/groups/{group}/{action}", c.group_action, methods=["POST"]),
        Route("/brokers", c.brokers),
        Route("/transactions", c.transactions),
        Route("/connectors", c.connectors),
        Route("/connectors/{name}/{action}", c.connector_action, methods=["POST"]),
        Route("/security", c.security),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={KafkaException: c.on_error, ValueError: c.on_error})
