"""A live fuzz run: request frames recorded from real clients (confluent-kafka admin, an
idempotent producer, a consumer in a group) are mutated — bytes flipped, cut, repeated,
counts and lengths made huge — and 100,000 of them are sent to a running broker. It never
crashes, a bystander is answered throughout, and its memory stays bounded.

A third of the Produce frames carry a batch mutated inside its records (flipped, cut, repeated
or inserted bytes, a record count that lies) whose length and CRC are made right again, so
that only record validation can refuse it: afterwards every batch stored passes that
validation."""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.faults.test_connection_abuse import keep_asking, rss_bytes
from tests.integration.test_bad_input import connect, kio_request, still_serving
from tomyum.protocol.codec import request_class
from tomyum.protocol.records import BATCH_HEADER_SIZE, parse_header
from tomyum.storage.log_validator import records_of, walk_records
from tomyum.testing import BrokerProcess
from tomyum.testing.batches import reseal
from tomyum.testing.proxy import CuttingProxy

FRAMES = 100_000
WORKERS = 4
TIMEOUT = 30


def record_corpus(broker: BrokerProcess, proxy: CuttingProxy) -> list[bytes]:
    bs = f"127.0.0.1:{proxy.port}"
    admin = AdminClient({"bootstrap.servers": bs})
    for f in admin.create_topics([NewTopic("fuzzed", 2, 1)]).values():
        f.result(TIMEOUT)
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "compression.type": "lz4"})
    for i in range(50):
        p.produce("fuzzed", key=b"k%d" % i, value=b"v" * i)
    assert p.flush(TIMEOUT) == 0
    c = Consumer({"bootstrap.servers": bs, "group.id": "fuzz", "auto.offset.reset": "earliest"})
    c.subscribe(["fuzzed"])
    deadline, got = time.monotonic() + TIMEOUT, 0
    while got < 50 and time.monotonic() < deadline:
        got += len([m for m in c.consume(50, timeout=0.5) if m.error() is None])
    c.commit(asynchronous=False)
    c.close()
    admin.describe_consumer_groups(["fuzz"])["fuzz"].result(TIMEOUT)
    assert proxy.frames is not None
    return list(proxy.frames)


def mutate(frame: bytes, rng: random.Random) -> bytes:
    body = bytearray(frame[4:])
    kind = rng.randrange(6)
    start = 2 * 2 + 4 if rng.random() < 0.9 and len(body) > 8 else 0  # mostly keep key and version
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(start, len(body))
            body[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del body[rng.randrange(start, len(body)) :]
    elif kind == 2:
        i = rng.randrange(start, len(body))
        body[i:i] = body[i : i + rng.randint(1, 64)] * rng.randint(1, 4)
    elif kind == 3 and len(body) >= start + 4:
        i = rng.randrange(start, len(body) - 3)
        struct.pack_into(">i", body, i, rng.choice([2**31 - 1, -2, 0x7FFF_0000, 65535]))
    elif kind == 4:
        body += rng.randbytes(rng.randint(1, 100))
    else:
        i = rng.randrange(start, len(body))
        body[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
    return struct.pack(">i", len(body)) + bytes(body)


def decode_produce(frame: bytes) -> tuple[int, Any] | None:
    """A recorded Produce frame as (version, request), or None for other APIs."""
    from kio.serial import entity_reader

    api_key, version = struct.unpack_from(">hh", frame, 4)
    if api_key != 0:
        return None
    (client_id_length,) = struct.unpack_from(">h", frame, 12)
    offset = 14 + max(client_id_length, 0) + (1 if version >= 9 else 0)  # header v2: no tagged fields
    return version, entity_reader(request_class(0, version))(frame, offset)[0]


def mutate_batch(batch: bytes, rng: random.Random) -> bytes:
    """``batch`` wrong inside its records (or in its record count), with a right length and CRC."""
    out = bytearray(batch)
    kind = rng.randrange(5)
    if kind == 0:  # the record count lies, the offset range agrees with it
        n = rng.choice([0, 1, parse_header(batch).records_count + rng.choice([-1, 1, 2]), 2**31 - 1])
        struct.pack_into(">i", out, 57, n)
        struct.pack_into(">i", out, 23, n - 1)
    elif len(out) > BATCH_HEADER_SIZE and kind == 1:
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(BATCH_HEADER_SIZE, len(out))] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF,
                                                                           rng.randrange(256)])
    elif len(out) > BATCH_HEADER_SIZE and kind == 2:
        del out[rng.randrange(BATCH_HEADER_SIZE, len(out)) :][: rng.randint(1, 20)]
    elif kind == 3:
        i = rng.randrange(BATCH_HEADER_SIZE, len(out) + 1)
        out[i:i] = rng.randbytes(rng.randint(1, 8)) if rng.random() < 0.5 else out[i : i + 30]
    else:  # the compression codec changed under the records
        struct.pack_into(">h", out, 21, (struct.unpack_from(">h", out, 21)[0] & ~7) | rng.randrange(5))
    return reseal(out)


