"""The applications on top against a secured broker (SASL_SSL with SCRAM-SHA-256 and a local
CA), configured from one Kafka client properties file — the file ``kafka-topics.sh
--command-config`` and ``tomyum --command-config`` read — through
``tomyum.client.client_properties``: tomyum.client sends and consumes, a tomyum.streams
application runs its topology, ``tomyum demo --command-config`` shows its lesson; and
``tomyum quotas`` logs in with OAUTHBEARER. The broker logs each client's principal."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.test_cli import fails, ok, rows
from tests.integration.test_demos import demo
from tomyum.client import Kafka, Message, PropertiesError, client_properties
from tomyum.security.certs import LocalCA
from tomyum.streams import Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams
from tomyum.testing import BrokerProcess, wait_until

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(bool(os.environ.get("TOMYUM_TEST_BOOTSTRAP")), reason="starts its own broker")]
TIMEOUT = 30
SCRAM = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password="app-secret";'
OAUTH = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
         'unsecuredLoginStringClaim_sub="carol";')


class Secured:
    def __init__(self, broker: BrokerProcess, secure: str, plain: str, properties: Path, oauth: Path) -> None:
        self.broker, self.secure, self.plain, self.properties, self.oauth = broker, secure, plain, properties, oauth


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("secured-apps")
    ca = LocalCA(tmp / "ca")
    settings = {"listeners": "PLAIN://127.0.0.1:0,SECURE://127.0.0.1:0",
                "listener.security.protocol.map": "PLAIN:PLAINTEXT,SECURE:SASL_SSL",
                "ssl.keystore.location": str(ca.broker().keystore),
                "sasl.enabled.mechanisms": "SCRAM-SHA-256,OAUTHBEARER",
                "group.initial.rebalance.delay.ms": "1000"}  # as the demo's own broker: members arrive together
    with BrokerProcess(tmp / "data", settings=settings) as b:
        line = next(x for x in b.output().splitlines() if "accepting connections on" in x)
        ports = dict(re.findall(r"(\w+)://[^:\s]+:(\d+)", line.split("(advertised")[0]))
        plain, secure = f"127.0.0.1:{ports['PLAIN']}", f"127.0.0.1:{ports['SECURE']}"
        ok("users", "add", "app", "--password", "app-secret", "--bootstrap", plain)
        trust = f"ssl.truststore.type=PEM\nssl.truststore.location={ca.cert_path}\n"
        properties, oauth = tmp / "client.properties", tmp / "oauth.properties"
        properties.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config={SCRAM}\n"
                              + trust)
        oauth.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\nsasl.jaas.config={OAUTH}\n" + trust)
        yield Secured(b, secure, plain, properties, oauth)


def test_the_client_sends_and_consumes_over_sasl_ssl_from_a_properties_file(secured: Secured) -> None:
    async def main() -> list[bytes | None]:
        kafka = Kafka(client_id="secured-client", brokers=[secured.secure],
                      config=client_properties(secured.properties))
        admin = kafka.admin()
        await admin.connect()
        assert await admin.create_topics([{"topic": "secured-client", "num_partitions": 1}]) is True
        await admin.disconnect()
        producer = kafka.producer()
        await producer.connect()
        await producer.send("secured-client", messages=[{"value": f"v{i}"} for i in range(5)])
        await producer.disconnect()
        consumer = kafka.consumer(group_id="secured-client")
        got: list[bytes | None] = []
        five = asyncio.Event()

        async def each_message(message: Message) -> None:
            got.append(message.value)
            if len(got) == 5:
                five.set()

        await consumer.connect()
        await consumer.subscribe("secured-client", from_beginning=True)
        await consumer.run(each_message=each_message)
        try:
            await asyncio.wait_for(five.wait(), TIMEOUT)
        finally:
            await consumer.disconnect()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 60)) == [f"v{i}".encode() for i in range(5)]
    assert "authenticated: principal User:app" in secured.broker.output()
    # the properties' keys librdkafka cannot take are refused by name, before any connection
    jks = secured.properties.with_name("jks.properties")
    jks.write_text("security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=/x.jks\n")
    with pytest.raises(PropertiesError, match="ssl.truststore.location"):
        client_properties(jks)


def test_a_streams_application_runs_over_sasl_ssl_from_a_properties_file(secured: Secured,
                                                                          tmp_path: Path) -> None:
    settings = client_properties(secured.properties)
    ok("topics", "create", "secured-in", "-b", secured.secure, "--command-config", str(secured.properties))
    ok("topics", "create", "secured-out", "-b", secured.secure, "--command-config", str(secured.properties))
    builder = StreamsBuilder()
    (builder.stream("secured-in", value_serde=Serdes.string())
        .map_values(str.upper)
        .to("secured-out", value_serde=Serdes.string()))
    app = KafkaStreams(builder.build(), StreamsConfig(application_id="secured-streams", state_dir=str(tmp_path)),
                       bootstrap_servers=secured.secure, commit_interval_ms=200, client_config=settings)
    app.start()
    consumer = Consumer({"bootstrap.servers": secured.secure, "group.id": f"check-{time.monotonic_ns()}",
                         "enable.auto.commit": False, **settings})
    try:
        producer = Producer({"bootstrap.servers": secured.secure, **settings})
        for word in ("secured", "streams"):
            producer.produce("secured-in", value=word.encode())
        assert producer.flush(TIMEOUT) == 0
        consumer.assign([TopicPartition("secured-out", 0, 0)])
        seen: list[bytes] = []

        def both() -> bool:
            seen.extend(m.value() for m in consumer.consume(10, timeout=0.2) if m.error() is None)
            return len(seen) >= 2

        wait_until(both, TIMEOUT, interval=0, what="the upper-cased words")
        assert seen == [b"SECURED", b"STREAMS"]
    finally:
        consumer.close()
        assert app.close(TIMEOUT)


def test_the_demos_run_against_a_secured_broker_with_command_config(secured: Secured) -> None:
    out = demo("streams", "--bootstrap", secured.secure, "--command-config", str(secured.properties))
    assert f"--command-config {secured.properties}" in out
    assert "processor transformed 20/20 · consumer received 20/20, 20 upper-cased" in out
    # the demo's own broker is a plaintext one: --command-config needs --bootstrap, said in a line
    assert "--command-config is for a secured broker" in fails(
        "demo", "streams", "--command-config", str(secured.properties), code=2)


def test_quotas_log_in_with_oauthbearer(secured: Secured) -> None:
    login = ("-b", secured.secure, "--command-config", str(secured.oauth))
    assert "updated quotas of user=carol" in ok("quotas", "alter", "--user", "carol", "--add-config",
                                               "request_percentage=25,producer_byte_rate=1024", *login)
    assert rows(ok("quotas", "describe", "--user", "carol", *login)) == [
        ["ENTITY", "QUOTA", "VALUE"], ["user=carol", "producer_byte_rate", "1024"],
        ["user=carol", "request_percentage", "25"]]
    assert "principal User:carol" in secured.broker.output()
