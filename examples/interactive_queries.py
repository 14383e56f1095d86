"""Interactive queries across instances: a count per key, kept by tomyum.streams, answered
over HTTP by whichever instance you ask.

    python examples/interactive_queries.py [--topic clicks] [--listen 127.0.0.1:0] [--state-dir DIR]

Each instance counts the records of its share of the topic's partitions and serves
``GET /count/<key>`` on ``--listen`` (port 0: a free one, printed at start). The address it
serves on is its ``application.server``, which the application's consumer group passes to the
other instances; so an instance asked for a key counted elsewhere looks up the owner
(``query_metadata_for_key``) and forwards the request there. The answer is JSON:
``{"key": ..., "count": ..., "host": "<the owner's host:port>", "partition": ...}``; 404 for a
key never seen, 503 while the instances rebalance. ``GET /instances`` lists every instance,
its stores and its partitions (``all_metadata``).

Start two or more with the same --application-id (and their own --state-dir), produce keyed
records into the topic (murmur2 partitioning, as Kafka's clients do), then ask any of them.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

from lifecycle import arguments, client_config
from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams, State

STORE = "counts"
FORWARDED = "X-Forwarded-By"
"""Set on a request one instance forwards to another: the owner answers it or says 503, never
forwards it again (two instances with different views of a rebalance would otherwise bounce it)."""
FORWARD_TIMEOUT_S = 5.0


def counts(topic: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream(topic, key_serde=Serdes.string(), value_serde=Serdes.bytes())
        .group_by_key()
        .count(Materialized(store_name=STORE)))
    return builder


def handler(app: KafkaStreams) -> type[BaseHTTPRequestHandler]:
    here = str(app.application_server)

    class CountHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/instances":
                self.answer(200, [{"host": str(m.host_info), "stores": sorted(m.state_store_names),
                                   "partitions": sorted(m.topic_partitions)} for m in app.all_metadata()])
                return
            if not self.path.startswith("/count/"):
                self.answer(404, {"error": "try /count/<key> or /instances"})
                return
            key = unquote(self.path.removeprefix("/count/"))
            try:
                owner = app.query_metadata_for_key(STORE, key, Serdes.string())
                if str(owner.active_host) == here:
                    count = app.query(STORE, lambda store: store.get(key))
                    self.answer(200 if count is not None else 404,
                                {"key": key, "count": count, "host": here, "partition": owner.partition})
                elif owner.active_host.port < 0 or self.headers.get(FORWARDED):
                    self.answer(503, {"error": "rebalancing: ask again", "key": key})
                else:
                    self.forward(f"http://{owner.active_host}/count/{quote(key, safe='')}")
            except RuntimeError as e:  # not RUNNING (yet, or any more)
                self.answer(503, {"error": str(e), "key": key})

        def forward(self, url: str) -> None:
            request = urllib.request.Request(url, headers={FORWARDED: here})
            try:
                with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as response:
                    self.answer(response.status, json.loads(response.read()))
            except urllib.error.HTTPError as e:  # the owner's own 404 or 503, passed on
                self.answer(e.code, json.loads(e.read() or b"{}"))
            except (urllib.error.URLError, OSError) as e:
                self.answer(502, {"error": f"the owner {url} did not answer: {e}"})

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass  # one line per request would drown the program's own lines

    return CountHandler


def main() -> int:
    parser = arguments(__doc__, topic="clicks")
    parser.add_argument("--application-id", default="click-counts", help="the application id (its consumer group)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT of the HTTP endpoint (port 0: a free one)")
    parser.add_argument("--state-dir", default=None, help="this instance's state directory (one per instance)")
    args = parser.parse_args()

    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), BaseHTTPRequestHandler)  # bound first: its port is our address
    endpoint = f"{host}:{server.server_address[1]}"
    app = KafkaStreams(counts(args.topic).build(),
                       StreamsConfig(application_id=args.application_id, state_dir=args.state_dir),
                       bootstrap_servers=args.bootstrap, commit_interval_ms=1000, application_server=endpoint,
                       client_config={**client_config(args), "consumer.session.timeout.ms": 6000,
                                      "consumer.heartbeat.interval.ms": 1000})
    server.RequestHandlerClass = handler(app)
    stop = threading.Event()
    app.set_state_listener(lambda new, old: print(f"{endpoint}: {new.value} tasks {','.join(sorted(app.tasks))}",
                                                  flush=True))
    app.set_uncaught_exception_handler(lambda error: (print(f"{endpoint}: crashed: {error}", flush=True), stop.set()))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving http://{endpoint}/count/<key>", flush=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    app.start()
    try:
        while not stop.wait(0.2):  # in slices, so that a signal is handled at once
            pass
    finally:
        server.shutdown()
        server.server_close()
        crashed = app.state is State.ERROR
        app.close(30)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
