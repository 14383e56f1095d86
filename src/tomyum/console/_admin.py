"""What the console asks that confluent-kafka's admin client has no call for: DescribeLogDirs
(sizes on disk), ListTransactions, DescribeTransactions and DescribeProducers. They go through
kafka-python's ``KafkaAdminClient`` (another plain Kafka client: no broker internals), with the
console's librdkafka settings translated, security included.

What cannot be carried over (an OAUTHBEARER login, a PKCS12 keystore, in-memory PEM certificates,
``enable.ssl.certificate.verification=false``) makes :func:`kafka_python_config` raise
:class:`NotCarried`; the console then shows the rest of its pages and, where these answers would
be, that one-line reason. Every call blocks, is bounded by ``timeout``, and raises
:class:`confluent_kafka.KafkaException` as the rest of :mod:`tomyum.console._kafka` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

T = TypeVar("T")

# kafka-python logs every connection step at INFO: kept off the console's (the broker's) log
# unless someone asked for its lines (a level set on the "kafka" logger)
kafka_python_log = logging.getLogger("kafka")

#: librdkafka key → kafka-python's, for those passed through as they are
_SAME = {"client.id": "client_id", "ssl.ca.location": "ssl_cafile", "ssl.certificate.location": "ssl_certfile",
         "ssl.key.location": "ssl_keyfile", "ssl.key.password": "ssl_password", "sasl.username": "sasl_plain_username",
         "sasl.password": "sasl_plain_password"}
#: librdkafka security keys that do not change how the connection authenticates
_HARMLESS = {"ssl.endpoint.identification.algorithm", "sasl.mechanism", "sasl.mechanisms", "security.protocol",
             "enable.ssl.certificate.verification"}
_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


class NotCarried(Exception):
    """The console's client settings name something kafka-python cannot do the same way."""