def mutate_produce(version: int, request: Any, rng: random.Random) -> bytes:
    topics = list(request.topic_data)
    t = rng.randrange(len(topics))
    parts = list(topics[t].partition_data)
    p = rng.randrange(len(parts))
    parts[p] = dataclasses.replace(parts[p], records=mutate_batch(parts[p].records, rng))
    topics[t] = dataclasses.replace(topics[t], partition_data=tuple(parts))
    return kio_request(0, version, rng.randrange(2**31), dataclasses.replace(request, topic_data=tuple(topics)))


def stored_batches_pass_validation(data_dir: Path, topic: str) -> int:
    """Every batch in ``topic``'s segment files passes record validation; how many there are."""
    seen = 0
    for log in sorted(data_dir.glob(f"{topic}-*/*.log")):
        buf = log.read_bytes()
        pos = 0
        while pos + BATCH_HEADER_SIZE <= len(buf):
            h = parse_header(buf, pos)
            if h.batch_length <= 0:
                break  # the preallocated tail
            records, start, end = records_of(h, buf)
            walk_records(records, h.records_count, start=start, end=end)
            pos, seen = h.end, seen + 1
    return seen


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_hundred_thousand_mutated_frames(tmp_path: Path) -> None:
    proxy = CuttingProxy(record=True)
    with BrokerProcess(tmp_path / "data", settings={
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}",
            "group.initial.rebalance.delay.ms": "0"}) as broker, proxy:
        proxy.start(broker.port)
        corpus = record_corpus(broker, proxy)
        assert len({struct.unpack_from(">h", f, 4)[0] for f in corpus}) >= 8, "too few APIs in the corpus"
        produces = [decoded for decoded in map(decode_produce, corpus) if decoded is not None]
        assert produces, "no Produce in the corpus"
        assert broker.proc is not None
        rss_before = rss_bytes(broker.proc.pid)
        sent = [0] * WORKERS
        stop = threading.Event()
        slowest = [0.0]

        def fuzz(n: int) -> None:
            rng = random.Random(n)
            s: socket.socket | None = None
            while sent[n] < FRAMES // WORKERS and not stop.is_set():
                if s is None:
                    s = socket.create_connection((broker.host, broker.port), timeout=TIMEOUT)
                    s.settimeout(0.2)
                try:
                    frame = rng.choice(corpus)
                    if struct.unpack_from(">h", frame, 4)[0] == 0 and rng.random() < 0.33:
                        s.sendall(mutate_produce(*rng.choice(produces), rng))
                    else:
                        s.sendall(mutate(frame, rng))
                    sent[n] += 1
                    if not s.recv(65536):  # refused: the broker closed this connection
                        raise ConnectionError
                except (OSError, ConnectionError):  # closed, or no answer yet (a long poll, say)
                    s.close()
                    s = None
            if s is not None:
                s.close()

        def bystander() -> None:
            with connect(broker) as s:
                keep_asking(s, stop, slowest)

        threads = [threading.Thread(target=fuzz, args=(n,), daemon=True) for n in range(WORKERS)]
        watcher = threading.Thread(target=bystander, daemon=True)
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        stop.set()
        watcher.join(TIMEOUT)
        assert sum(sent) >= FRAMES
        assert broker.proc.poll() is None, "the broker died"
        assert slowest[0] < 2.0, f"a bystander waited {slowest[0]:.1f} s"
        grown = rss_bytes(broker.proc.pid) - rss_before
        assert grown < 200 << 20, f"memory grew by {grown >> 20} MiB"
        still_serving(broker)
        assert "unexpected error" not in broker.output(), broker.output()[-3000:]
    assert stored_batches_pass_validation(tmp_path / "data", "fuzzed") >= 1
