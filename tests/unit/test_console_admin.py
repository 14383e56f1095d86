"""The console's librdkafka settings carried over to kafka-python (tomyum.console._admin), for
the calls confluent-kafka lacks; and the page's byte sizes."""

from __future__ import annotations

import pytest

from tomyum.console._admin import NotCarried, _kafka_exception, kafka_python_config
from tomyum.console._app import size


def test_plaintext_settings_carry_the_bootstrap_servers_client_id_and_timeout() -> None:
    config = kafka_python_config({"bootstrap.servers": "a:9092,b:9092", "client.id": "tomyum-console",
                                  "socket.timeout.ms": "5000", "logger": object()}, 2.5)
    assert config["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert (config["client_id"], config["security_protocol"]) == ("tomyum-console", "PLAINTEXT")
    assert config["request_timeout_ms"] == config["bootstrap_timeout_ms"] == 2500


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_sasl_login_over_tls_carries_the_mechanism_credentials_and_certificates(mechanism: str) -> None:
    config = kafka_python_config({"bootstrap.servers": "a:9093", "security.protocol": "sasl_ssl",
                                  "sasl.mechanisms": mechanism, "sasl.username": "alice", "sasl.password": "pw",
                                  "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/me.pem",
                                  "ssl.key.location": "/me.key", "ssl.key.password": "kp",
                                  "ssl.endpoint.identification.algorithm": "none"}, 10)
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", mechanism)
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("alice", "pw")
    assert (config["ssl_cafile"], config["ssl_certfile"], config["ssl_keyfile"], config["ssl_password"]) == (
        "/ca.pem", "/me.pem", "/me.key", "kp")
    assert config["ssl_check_hostname"] is False


@pytest.mark.parametrize(("settings", "why"), [
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER"}, "sasl.mechanism=OAUTHBEARER"),
    ({"security.protocol": "SASL_PLAINTEXT"}, "sasl.mechanism=GSSAPI"),  # librdkafka's default
    ({"security.protocol": "SSL", "ssl.ca.pem": "-----BEGIN"}, "ssl.ca.pem is not carried"),
    ({"security.protocol": "SSL", "ssl.keystore.location": "me.p12"}, "ssl.keystore.location is not carried"),
    ({"security.protocol": "SSL", "enable.ssl.certificate.verification": "false"}, "verification=false"),
])
def test_what_kafka_python_cannot_do_the_same_way_is_refused_with_the_key(settings: dict[str, str],
                                                                         why: str) -> None:
    with pytest.raises(NotCarried, match=why):
        kafka_python_config({"bootstrap.servers": "a:9093", **settings}, 10)


def test_sizes_read_as_a_person_reads_them() -> None:
    assert [size(n) for n in (None, -1, 0, 1023, 1536, 20 * 1024 * 1024)] == [
        "", "", "0 B", "1023 B", "1.5 KiB", "20.0 MiB"]


def test_kafka_python_errors_become_confluent_kafka_ones_in_kafkas_words() -> None:
    import kafka.errors

    known = _kafka_exception(kafka.errors.ClusterAuthorizationFailedError("no")).args[0]
    assert (known.code(), known.name()) == (31, "CLUSTER_AUTHORIZATION_FAILED")
    unnamed = _kafka_exception(kafka.errors.TransactionalIdNotFoundError("gone")).args[0]
    assert unnamed.str().startswith("TransactionalIdNotFoundError (error 105)")
    timeout = _kafka_exception(kafka.errors.KafkaTimeoutError("slow")).args[0]
    assert timeout.name() == "_TRANSPORT"  # retriable: the console asks again within its timeout
    config = _kafka_exception(kafka.errors.KafkaConfigurationError("bad")).args[0]
    assert config.name() == "_FAIL"
