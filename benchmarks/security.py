"""What TLS and SASL cost: produce and consume throughput over PLAINTEXT, SSL and SASL_SSL
(SCRAM-SHA-256), the same clients and workloads on one broker with the three listeners.

    python -m benchmarks.security [--messages-100b N] [--messages-10k N] [--rounds N] [--write docs/benchmarks.md]

The broker (on disk, acks=all) has a PLAINTEXT, an SSL and a SASL_SSL listener with a
certificate from a local CA; each round runs every workload over the three in turn, on a topic
of its own, and each figure is the median of the rounds. The ratios are to PLAINTEXT, whose
fetches leave by sendfile (zero copy) where TLS must copy and encrypt.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism
from confluent_kafka.admin import UserScramCredentialUpsertion

import tomyum
from benchmarks.throughput import Figure, consume_phase, machine_line, produce_phase, write_section
from tomyum.security.certs import LocalCA
from tomyum.testing import BrokerProcess

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")


@contextmanager
def secured_broker() -> Iterator[tuple[dict[str, dict[str, str]], int]]:
    """A broker with the three listeners; the client settings of each, and the broker's pid."""
    with tempfile.TemporaryDirectory() as d:
        ca = LocalCA(Path(d) / "ca")
        settings = {"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL",
                    "ssl.keystore.location": str(ca.broker().keystore),
                    "sasl.enabled.mechanisms": "SCRAM-SHA-256"}
        with BrokerProcess(Path(d) / "data", settings=settings) as b:
            assert b.proc is not None
            line = next(x for x in b.output().splitlines() if "accepting connections on" in x)
            ports = dict(re.findall(r"(\w+)://[^:\s]+:(\d+)", line.split("(advertised")[0]))
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            upsert = UserScramCredentialUpsertion("bench", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                                  b"bench-secret")
            for f in admin.alter_user_scram_credentials([upsert]).values():
                f.result(30)
            tls = {"ssl.ca.location": str(ca.cert_path)}
            confs = {"PLAINTEXT": {"bootstrap.servers": f"127.0.0.1:{ports['PLAINTEXT']}"},
                     "SSL": {"bootstrap.servers": f"127.0.0.1:{ports['SSL']}", "security.protocol": "SSL", **tls},
                     "SASL_SSL": {"bootstrap.servers": f"127.0.0.1:{ports['SASL_SSL']}",
                                  "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
                                  "sasl.username": "bench", "sasl.password": "bench-secret", **tls}}
            yield confs, b.proc.pid


def run(confs: dict[str, dict[str, str]], pid: int, protocol: str, topic: str, value_bytes: int, count: int,
        clients: int) -> list[Figure]:
    conf = confs[protocol]
    bootstrap = conf["bootstrap.servers"]
    admin = AdminClient(conf)  # kept until the result: a client destroyed first fails its requests
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    seconds, client, broker = produce_phase(bootstrap, pid, topic, 1, value_bytes, count, clients=clients, conf=conf)
    produce = Figure(protocol, f"produce {value_bytes}B", count, seconds, value_bytes, client, broker)
    seconds, client, broker = consume_phase(bootstrap, pid, topic, 1, count, clients=clients, conf=conf)
    consume = Figure(protocol, f"consume {value_bytes}B", count * clients, seconds, value_bytes, client, broker)
    admin.delete_topics([topic])[topic].result(30)  # the next runs do not share its disk and page cache
    return [produce, consume]


def table(figures: list[Figure]) -> str:
    rows = ["| workload | listener | msgs/s | MB/s | client CPU s | broker CPU s | ÷ PLAINTEXT |",
            "|---|---|---:|---:|---:|---:|---:|"]
    by = {(f.workload, f.broker): f for f in figures}
    for workload in dict.fromkeys(f.workload for f in figures):
        base = by[(workload, "PLAINTEXT")]
        for protocol in PROTOCOLS:
            f = by[(workload, protocol)]
            rows.append(f"| {workload} | {protocol} | {f.msgs_per_s:,.0f} | {f.mb_per_s:,.1f} | {f.client_cpu:.1f} | "
                        f"{f.broker_cpu:.1f} | {f.msgs_per_s / base.msgs_per_s:.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages-100b", type=int, default=500_000)
    ap.add_argument("--messages-10k", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each workload over each listener; the median")
    ap.add_argument("--clients", type=int, default=2,
                    help="producer processes sharing the messages, and consumer processes each reading them all")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    runs: dict[tuple[str, str], list[Figure]] = {}
    with secured_broker() as (confs, pid):
        for n in range(args.rounds):
            for value_bytes, count in ((100, args.messages_100b), (10 * 1024, args.messages_10k)):
                for protocol in PROTOCOLS:  # the listeners alternate, round after round
                    topic = f"bench-{protocol.lower()}-{value_bytes}-{n}"
                    for f in run(confs, pid, protocol, topic, value_bytes, count, args.clients):
                        runs.setdefault((f.workload, f.broker), []).append(f)
            print(f"done: round {n + 1}", flush=True)
    figures = [sorted(same, key=lambda f: f.seconds)[len(same) // 2] for same in runs.values()]
    out = table(figures)
    print(out)
    if args.write:
        command = "python -m benchmarks.security " + " ".join(sys.argv[1:])
        versions = (f"tomyum {tomyum.__version__}, confluent-kafka {confluent_kafka.__version__} "
                    f"(librdkafka {confluent_kafka.libversion()[0]})")
        write_section(args.write, "Security: PLAINTEXT, SSL and SASL_SSL",
                      f"Machine: {machine_line()}.  \nVersions: {versions}.  \nCommand: `{command}`.\n\n"
                      "One broker (on disk, acks=all) with three listeners: PLAINTEXT, SSL (TLS with a local CA's\n"
                      "ECDSA P-256 certificate, the stdlib's ssl on the broker) and SASL_SSL (the same TLS and\n"
                      "SCRAM-SHA-256). The same workloads run over each in turn, each on a topic of its own with\n"
                      f"one partition; each figure is the median of {args.rounds} rounds, {args.clients} client\n"
                      "processes producing (sharing the messages) and consuming (each reading them all). The last\n"
                      "column is the throughput over PLAINTEXT's: PLAINTEXT fetches leave by sendfile, TLS ones\n"
                      "are read, copied and encrypted (as in Kafka); SASL costs only its exchange at connection.\n"
                      "On this shared 2-core machine the rates vary by a third from run to run (the listeners'\n"
                      "order within a round does not favour one); the broker's CPU seconds for the same work are\n"
                      "the steadier measure of what TLS costs, most of all on consume.\n\n"
                      + out)


if __name__ == "__main__":
    main()
