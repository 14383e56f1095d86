"""Cost curves: how the broker's memory and time grow with the work it holds (issue 22).

    python -m benchmarks.cost_curves [--max-partitions 10000] [--max-connections 10000]
                                     [--max-topics 10000] [--write docs/benchmarks.md]

Each curve on a fresh broker (tomyum in a subprocess, on disk, an ephemeral loopback port):

* partitions: broker RSS after topics of up to 100 partitions each are created through the
  admin API (confluent-kafka's AdminClient) until the broker holds 1, 100, 1,000, 5,000 and
  10,000 partitions; no records;
* idle connections: broker RSS with 0 → 10,000 plain TCP connections, each of which sent one
  ApiVersions request, read the answer and stays idle (the benchmark raises its own and the
  broker's fd limit to the hard limit with ``resource.setrlimit``);
* topics: the time of one Metadata request for all topics (a raw Metadata v4 request on one
  connection, so that no client's parsing is timed; median of 5), and RSS, with 1 → 10,000
  topics of one partition;
* start-up: the time from starting the broker process to its ready line after a clean stop
  and after kill -9, with data dirs holding 100 → 10,000 empty partitions, and with 8
  partitions holding 0 → ``--max-data-mb`` MB of records; and the time of each clean stop;
* start-up vs segments: the same, with 8 partitions holding ``--max-data-mb`` MB of records
  in segments of 64 MiB down to 1 MiB (Kafka's smallest ``segment.bytes``), a fresh broker each;
* throughput vs partitions: on a fresh broker per step, one topic of 1 → ``--max-partitions``
  partitions; one producer (confluent-kafka, acks=all, linger.ms=5) sends 500,000 records of
  1,000 B round-robin over them, one consumer reads them back; then the produce latency
  (``produce()`` to the delivery report, acks=all, linger.ms=1) of 2,000 msg/s of 1,000 B over
  the same partitions for 5 s, p50 and p99 (one topic: a second of 10,000 partitions would take
  the broker past a common limit of open files).

``--only CURVE`` (repeatable) runs just that curve and prints it, without --write:
``partitions``, ``connections``, ``topics``, ``start-partitions``, ``start-data``,
``start-segments``, ``throughput``,
``restart-scale`` (not part of the full run: ``--max-partitions`` partitions and
``--max-data-mb`` MB together, restarted after kill -9 and after a clean stop), or
``first-records`` (not part of the full run: on a fresh broker, a new topic of
``--max-partitions`` partitions, then the produce latency of 2,000 msg/s of 1,000 B round-robin
over it for 5 s, so that every record is its partition's first: the cost of a partition's first
group commit, which must also make its directory durable).

RSS is read with psutil once it has settled (two reads 0.5 s apart within 1%, at most 10 s).
Each curve is a PNG (matplotlib, the ``bench`` extra) under docs/benchmarks/ with its table.
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.service import paced
from benchmarks.throughput import consume_phase, cpu, machine_line, produce_phase, write_section
from tomyum.testing import BrokerProcess

HEADING = "Cost curves: memory and time as partitions, connections and topics grow"
TIMEOUT = 30.0

Curve = tuple[str, str, str, list[tuple[int, float]]]  # file stem, x label, y label, points


@contextmanager
def broker(start_timeout: float = 120.0) -> Iterator[BrokerProcess]:
    with tempfile.TemporaryDirectory() as d:
        b = BrokerProcess(Path(d) / "data", start_timeout=start_timeout)
        b.start()
        try:
            yield b
        finally:
            try:
                b.stop(timeout=600)
            finally:
                b.kill()


def pid_of(b: BrokerProcess) -> int:
    assert b.proc is not None
    return b.proc.pid


def settled_rss_mb(pid: int) -> float:
    """The process's RSS in MB once two reads 0.5 s apart agree within 1% (at most 10 s)."""
    proc = psutil.Process(pid)
    last = proc.memory_info().rss
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = proc.memory_info().rss
        if abs(now - last) <= 0.01 * last:
            return now / 1e6
        last = now
    return last / 1e6


