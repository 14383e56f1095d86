"""FileStream throughput of tomyum connect on a tomyum broker: ``--lines`` lines of ``--size``
bytes through a FileStream source (JsonConverter, schemas on) into a topic and a FileStream sink
back out to a file, one standalone worker; the time from the worker's start until the sink file
holds every line, and the source's own time until the topic holds them.

    python -m benchmarks.connect [--lines 200000] [--size 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from tomyum.testing import BrokerProcess, wait_until
from tomyum.testing.connect import ConnectProcess


def _high_watermark(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1])
    except Exception:  # noqa: BLE001 - the topic may not exist yet
        return 0
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        source, sink = d / "in.txt", d / "out.txt"
        line = "x" * (args.size - 1) + "\n"
        source.write_text(line * args.lines)
        connectors = [{"name": "src", "connector.class": "FileStreamSource", "file": str(source), "topic": "bench"},
                      {"name": "sink", "connector.class": "FileStreamSink", "file": str(sink), "topics": "bench"}]
        with BrokerProcess(d / "data") as broker:
            started = time.monotonic()
            with ConnectProcess(d / "w", broker.bootstrap, connectors=connectors):
                wait_until(lambda: _high_watermark(broker.bootstrap, "bench") >= args.lines, timeout=600,
                           interval=0.2, what="every line in the topic")
                produced = time.monotonic() - started
                wait_until(lambda: sink.exists() and sink.stat().st_size >= len(line) * args.lines, timeout=600,
                           interval=0.2, what="every line in the sink file")
                total = time.monotonic() - started
    print(f"{args.lines} lines of {args.size} B: source → topic {produced:.1f} s ({args.lines / produced:,.0f} lines/s); "
          f"file → topic → file {total:.1f} s ({args.lines / total:,.0f} lines/s), worker start included")


if __name__ == "__main__":
    main()
