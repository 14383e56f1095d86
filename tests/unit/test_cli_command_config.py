"""``--command-config``: Kafka's client properties become librdkafka settings, and a key that
cannot be translated is one error naming the file, the key and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tomyum.cli.command_config import load, read_properties, translate
from tomyum.cli.common import CliError

SCRAM = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
         'username="alice" password="s3cr=t;\\"x";')


def test_properties_files_are_read_as_java_reads_them() -> None:
    text = "# comment\n! also\nsecurity.protocol = SASL_SSL\nsasl.mechanism:SCRAM-SHA-256\n" \
           "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n" \
           '    username="u" password="p";\n\n'
    assert read_properties(text) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";'}


def test_kafka_keys_become_librdkafka_keys(tmp_path: Path) -> None:
    keystore = tmp_path / "client.keystore"
    keystore.write_text("-----BEGIN CERTIFICATE-----\n")
    assert translate({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256", "sasl.jaas.config": SCRAM,
                      "ssl.truststore.location": "/ca.pem", "ssl.truststore.type": "PEM",
                      "ssl.keystore.location": str(keystore), "ssl.endpoint.identification.algorithm": "",
                      "ssl.ca.location": "/kept", "linger.ms": "5"}) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice", "sasl.password": 's3cr=t;"x',
        "ssl.ca.location": "/kept", "ssl.certificate.location": str(keystore), "ssl.key.location": str(keystore),
        "ssl.endpoint.identification.algorithm": "none", "linger.ms": "5"}


def test_unsecured_oauthbearer_names_the_principal() -> None:
    jaas = 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="bob";'
    assert translate({"sasl.jaas.config": jaas}) == {"enable.sasl.oauthbearer.unsecure.jwt": "true",
                                                      "sasl.oauthbearer.config": "principal=bob"}


@pytest.mark.parametrize(("props", "words"), [
    ({"ssl.truststore.location": "/x.jks", "ssl.truststore.type": "JKS"}, "ssl.truststore.location: librdkafka reads no JKS"),
    ({"sasl.jaas.config": "com.example.Krb5LoginModule required;"}, "Krb5LoginModule is not a login module"),
    ({"sasl.jaas.config": "garbage"}, "sasl.jaas.config: not '<LoginModule>"),
    ({"sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;"}, "needs username="),
    ({"sasl.login.callback.handler.class": "a.B"}, "names Java code"),
])
def test_what_cannot_be_translated_is_one_clear_error(props: dict[str, str], words: str) -> None:
    with pytest.raises(CliError) as e:
        translate(props, "--command-config c.properties")
    assert str(e.value).startswith("--command-config c.properties: ") and words in str(e.value)
    assert "\n" not in str(e.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read .*nope.properties: no such file"):
        load(tmp_path / "nope.properties")