def create_partitions(admin: AdminClient, prefix: str, start_index: int, partitions: int,
                      per_topic: int) -> int:
    """Create topics of at most ``per_topic`` partitions holding ``partitions`` between them,
    100 topics per CreateTopics request; returns the next topic index."""
    topics: list[NewTopic] = []
    index = start_index
    while partitions > 0:
        n = min(per_topic, partitions)
        topics.append(NewTopic(f"{prefix}-{index:05d}", n, 1))
        index += 1
        partitions -= n
    for i in range(0, len(topics), 100):
        chunk = topics[i:i + 100]
        for name, future in admin.create_topics(chunk, operation_timeout=120).items():
            future.result(300)
    return index


def request(sock: socket.socket, api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    """Send one request (header v1) and return the response body after the correlation id."""
    client_id = b"curves"
    header = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    data = recv_exact(sock, size)
    assert struct.unpack(">i", data[:4])[0] == correlation, "correlation id mismatch"
    return data[4:]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def partitions_curve(steps: list[int]) -> list[tuple[int, float]]:
    points = []
    with broker() as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        points.append((0, settled_rss_mb(pid_of(b))))
        print(f"partitions 0: {points[-1][1]:.1f} MB", flush=True)
        held, index = 0, 0
        for step in steps:
            index = create_partitions(admin, "p", index, step - held, 100)
            held = step
            points.append((step, settled_rss_mb(pid_of(b))))
            print(f"partitions {step}: {points[-1][1]:.1f} MB", flush=True)
    return points


def connections_curve(steps: list[int]) -> list[tuple[int, float]]:
    points = []
    socks: list[socket.socket] = []
    with broker() as b:
        host, port = b.host, b.port
        try:
            points.append((0, settled_rss_mb(pid_of(b))))
            print(f"connections 0: {points[-1][1]:.1f} MB", flush=True)
            for step in steps:
                while len(socks) < step:
                    s = socket.create_connection((host, port), timeout=TIMEOUT)
                    socks.append(s)
                    request(s, 18, 0, len(socks), b"")  # ApiVersions v0: an empty body
                points.append((step, settled_rss_mb(pid_of(b))))
                print(f"connections {step}: {points[-1][1]:.1f} MB", flush=True)
        finally:
            for s in socks:
                s.close()
    return points


def metadata_seconds(host: str, port: int) -> tuple[float, float, int]:
    """Median and fastest time of 5 Metadata v4 requests for all topics, and the response's size."""
    body = struct.pack(">ib", -1, 0)  # topics: null (all), allow_auto_topic_creation: false
    times, size = [], 0
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        for i in range(6):
            t0 = time.perf_counter()
            size = len(request(s, 3, 4, i, body))
            if i:  # the first one warms the connection
                times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), size