def kafka_python_config(settings: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """kafka-python ``KafkaAdminClient`` settings doing what the librdkafka ``settings`` do."""
    out: dict[str, Any] = {"bootstrap_servers": str(settings["bootstrap.servers"]).split(","),
                           "request_timeout_ms": int(timeout * 1000), "bootstrap_timeout_ms": int(timeout * 1000)}
    protocol = str(settings.get("security.protocol", "plaintext")).upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise NotCarried(f"security.protocol={protocol} is not one kafka-python knows")
    out["security_protocol"] = protocol
    if protocol.startswith("SASL"):
        mechanism = str(settings.get("sasl.mechanism", settings.get("sasl.mechanisms", "GSSAPI"))).upper()
        if mechanism not in _MECHANISMS:
            raise NotCarried(f"sasl.mechanism={mechanism}: only PLAIN and SCRAM logins are carried over to "
                             "kafka-python")
        out["sasl_mechanism"] = mechanism
    if str(settings.get("enable.ssl.certificate.verification", "true")).lower() == "false":
        raise NotCarried("enable.ssl.certificate.verification=false is not carried over to kafka-python")
    out["ssl_check_hostname"] = str(settings.get("ssl.endpoint.identification.algorithm", "https")).lower() != "none"
    for key, value in settings.items():
        if key in _SAME:
            out[_SAME[key]] = value
        elif key.startswith(("ssl.", "sasl.")) and key not in _HARMLESS:
            raise NotCarried(f"{key} is not carried over to kafka-python")
    return out


def _kafka_exception(e: Exception) -> KafkaException:
    """A kafka-python error as confluent-kafka's: Kafka's error code when the broker answered one;
    otherwise a transport error when kafka-python says a retry may help (the console asks again,
    within its timeout), a failure when not."""
    code = getattr(e, "errno", None)
    message = str(e) or type(e).__name__
    if isinstance(code, int) and code > 0:
        error = KafkaError(code, message)
        if not error.name().endswith("?"):  # a code this librdkafka has a name for
            return KafkaException(error)
        return KafkaException(KafkaError(KafkaError._FAIL, f"{type(e).__name__} (error {code}): {message}"))
    local = KafkaError._TRANSPORT if getattr(e, "retriable", False) else KafkaError._FAIL
    return KafkaException(KafkaError(local, message))


def _describe_one(transactional_id: str, admin: Any) -> Any:
    return admin.describe_transactions([transactional_id])


class WireAdmin:
    """One kafka-python admin client, made at the first call and used by one call at a time."""

    def __init__(self, settings: Mapping[str, Any], timeout: float) -> None:
        self.timeout = timeout
        try:
            self.config: dict[str, Any] | None = kafka_python_config(settings, timeout)
            self.not_carried = ""
        except NotCarried as e:
            self.config, self.not_carried = None, str(e)
        self._client: Any = None
        self._lock = threading.Lock()
        if kafka_python_log.level == logging.NOTSET:
            kafka_python_log.setLevel(logging.WARNING)

    def _call(self, fn: Callable[[Any], T]) -> T:
        import kafka.errors
        from kafka.admin import KafkaAdminClient

        if self.config is None:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, self.not_carried))
        with self._lock:
            try:
                if self._client is None:
                    self._client = KafkaAdminClient(**self.config)
                return fn(self._client)
            except (kafka.errors.KafkaError, OSError, ValueError) as e:  # OSError: a TLS file or handshake
                raise _kafka_exception(e) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def log_dirs(self) -> list[dict[str, Any]]:
        """Every broker's log directories: ``broker``, ``dir``, ``error`` (a name, or ""),
        ``total`` and ``usable`` bytes (-1: not told) and ``sizes`` {(topic, partition): bytes}."""
        from kafka.errors import for_code

        answers = self._call(lambda a: a.describe_log_dirs())
        dirs = []
        for answer in answers:
            if not answer["log_dirs"]:  # a broker has one at least: refused (kafka-python drops v3's error code)
                raise KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                                                f"broker {answer['broker']} describes no log directory to this "
                                                "principal (DescribeLogDirs needs DESCRIBE on the cluster)"))
            for d in answer["log_dirs"]:
                sizes = {(t["name"], p["partition_index"]): p["partition_size"]
                         for t in d["topics"] for p in t["partitions"]}
                error = for_code(d["error_code"]).__name__ if d["error_code"] else ""
                dirs.append({"broker": answer["broker"], "dir": d["log_dir"], "error": error, "sizes": sizes,
                             "total": d.get("total_bytes", -1), "usable": d.get("usable_bytes", -1),
                             "used": sum(sizes.values())})
        return sorted(dirs, key=lambda d: (d["broker"], d["dir"]))

    def transactions(self) -> list[dict[str, Any]]:
        """Every transactional id the brokers list, described by its coordinator."""
        listed = self._call(lambda a: a.list_transactions())
        ids = sorted({t.transactional_id for txns in listed.values() for t in txns})
        if not ids:
            return []
        try:
            described = self._call(lambda a: a.describe_transactions(ids))
        except KafkaException:  # one of them went (or may not be described) since: ask one by one
            described = {}
            for tid in ids:
                try:
                    described.update(self._call(partial(_describe_one, tid)))
                except KafkaException:
                    continue
        return [{"id": tid, "state": d.state.value, "producer_id": d.producer_id, "producer_epoch": d.producer_epoch,
                 "timeout_ms": d.transaction_timeout_ms, "start_ms": d.transaction_start_time_ms,
                 "coordinator": d.coordinator_id,
                 "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in d.topic_partitions)}
                for tid, d in sorted(described.items())]

    def producers(self, topic: str, partitions: list[int]) -> list[dict[str, Any]]:
        """The active producers of ``topic``'s ``partitions`` (DescribeProducers, at each leader)."""
        from kafka import TopicPartition as KTopicPartition

        tps = [KTopicPartition(topic, p) for p in partitions]
        if not tps:
            return []
        answer = self._call(lambda a: a.describe_producers(tps))
        return [{"partition": tp.partition, "producer_id": s.producer_id, "producer_epoch": s.producer_epoch,
                 "last_sequence": s.last_sequence, "last_timestamp": s.last_timestamp,
                 "txn_start_offset": s.current_transaction_start_offset}
                for tp, state in sorted(answer.items(), key=lambda x: x[0].partition)
                for s in state.active_producers]


__all__ = ["NotCarried", "WireAdmin", "kafka_python_config"]
