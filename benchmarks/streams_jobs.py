"""The two jobs of ``benchmarks/streams.py``, written once for tomyum.streams and once for
Quix Streams, side by side so that a reader can check they do the same work:

* ``stateless``: JSON value in; keep it when ``n % 3 != 0``; add ``"double": 2 * n``; JSON out.
* ``windowed``: count per key in 1-second tumbling windows of event time (the record
  timestamp), every update emitted as ``{"start": ms, "end": ms, "value": count}`` (JSON) under
  the record's key — Quix's ``tumbling_window(...).count().current()``, tomyum's
  ``windowed_by(...).count().to_stream()``.

Both at-least-once, both with changelogged persistent state (RocksDB for Quix, SQLite for
tomyum, each framework's default), both with the same commit interval. Run by the benchmark,
one process per run, until SIGTERM:

    python benchmarks/streams_jobs.py {tomyum|quix} {stateless|windowed} BOOTSTRAP INPUT OUTPUT \\
        GROUP STATE_DIR COMMIT_INTERVAL_MS WINDOW_MS GRACE_MS

With ``TOMYUM_STREAMS_PROFILE=PATH`` in the environment, every thread the tomyum app starts
runs under cProfile and the merged statistics are written to PATH at exit.

The file imports neither framework at the top: Quix Streams runs from its own virtual
environment (it pins an older confluent-kafka than tomyum's), where tomyum is not installed.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from typing import Any


def keep(value: dict[str, Any]) -> bool:
    return bool(value["n"] % 3 != 0)


def enrich(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "double": value["n"] * 2}


def run_tomyum(job: str, bootstrap: str, source: str, sink: str, group: str, state_dir: str,
               commit_interval_ms: int, window_ms: int, grace_ms: int) -> int:
    # kio registers hypothesis strategies for its types at import whenever hypothesis can be
    # imported, ~1.3 s of start-up here; hypothesis comes with tomyum's test extra, not with
    # tomyum, so hide it and start the app as a plain install would.
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tomyum.streams import Serdes, StreamsBuilder, StreamsConfig, TimeWindows
    from tomyum.streams.runtime import KafkaStreams, State

    builder = StreamsBuilder()
    stream = builder.stream(source, value_serde=Serdes.json())
    if job == "stateless":
        stream.filter(lambda key, value: keep(value)).map_values(enrich).to(sink, value_serde=Serdes.json())
    else:
        (stream.group_by_key()
            .windowed_by(TimeWindows.of_size_and_grace(window_ms, grace_ms))
            .count()
            .to_stream()
            .map(lambda wk, count: (wk.key, {"start": wk.window.start_ms, "end": wk.window.end_ms, "value": count}))
            .to(sink, value_serde=Serdes.json()))
    app = KafkaStreams(builder.build(), StreamsConfig(application_id=group, state_dir=state_dir),
                       bootstrap_servers=bootstrap, processing_guarantee="at_least_once",
                       commit_interval_ms=commit_interval_ms)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    profile_path = os.environ.get("TOMYUM_STREAMS_PROFILE")
    profilers = profile_threads() if profile_path else []
    app.start()
    while not stop.wait(0.1):
        if app.state is State.ERROR:
            return 1
    closed = app.close(30)
    if profile_path:
        import pstats

        pstats.Stats(*profilers).dump_stats(profile_path)
    return 0 if closed else 1


def profile_threads() -> list[Any]:
    """Run every thread started from now on under a cProfile profiler of its own (a profiler
    hooks the thread that enables it); the list fills as threads start."""
    import cProfile

    profilers: list[cProfile.Profile] = []
    run = threading.Thread.run

    def profiled(thread: threading.Thread) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.runcall(run, thread)

    threading.Thread.run = profiled  # type: ignore[method-assign]
    return profilers


def run_quix(job: str, bootstrap: str, source: str, sink: str, group: str, state_dir: str,
             commit_interval_ms: int, window_ms: int, grace_ms: int) -> int:
    from quixstreams import Application

    app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                      processing_guarantee="at-least-once", commit_interval=commit_interval_ms / 1000,
                      state_dir=state_dir, loglevel="WARNING")
    sdf = app.dataframe(app.topic(source, value_deserializer="json"))
    if job == "stateless":
        sdf = sdf.filter(keep).apply(enrich)
    else:
        sdf = sdf.tumbling_window(duration_ms=window_ms, grace_ms=grace_ms).count().current()
    sdf.to_topic(app.topic(sink, value_serializer="json"))
    app.run()  # until SIGTERM
    return 0


def main() -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the benchmark's view of a stalled app
    framework, job, bootstrap, source, sink, group, state_dir = sys.argv[1:8]
    commit_interval_ms, window_ms, grace_ms = (int(a) for a in sys.argv[8:11])
    run = run_tomyum if framework == "tomyum" else run_quix
    return run(job, bootstrap, source, sink, group, state_dir, commit_interval_ms, window_ms, grace_ms)


if __name__ == "__main__":
    sys.exit(main())