def topics_curve(steps: list[int]) -> tuple[list[tuple[int, float]], list[tuple[int, float]], list[int]]:
    times, rss, sizes = [], [], []
    with broker() as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        held, index = 0, 0
        for step in steps:
            index = create_partitions(admin, "t", index, step - held, 1)
            held = step
            seconds, fastest, size = metadata_seconds(b.host, b.port)
            times.append((step, seconds * 1000))
            sizes.append(size)
            rss.append((step, settled_rss_mb(pid_of(b))))
            print(f"topics {step}: metadata {seconds * 1000:.2f} ms (fastest {fastest * 1000:.2f} ms, {size} B), "
                  f"{rss[-1][1]:.1f} MB", flush=True)
    return times, rss, sizes


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` took."""
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def restart_times(b: BrokerProcess) -> tuple[float, float, float]:
    """(seconds to ready after a clean stop, after kill -9, seconds the clean stop took)."""
    stop = timed(lambda: b.stop(timeout=600))
    clean = timed(b.start)
    b.kill()
    return clean, timed(b.start), stop


def startup_partitions_curve(steps: list[int]) -> list[tuple[int, float, float, float]]:
    rows = []
    with broker(start_timeout=600) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        held, index = 0, 0
        for step in steps:
            index = create_partitions(admin, "s", index, step - held, 100)
            held = step
            clean, crashed, stop = restart_times(b)
            rows.append((step, clean, crashed, stop))
            print(f"start with {step} partitions: clean {clean:.2f} s, kill -9 {crashed:.2f} s "
                  f"(clean stop {stop:.2f} s)", flush=True)
    return rows


def startup_data_curve(steps_mb: list[int]) -> list[tuple[int, float, float, float]]:
    rows = []
    value_bytes = 10 * 1024
    with broker(start_timeout=600) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        create_partitions(admin, "data", 0, 8, 8)
        held = 0
        for step in steps_mb:
            count = (step - held) * 1_000_000 // value_bytes
            if count:
                produce_phase(b.bootstrap, pid_of(b), "data-00000", 8, value_bytes, count, acks="1")
            held = step
            clean, crashed, stop = restart_times(b)
            rows.append((step, clean, crashed, stop))
            print(f"start with {step} MB: clean {clean:.2f} s, kill -9 {crashed:.2f} s (clean stop {stop:.2f} s)",
                  flush=True)
    return rows


SEGMENT_SIZES_MB = (64, 16, 4, 1)
THROUGHPUT_RECORDS = 500_000
RECORD_BYTES = 1000


def startup_segments_curve(data_mb: int) -> list[tuple[int, float, float, float]]:
    """(segments in all, start after a clean stop s, after kill -9 s, the clean stop s) with
    ``data_mb`` MB of 10 KiB records in 8 partitions, for each size in SEGMENT_SIZES_MB."""
    rows = []
    value_bytes = 10 * 1024
    for size_mb in SEGMENT_SIZES_MB:
        with broker(start_timeout=600) as b:
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            topic = NewTopic("segments", 8, 1, config={"segment.bytes": str(size_mb * 1024 * 1024)})
            admin.create_topics([topic], operation_timeout=60)["segments"].result(120)
            produce_phase(b.bootstrap, pid_of(b), "segments", 8, value_bytes, data_mb * 1_000_000 // value_bytes,
                          acks="1")
            segments = sum(1 for _ in Path(b.data_dir).glob("segments-*/*.log"))
            clean, crashed, stop = restart_times(b)
            rows.append((segments, clean, crashed, stop))
            print(f"start with {segments} segments of {size_mb} MiB: clean {clean:.2f} s, kill -9 {crashed:.2f} s "
                  f"(clean stop {stop:.2f} s)", flush=True)
    return rows


def produce_latency_ms(bootstrap: str, topic: str, partitions: int, rate: int, seconds: float) -> tuple[float, float]:
    """(p50, p99) in ms from ``produce()`` to the delivery report, ``rate`` msg/s of RECORD_BYTES
    round-robin over ``partitions`` for ``seconds``, acks=all, linger.ms=1."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "enable.idempotence": False})
    p.list_topics(topic, timeout=10)
    latencies: list[float] = []

    def delivered(sent: float) -> Callable[[object, object], None]:
        def on_delivery(err: object, msg: object) -> None:
            if err is None:
                latencies.append(time.perf_counter() - sent)
        return on_delivery

    value, count = b"x" * RECORD_BYTES, int(rate * seconds)
    paced(p, rate, count, lambda i: p.produce(topic, value=value, partition=i % partitions,
                                             on_delivery=delivered(time.perf_counter())))
    assert p.flush(60) == 0, "produce did not finish"
    p.close()
    assert len(latencies) == count, f"{count - len(latencies)} records failed"
    latencies.sort()
    return latencies[len(latencies) // 2] * 1000, latencies[int(0.99 * len(latencies))] * 1000


def create_tp(b: BrokerProcess, partitions: int) -> None:
    """The curves' one topic, ``tp``, of ``partitions`` partitions."""
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("tp", partitions, 1)], operation_timeout=300)["tp"].result(600)


def latency_phase(b: BrokerProcess, partitions: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, the broker's CPU s) of 5 s at 2,000 msg/s round-robin over ``tp``."""
    cpu0 = cpu(pid_of(b))
    p50, p99 = produce_latency_ms(b.bootstrap, "tp", partitions, 2000, 5.0)
    return p50, p99, cpu(pid_of(b)) - cpu0


def throughput_curve(steps: list[int]) -> list[tuple[int, float, float, float, float, float, float, float]]:
    """(partitions, produce msg/s, consume msg/s, produce p50 ms, p99 ms, and the broker's CPU
    seconds in each of the three phases), a fresh broker per step."""
    rows = []
    for partitions in steps:
        with broker(start_timeout=600) as b:
            create_tp(b, partitions)
            produced, _, produce_cpu = produce_phase(b.bootstrap, pid_of(b), "tp", partitions, RECORD_BYTES,
                                                     THROUGHPUT_RECORDS)
            consumed, _, consume_cpu = consume_phase(b.bootstrap, pid_of(b), "tp", partitions, THROUGHPUT_RECORDS)
            p50, p99, latency_cpu = latency_phase(b, partitions)
            rows.append((partitions, THROUGHPUT_RECORDS / produced, THROUGHPUT_RECORDS / consumed, p50, p99,
                         produce_cpu, consume_cpu, latency_cpu))
            print(f"{partitions} partitions: produce {rows[-1][1]:,.0f} msg/s, consume {rows[-1][2]:,.0f} msg/s, "
                  f"produce p50 {p50:.1f} ms p99 {p99:.1f} ms; broker CPU {produce_cpu:.2f} / {consume_cpu:.2f} / "
                  f"{latency_cpu:.2f} s", flush=True)
    return rows


def plot(path: Path, title: str, xlabel: str, ylabel: str, series: dict[str, list[tuple[int, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def slope_kb(points: list[tuple[int, float]]) -> float:
    """KB per unit from the first point to the last."""
    (x0, y0), (x1, y1) = points[0], points[-1]
    return (y1 - y0) * 1000 / (x1 - x0)


def steps_up_to(top: int, candidates: tuple[int, ...]) -> list[int]:
    return [s for s in candidates if s < top] + [top]


CURVES = ("partitions", "connections", "topics", "start-partitions", "start-data", "start-segments", "throughput",
          "restart-scale", "first-records")


def restart_scale(partitions: int, data_mb: int) -> None:
    """The issue's full restart scale: ``partitions`` partitions (topics of 100, empty) and
    ``data_mb`` MB of 10 KiB records (acks=1) in 8 more; start-up after kill -9 right after the
    records are written (the recovery checkpoint is then up to a minute old), then the clean
    stop, then start-up after it."""
    with broker(start_timeout=900) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        create_partitions(admin, "s", 0, partitions, 100)
        create_partitions(admin, "data", 0, 8, 8)
        value_bytes = 10 * 1024
        seconds, _, _ = produce_phase(b.bootstrap, pid_of(b), "data-00000", 8, value_bytes,
                                      data_mb * 1_000_000 // value_bytes, acks="1")
        print(f"wrote {data_mb} MB in {seconds:.1f} s", flush=True)
        b.kill()
        crashed = timed(b.start)
        stop = timed(lambda: b.stop(timeout=900))
        clean = timed(b.start)
        print(f"{partitions + 8} partitions, {data_mb} MB: start after kill -9 {crashed:.2f} s, "
              f"clean stop {stop:.2f} s, start after it {clean:.2f} s", flush=True)


def first_records(partitions: int) -> None:
    """Produce latency when every record is its partition's first (see the module's docstring)."""
    with broker(start_timeout=600) as b:
        create_tp(b, partitions)
        p50, p99, latency_cpu = latency_phase(b, partitions)
        print(f"first records over {partitions} new partitions: produce p50 {p50:.1f} ms p99 {p99:.1f} ms; "
              f"broker CPU {latency_cpu:.2f} s", flush=True)


def run_only(args: argparse.Namespace) -> None:
    """The curves ``--only`` names, each printed as it is measured."""
    for name in args.only:
        if name == "partitions":
            partitions_curve(steps_up_to(args.max_partitions, (1, 100, 1000, 5000)))
        elif name == "connections":
            connections_curve(steps_up_to(args.max_connections, (100, 1000, 5000)))
        elif name == "topics":
            topics_curve(steps_up_to(args.max_topics, (1, 100, 1000, 5000)))
        elif name == "start-partitions":
            startup_partitions_curve(steps_up_to(args.max_partitions, (100, 1000, 5000)))
        elif name == "start-data":
            startup_data_curve([0] + steps_up_to(args.max_data_mb, (100,)))
        elif name == "start-segments":
            startup_segments_curve(args.max_data_mb)
        elif name == "throughput":
            throughput_curve(steps_up_to(args.max_partitions, (1, 100, 1000)))
        elif name == "first-records":
            first_records(args.max_partitions)
        else:
            restart_scale(args.max_partitions, args.max_data_mb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-partitions", type=int, default=10_000)
    ap.add_argument("--max-connections", type=int, default=10_000)
    ap.add_argument("--max-topics", type=int, default=10_000)
    ap.add_argument("--max-data-mb", type=int, default=1000)
    ap.add_argument("--images", type=Path, default=Path("docs/benchmarks"))
    ap.add_argument("--write", type=Path, help="replace the cost curves section of this file")
    ap.add_argument("--only", choices=CURVES, action="append",
                    help="run only this curve and print it (repeatable; not with --write)")
    args = ap.parse_args()
    if args.only and args.write:
        ap.error("--only prints its curves; --write needs them all")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the broker inherits it
    load0 = psutil.getloadavg()
    t_start = time.monotonic()
    if args.only:
        run_only(args)
        return

    partitions = partitions_curve(steps_up_to(args.max_partitions, (1, 100, 1000, 5000)))
    connections = connections_curve(steps_up_to(args.max_connections, (100, 1000, 5000)))
    md_times, md_rss, md_sizes = topics_curve(steps_up_to(args.max_topics, (1, 100, 1000, 5000)))
    start_parts = startup_partitions_curve(steps_up_to(args.max_partitions, (100, 1000, 5000)))
    start_data = startup_data_curve([0] + steps_up_to(args.max_data_mb, (100,)))
    start_segments = startup_segments_curve(args.max_data_mb)
    flow = throughput_curve(steps_up_to(args.max_partitions, (1, 100, 1000)))
    load1 = psutil.getloadavg()
    minutes = (time.monotonic() - t_start) / 60

    img = args.images
    plot(img / "rss-partitions.png", "Broker RSS vs partitions", "partitions", "RSS (MB)",
         {"RSS": partitions})
    plot(img / "rss-connections.png", "Broker RSS vs idle connections", "idle connections", "RSS (MB)",
         {"RSS": connections})
    plot(img / "metadata-topics.png", "Metadata (all topics) vs topics", "topics", "ms per request",
         {"Metadata v4": md_times})
    plot(img / "start-partitions.png", "Start-up to serving vs partitions", "partitions (empty)", "seconds",
         {"after a clean stop": [(r[0], r[1]) for r in start_parts],
          "after kill -9": [(r[0], r[2]) for r in start_parts]})
    plot(img / "start-data.png", "Start-up to serving vs data (8 partitions)", "MB of records", "seconds",
         {"after a clean stop": [(r[0], r[1]) for r in start_data],
          "after kill -9": [(r[0], r[2]) for r in start_data]})

    plot(img / "start-segments.png", f"Start-up to serving vs segments ({args.max_data_mb:,} MB, 8 partitions)",
         "segments", "seconds",
         {"after a clean stop": [(r[0], r[1]) for r in start_segments],
          "after kill -9": [(r[0], r[2]) for r in start_segments]})
    plot(img / "throughput-partitions.png", "Throughput vs partitions (1,000 B, acks=all)", "partitions",
         "records/s", {"produce": [(r[0], r[1]) for r in flow], "consume": [(r[0], r[2]) for r in flow]})
    plot(img / "p99-partitions.png", "Produce latency vs partitions (2,000 msg/s)", "partitions", "ms",
         {"p50": [(r[0], r[3]) for r in flow], "p99": [(r[0], r[4]) for r in flow]})

    idle = partitions[0][1]
    per_partition = slope_kb(partitions)
    per_connection = slope_kb(connections)
    worst_start = max(max(r[1], r[2]) for r in start_parts + start_data)
    lines = [
        f"{machine_line()}; load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end "
        f"(the benchmark's own brokers and clients on two cores); {minutes:.1f} min in all.",
        "",
        f"    make bench-curves   # = python -m benchmarks.cost_curves --write docs/benchmarks.md",
        "",
        "| target (issue 22) | measured | met |",
        "|---|---:|---|",
        f"| idle RSS ≤ 80 MB | {idle:.1f} MB | {'yes' if idle <= 80 else 'no'} |",
        f"| ≤ 10 KB per idle connection | {per_connection:.1f} KB (0 → {connections[-1][0]:,}) | "
        f"{'yes' if per_connection <= 10 else 'no'} |",
        f"| ≤ 50 KB per idle partition | {per_partition:.1f} KB (0 → {partitions[-1][0]:,}) | "
        f"{'yes' if per_partition <= 50 else 'no'} |",
        f"| restart < 10 s | {worst_start:.2f} s at most (≤ {start_parts[-1][0]:,} partitions, "
        f"≤ {start_data[-1][0]:,} MB) | {'yes' if worst_start < 10 else 'no'} at this scale |",
        "",
        "### Broker RSS vs partitions",
        "",
        "![RSS vs partitions](benchmarks/rss-partitions.png)",
        "",
        "| partitions | RSS MB | KB per partition (from 0) |",
        "|---:|---:|---:|",
    ]
    for x, y in partitions:
        lines.append(f"| {x:,} | {y:.1f} | {(y - idle) * 1000 / x:.1f} |" if x else f"| 0 | {y:.1f} | |")
    lines += ["", "### Broker RSS vs idle connections", "",
              "![RSS vs idle connections](benchmarks/rss-connections.png)", "",
              "| idle connections | RSS MB | KB per connection (from 0) |", "|---:|---:|---:|"]
    c0 = connections[0][1]
    for x, y in connections:
        lines.append(f"| {x:,} | {y:.1f} | {(y - c0) * 1000 / x:.1f} |" if x else f"| 0 | {y:.1f} | |")
    lines += ["", "### Metadata request time vs topics (one partition each)", "",
              "![Metadata vs topics](benchmarks/metadata-topics.png)", "",
              "| topics | Metadata ms | µs per topic | response bytes | RSS MB |", "|---:|---:|---:|---:|---:|"]
    for (x, ms), size, (_, mb) in zip(md_times, md_sizes, md_rss):
        lines.append(f"| {x:,} | {ms:.2f} | {ms * 1000 / x:.1f} | {size:,} | {mb:.1f} |")
    lines += ["", "### Start-up to serving vs partitions (empty logs, topics of 100)", "",
              "![Start-up vs partitions](benchmarks/start-partitions.png)", "",
              "| partitions | after a clean stop s | after kill -9 s | the clean stop s |", "|---:|---:|---:|---:|"]
    lines += [f"| {x:,} | {c:.2f} | {k:.2f} | {st:.2f} |" for x, c, k, st in start_parts]
    lines += ["", "### Start-up to serving vs data (8 partitions, 10 KiB records, acks=1)", "",
              "![Start-up vs data](benchmarks/start-data.png)", "",
              "| MB of records | after a clean stop s | after kill -9 s | the clean stop s |", "|---:|---:|---:|---:|"]
    lines += [f"| {x:,} | {c:.2f} | {k:.2f} | {st:.2f} |" for x, c, k, st in start_data]
    lines += ["", f"### Start-up to serving vs segments ({args.max_data_mb:,} MB of 10 KiB records, 8 partitions)", "",
              "![Start-up vs segments](benchmarks/start-segments.png)", "",
              "| segment.bytes | segments | after a clean stop s | after kill -9 s | the clean stop s |",
              "|---:|---:|---:|---:|---:|"]
    lines += [f"| {mb} MiB | {x:,} | {c:.2f} | {k:.2f} | {st:.2f} |"
              for mb, (x, c, k, st) in zip(SEGMENT_SIZES_MB, start_segments)]
    lines += ["", "### Throughput and produce latency vs partitions (one topic, 1,000 B records, acks=all)", "",
              "![Throughput vs partitions](benchmarks/throughput-partitions.png)",
              "![Produce latency vs partitions](benchmarks/p99-partitions.png)", "",
              f"| partitions | produce msg/s ({THROUGHPUT_RECORDS:,} records) | consume msg/s | "
              "produce p50 ms (2,000 msg/s) | produce p99 ms | broker CPU s: produce / consume / 5 s at 2,000 msg/s |",
              "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {x:,} | {pr:,.0f} | {co:,.0f} | {p50:.1f} | {p99:.1f} | {c1:.2f} / {c2:.2f} / {c3:.2f} |"
              for x, pr, co, p50, p99, c1, c2, c3 in flow]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, HEADING, body)


if __name__ == "__main__":
    main()
