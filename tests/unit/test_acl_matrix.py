"""Every API enforces the ACL Kafka requires (issue 19), below the socket.

One row per check: the API, a request, the ACL Kafka's KafkaApis/ControllerApis requires
(resource type, name, operation), how to read the outcome from the response, and the error a
principal without it gets. For each row a principal with exactly that ACL (plus the row's
``others``, the API's other checks) is not refused, and one with only the ``others`` is refused
with the row's error. Every registered API key has at least one row. Then patterns (prefixed,
wildcard), DENY over ALLOW, and super users.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tomyum.broker.handlers  # noqa: F401  (registers every handler)
from tomyum.broker.dispatch import HANDLERS
from tomyum.config import STANDARD_AUTHORIZER
from tomyum.errors import ErrorCode
from tomyum.metadata.records import AccessControlEntryRecord
from tomyum.protocol.records import build_batch
from tomyum.security.acls import AclOperation as Op
from tomyum.security.acls import ResourceType as Res
from tomyum.security.authorizer import AclPermissionType, PatternType
from tomyum.testing.handlers import BlockingHarness

ADMIN, ALLOWED, DENIED = "User:admin", "User:allowed", "User:denied"
CLUSTER = "kafka-cluster"
TOPIC_DENIED, GROUP_DENIED = ErrorCode.topic_authorization_failed, ErrorCode.group_authorization_failed
CLUSTER_DENIED, TXN_DENIED = ErrorCode.cluster_authorization_failed, ErrorCode.transactional_id_authorization_failed
AUTH_ERRORS = {TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED}
EVERY_ACL = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
             "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}
Acl = tuple[Res, str, Op]


@dataclass(frozen=True)
class Row:
    api_key: int
    version: int
    request: dict[str, Any]
    acl: Acl | None  # None: no ACL needed (anyone is served)
    code: Callable[[Any], int]
    denied: ErrorCode = ErrorCode.none
    others: tuple[Acl, ...] = field(default=())
    label: str = ""


def _records(transactional: bool = False) -> bytes:
    return build_batch([(None, b"v")], producer_id=1 if transactional else -1,
                       producer_epoch=0 if transactional else -1, base_sequence=0 if transactional else -1,
                       transactional=transactional)


def _listed(name: str, names: Callable[[Any], list[str]], denied: ErrorCode) -> Callable[[Any], int]:
    return lambda r: ErrorCode.none if name in names(r) else denied


T_PART = [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 0}]}]
ROWS = [
    Row(0, 9, {"acks": 1, "timeout": 5000, "topic_data": [{"name": "t", "partition_data": [
        {"index": 0, "records": _records()}]}]}, (Res.TOPIC, "t", Op.WRITE),
        lambda r: r.responses[0].partition_responses[0].error_code, TOPIC_DENIED),
    Row(0, 9, {"acks": 1, "timeout": 5000, "transactional_id": "tx", "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": _records(transactional=True)}]}]},
        (Res.TRANSACTIONAL_ID, "tx", Op.WRITE), lambda r: r.responses[0].partition_responses[0].error_code,
        TXN_DENIED, others=((Res.TOPIC, "t", Op.WRITE),), label="transactional"),
    Row(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20, "session_epoch": -1,
                "topics": [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0,
                                                          "partition_max_bytes": 1 << 20}]}]},
        (Res.TOPIC, "t", Op.READ), lambda r: r.responses[0].partitions[0].error_code, TOPIC_DENIED),
    Row(2, 7, {"replica_id": -1, "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]},
        (Res.TOPIC, "t", Op.DESCRIBE), lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    Row(3, 12, {"topics": [{"name": "t"}]}, (Res.TOPIC, "t", Op.DESCRIBE), lambda r: r.topics[0].error_code,
        TOPIC_DENIED),
    Row(3, 12, {"topics": None}, (Res.TOPIC, "t", Op.DESCRIBE),
        _listed("t", lambda r: [t.name for t in r.topics], TOPIC_DENIED), TOPIC_DENIED, label="all topics"),
    Row(3, 12, {"topics": [{"name": "new"}], "allow_auto_topic_creation": True}, (Res.TOPIC, "new", Op.CREATE),
        lambda r: r.topics[0].error_code, TOPIC_DENIED, others=((Res.TOPIC, "new", Op.DESCRIBE),),
        label="auto-creation"),
    Row(8, 8, {"group_id": "g", "generation_id_or_member_epoch": -1, "topics": T_PART}, (Res.GROUP, "g", Op.READ),
        lambda r: r.topics[0].partitions[0].error_code, GROUP_DENIED, others=((Res.TOPIC, "t", Op.READ),)),
    Row(8, 8, {"group_id": "g", "generation_id_or_member_epoch": -1, "topics": T_PART}, (Res.TOPIC, "t", Op.READ),
        lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED, others=((Res.GROUP, "g", Op.READ),),
        label="topic"),
    Row(9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}]},
        (Res.GROUP, "g", Op.DESCRIBE), lambda r: r.groups[0].error_code, GROUP_DENIED,
        others=((Res.TOPIC, "t", Op.DESCRIBE),)),
    Row(9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}]},
        (Res.TOPIC, "t", Op.DESCRIBE), lambda r: r.groups[0].topics[0].partitions[0].error_code, TOPIC_DENIED,
        others=((Res.GROUP, "g", Op.DESCRIBE),), label="topic"),
    Row(9, 5, {"group_id": "g", "topics": None}, (Res.GROUP, "g", Op.DESCRIBE), lambda r: r.error_code,
        GROUP_DENIED, label="v5"),
    Row(10, 4, {"key_type": 0, "coordinator_keys": ["g"]}, (Res.GROUP, "g", Op.DESCRIBE),
        lambda r: r.coordinators[0].error_code, GROUP_DENIED),
    Row(10, 4, {"key_type": 1, "coordinator_keys": ["tx"]}, (Res.TRANSACTIONAL_ID, "tx", Op.DESCRIBE),
        lambda r: r.coordinators[0].error_code, TXN_DENIED, label="transaction"),
    Row(11, 7, {"group_id": "g", "session_timeout": 10000, "rebalance_timeout": 10000, "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": b""}]}, (Res.GROUP, "g", Op.READ),
        lambda r: r.error_code, GROUP_DENIED),
    Row(12, 4, {"group_id": "g", "generation_id": 1, "member_id": "m"}, (Res.GROUP, "g", Op.READ),
        lambda r: r.error_code, GROUP_DENIED),
    Row(13, 5, {"group_id": "g", "members": [{"member_id": "m"}]}, (Res.GROUP, "g", Op.READ),
        lambda r: r.error_code, GROUP_DENIED),
    Row(14, 5, {"group_id": "g", "generation_id": 1, "member_id": "m"}, (Res.GROUP, "g", Op.READ),
        lambda r: r.error_code, GROUP_DENIED),
    Row(15, 5, {"groups": ["g"]}, (Res.GROUP, "g", Op.DESCRIBE), lambda r: r.groups[0].error_code, GROUP_DENIED),
    Row(16, 4, {}, (Res.GROUP, "g", Op.DESCRIBE), _listed("g", lambda r: [g.group_id for g in r.groups], GROUP_DENIED),
        GROUP_DENIED),
    Row(16, 4, {}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE),
        _listed("g", lambda r: [g.group_id for g in r.groups], GROUP_DENIED), GROUP_DENIED, label="cluster"),
    Row(17, 1, {"mechanism": "PLAIN"}, None, lambda r: r.error_code),
    Row(18, 3, {"client_software_name": "t", "client_software_version": "1"}, None, lambda r: r.error_code),
    Row(19, 7, {"topics": [{"name": "new", "num_partitions": 1, "replication_factor": 1}], "timeout": 5000},
        (Res.TOPIC, "new", Op.CREATE), lambda r: r.topics[0].error_code, TOPIC_DENIED),
    Row(19, 7, {"topics": [{"name": "new", "num_partitions": 1, "replication_factor": 1}], "timeout": 5000},
        (Res.CLUSTER, CLUSTER, Op.CREATE), lambda r: r.topics[0].error_code, TOPIC_DENIED, label="cluster"),
    Row(20, 5, {"topic_names": ["t"], "timeout": 5000}, (Res.TOPIC, "t", Op.DELETE),
        lambda r: r.responses[0].error_code, TOPIC_DENIED),
    Row(21, 2, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 0}]}], "timeout": 5000},
        (Res.TOPIC, "t", Op.DELETE), lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    Row(22, 4, {"transactional_id": "tx", "transaction_timeout": 60000, "producer_id": -1, "producer_epoch": -1},
        (Res.TRANSACTIONAL_ID, "tx", Op.WRITE), lambda r: r.error_code, TXN_DENIED),
    Row(22, 4, {"transactional_id": None, "producer_id": -1, "producer_epoch": -1},
        (Res.CLUSTER, CLUSTER, Op.IDEMPOTENT_WRITE), lambda r: r.error_code, CLUSTER_DENIED, label="idempotent"),
    Row(22, 4, {"transactional_id": None, "producer_id": -1, "producer_epoch": -1},
        (Res.TOPIC, "t", Op.WRITE), lambda r: r.error_code, CLUSTER_DENIED, label="idempotent, a topic"),
    Row(23, 4, {"replica_id": -1, "topics": [{"topic": "t", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]},
        (Res.TOPIC, "t", Op.DESCRIBE), lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    Row(24, 3, {"v3_and_below_transactional_id": "tx", "v3_and_below_producer_id": 1,
                "v3_and_below_producer_epoch": 0, "v3_and_below_topics": [{"name": "t", "partitions": [0]}]},
        (Res.TRANSACTIONAL_ID, "tx", Op.WRITE),
        lambda r: r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, TXN_DENIED,
        others=((Res.TOPIC, "t", Op.WRITE),)),
    Row(24, 3, {"v3_and_below_transactional_id": "tx", "v3_and_below_producer_id": 1,
                "v3_and_below_producer_epoch": 0, "v3_and_below_topics": [{"name": "t", "partitions": [0]}]},
        (Res.TOPIC, "t", Op.WRITE),
        lambda r: r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, TOPIC_DENIED,
        others=((Res.TRANSACTIONAL_ID, "tx", Op.WRITE),), label="topic"),
    Row(25, 3, {"transactional_id": "tx", "producer_id": 1, "producer_epoch": 0, "group_id": "g"},
        (Res.TRANSACTIONAL_ID, "tx", Op.WRITE), lambda r: r.error_code, TXN_DENIED,
        others=((Res.GROUP, "g", Op.READ),)),
    Row(25, 3, {"transactional_id": "tx", "producer_id": 1, "producer_epoch": 0, "group_id": "g"},
        (Res.GROUP, "g", Op.READ), lambda r: r.error_code, GROUP_DENIED,
        others=((Res.TRANSACTIONAL_ID, "tx", Op.WRITE),), label="group"),
    Row(26, 3, {"transactional_id": "tx", "producer_id": 1, "producer_epoch": 0, "committed": True},
        (Res.TRANSACTIONAL_ID, "tx", Op.WRITE), lambda r: r.error_code, TXN_DENIED),
    *[Row(28, 3, {"transactional_id": "tx", "group_id": "g", "producer_id": 1, "producer_epoch": 0,
                  "generation_id": -1, "topics": T_PART}, acl,
          lambda r: r.topics[0].partitions[0].error_code, denied, others=others, label=label)
      for acl, denied, others, label in [
          ((Res.TRANSACTIONAL_ID, "tx", Op.WRITE), TXN_DENIED, ((Res.GROUP, "g", Op.READ), (Res.TOPIC, "t", Op.READ)),
           ""),
          ((Res.GROUP, "g", Op.READ), GROUP_DENIED,
           ((Res.TRANSACTIONAL_ID, "tx", Op.WRITE), (Res.TOPIC, "t", Op.READ)), "group"),
          ((Res.TOPIC, "t", Op.READ), TOPIC_DENIED,
           ((Res.TRANSACTIONAL_ID, "tx", Op.WRITE), (Res.GROUP, "g", Op.READ)), "topic")]],
    Row(29, 3, EVERY_ACL, (Res.CLUSTER, CLUSTER, Op.DESCRIBE), lambda r: r.error_code, CLUSTER_DENIED),
    Row(35, 4, {"topics": None}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE), lambda r: r.error_code, CLUSTER_DENIED),
    Row(30, 3, {"creations": [{"resource_type": 2, "resource_name": "x", "resource_pattern_type": 3,
                               "principal": "User:x", "host": "*", "operation": 3, "permission_type": 3}]},
        (Res.CLUSTER, CLUSTER, Op.ALTER), lambda r: r.results[0].error_code, CLUSTER_DENIED),
    Row(31, 3, {"filters": [{**EVERY_ACL, "resource_name_filter": "nothing"}]}, (Res.CLUSTER, CLUSTER, Op.ALTER),
        lambda r: r.filter_results[0].error_code, CLUSTER_DENIED),
    Row(32, 4, {"resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}]},
        (Res.TOPIC, "t", Op.DESCRIBE_CONFIGS), lambda r: r.results[0].error_code, TOPIC_DENIED),
    Row(32, 4, {"resources": [{"resource_type": 4, "resource_name": "", "configuration_keys": None}]},
        (Res.CLUSTER, CLUSTER, Op.DESCRIBE_CONFIGS), lambda r: r.results[0].error_code, CLUSTER_DENIED,
        label="broker"),
    Row(33, 2, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": []}]},
        (Res.TOPIC, "t", Op.ALTER_CONFIGS), lambda r: r.responses[0].error_code, TOPIC_DENIED),
    Row(36, 2, {"auth_bytes": b""}, None, lambda r: r.error_code),
    Row(37, 3, {"topics": [{"name": "t", "count": 2, "assignments": None}], "timeout": 5000},
        (Res.TOPIC, "t", Op.ALTER), lambda r: r.results[0].error_code, TOPIC_DENIED),
    Row(42, 2, {"groups_names": ["g"]}, (Res.GROUP, "g", Op.DELETE), lambda r: r.results[0].error_code,
        GROUP_DENIED),
    Row(43, 2, {"election_type": 0, "timeout": 5000, "topic_partitions": [{"topic": "t", "partitions": [0]}]},
        (Res.CLUSTER, CLUSTER, Op.ALTER), lambda r: r.error_code, CLUSTER_DENIED),
    Row(45, 1, {"timeout": 5000, "topics": [{"name": "t", "partitions": [{"partition_index": 0, "replicas": [1]}]}]},
        (Res.CLUSTER, CLUSTER, Op.ALTER), lambda r: r.error_code, CLUSTER_DENIED),
    Row(46, 0, {"timeout": 5000, "topics": None}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE), lambda r: r.error_code,
        CLUSTER_DENIED),
    Row(75, 0, {"topics": [{"name": "t"}], "response_partition_limit": 10, "cursor": None},
        (Res.TOPIC, "t", Op.DESCRIBE), lambda r: r.topics[0].error_code, TOPIC_DENIED),
    Row(55, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]},
        (Res.CLUSTER, CLUSTER, Op.DESCRIBE), lambda r: r.error_code, CLUSTER_DENIED),
    Row(44, 1, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": []}]},
        (Res.TOPIC, "t", Op.ALTER_CONFIGS), lambda r: r.responses[0].error_code, TOPIC_DENIED),
    Row(44, 1, {"resources": [{"resource_type": 4, "resource_name": "", "configs": []}]},
        (Res.CLUSTER, CLUSTER, Op.ALTER_CONFIGS), lambda r: r.responses[0].error_code, CLUSTER_DENIED,
        label="broker"),
    Row(47, 0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        (Res.GROUP, "g", Op.DELETE), lambda r: r.error_code, GROUP_DENIED, others=((Res.TOPIC, "t", Op.READ),)),
    Row(47, 0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        (Res.TOPIC, "t", Op.READ), lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED,
        others=((Res.GROUP, "g", Op.DELETE),), label="topic"),
    Row(48, 1, {"components": [], "strict": False}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE_CONFIGS),
        lambda r: r.error_code, CLUSTER_DENIED),
    Row(49, 1, {"entries": [{"entity": [{"entity_type": "user", "entity_name": "x"}],
                             "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}]},
        (Res.CLUSTER, CLUSTER, Op.ALTER_CONFIGS), lambda r: r.entries[0].error_code, CLUSTER_DENIED),
    Row(50, 0, {"users": None}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE), lambda r: r.error_code, CLUSTER_DENIED),
    Row(51, 0, {"deletions": [{"name": "ghost", "mechanism": 1}], "upsertions": []}, (Res.CLUSTER, CLUSTER, Op.ALTER),
        lambda r: r.results[0].error_code, CLUSTER_DENIED),
    # DescribeCluster refuses nobody; KIP-430 tells the principal what it may do
    Row(60, 1, {"include_cluster_authorized_operations": True}, (Res.CLUSTER, CLUSTER, Op.DESCRIBE),
        lambda r: ErrorCode.none if r.cluster_authorized_operations & (1 << Op.DESCRIBE) else CLUSTER_DENIED,
        CLUSTER_DENIED),
    Row(61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]}, (Res.TOPIC, "t", Op.READ),
        lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    # an id without a transaction: kio cannot decode the start time -1 of tx (Empty)
    Row(65, 0, {"transactional_ids": ["tx2"]}, (Res.TRANSACTIONAL_ID, "tx2", Op.DESCRIBE),
        lambda r: r.transaction_states[0].error_code, TXN_DENIED),
    Row(66, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1},
        (Res.TRANSACTIONAL_ID, "tx", Op.DESCRIBE),
        _listed("tx", lambda r: [s.transactional_id for s in r.transaction_states], TXN_DENIED), TXN_DENIED),
    *[Row(68, 1, {"group_id": "cg", "member_id": "m-00000000000000000001", "member_epoch": 0,
                  "rebalance_timeout": 10000, "subscribed_topic_names": ["t"], "server_assignor": None,
                  "topic_partitions": []}, acl, lambda r: r.error_code, denied, others=(other,), label=label)
      for acl, denied, other, label in [
          ((Res.GROUP, "cg", Op.READ), GROUP_DENIED, (Res.TOPIC, "t", Op.DESCRIBE), ""),
          ((Res.TOPIC, "t", Op.DESCRIBE), TOPIC_DENIED, (Res.GROUP, "cg", Op.READ), "topic")]],
    Row(69, 1, {"group_ids": ["g"]}, (Res.GROUP, "g", Op.DESCRIBE), lambda r: r.groups[0].error_code, GROUP_DENIED),
]


def _id(row: Row) -> str:
    return f"{HANDLERS[row.api_key].name}{'-' + row.label if row.label else ''}"


def acl(h: BlockingHarness, principal: str, resource: Acl, *, pattern: PatternType = PatternType.LITERAL,
        permission: AclPermissionType = AclPermissionType.ALLOW) -> None:
    kind, name, op = resource
    h.run(h.broker.metadata.add_acls([AccessControlEntryRecord(
        id=uuid.uuid4(), resource_type=kind, resource_name=name, pattern_type=pattern, principal=principal,
        host="*", operation=op, permission_type=permission)]))


def as_principal(h: BlockingHarness, principal: str, api_key: int, version: int, request: dict[str, Any]) -> Any:
    h.connection.principal = principal
    return h.call(api_key, version, request)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[BlockingHarness]:
    """A broker with the authorizer on, topic ``t``, group ``g`` (known by a commit) and an
    ongoing transactional id ``tx``, all made by the super user ``admin``."""
    settings = {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": ADMIN}
    with BlockingHarness(tmp_path / "secured", settings=settings) as h:
        h.create_topic("t")
        assert as_principal(h, ADMIN, 8, 8, {"group_id": "g", "generation_id_or_member_epoch": -1,
                                             "topics": T_PART}).topics[0].partitions[0].error_code == 0
        assert as_principal(h, ADMIN, 22, 4, {"transactional_id": "tx", "transaction_timeout": 60000,
                                              "producer_id": -1, "producer_epoch": -1}).error_code == 0
        yield h


def test_every_registered_api_has_a_row() -> None:
    assert set(HANDLERS) - {r.api_key for r in ROWS} == set()


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_an_api_serves_exactly_the_principal_with_the_acl_kafka_requires(secured: BlockingHarness, row: Row) -> None:
    for other in row.others:
        acl(secured, ALLOWED, other)
        acl(secured, DENIED, other)
    if row.acl is not None:
        acl(secured, ALLOWED, row.acl)
        refused = row.code(as_principal(secured, DENIED, row.api_key, row.version, row.request))
        assert refused == row.denied
    served = row.code(as_principal(secured, ALLOWED, row.api_key, row.version, row.request))
    assert served not in AUTH_ERRORS


# patterns, DENY, super users ----------------------------------------------------------------

def metadata_code(h: BlockingHarness, principal: str, topic: str) -> int:
    return int(as_principal(h, principal, 3, 12, {"topics": [{"name": topic}]}).topics[0].error_code)


def test_a_prefixed_acl_covers_the_topics_it_prefixes(secured: BlockingHarness) -> None:
    secured.create_topic("orders-eu")
    acl(secured, ALLOWED, (Res.TOPIC, "orders-", Op.DESCRIBE), pattern=PatternType.PREFIXED)
    assert metadata_code(secured, ALLOWED, "orders-eu") == ErrorCode.none
    assert metadata_code(secured, ALLOWED, "t") == TOPIC_DENIED


def test_a_wildcard_acl_covers_every_topic_and_user_star_every_principal(secured: BlockingHarness) -> None:
    acl(secured, ALLOWED, (Res.TOPIC, "*", Op.DESCRIBE))
    assert metadata_code(secured, ALLOWED, "t") == ErrorCode.none
    assert metadata_code(secured, DENIED, "t") == TOPIC_DENIED
    acl(secured, "User:*", (Res.TOPIC, "t", Op.DESCRIBE))
    assert metadata_code(secured, DENIED, "t") == ErrorCode.none


def test_deny_wins_over_allow(secured: BlockingHarness) -> None:
    acl(secured, ALLOWED, (Res.TOPIC, "*", Op.ALL))
    acl(secured, ALLOWED, (Res.TOPIC, "t", Op.DESCRIBE), permission=AclPermissionType.DENY)
    assert metadata_code(secured, ALLOWED, "t") == TOPIC_DENIED
    listed = as_principal(secured, ALLOWED, 3, 12, {"topics": None})
    assert "t" not in [t.name for t in listed.topics]


def test_an_idempotent_producer_is_refused_when_a_deny_covers_its_only_write(secured: BlockingHarness) -> None:
    acl(secured, ALLOWED, (Res.TOPIC, "t", Op.WRITE))
    acl(secured, ALLOWED, (Res.TOPIC, "*", Op.WRITE), permission=AclPermissionType.DENY)
    init = as_principal(secured, ALLOWED, 22, 4, {"transactional_id": None, "producer_id": -1, "producer_epoch": -1})
    assert init.error_code == CLUSTER_DENIED


def test_a_super_user_is_served_without_any_acl(secured: BlockingHarness) -> None:
    acl(secured, ADMIN, (Res.TOPIC, "t", Op.ALL), permission=AclPermissionType.DENY)
    assert metadata_code(secured, ADMIN, "t") == ErrorCode.none
    deleted = as_principal(secured, ADMIN, 20, 5, {"topic_names": ["t"], "timeout": 5000})
    assert deleted.responses[0].error_code == ErrorCode.none


def test_kip_430_operations_are_the_principals(secured: BlockingHarness) -> None:
    acl(secured, ALLOWED, (Res.TOPIC, "t", Op.READ))
    answer = as_principal(secured, ALLOWED, 3, 12, {"topics": [{"name": "t"}],
                                                    "include_topic_authorized_operations": True})
    assert answer.topics[0].topic_authorized_operations == (1 << Op.READ) | (1 << Op.DESCRIBE)
