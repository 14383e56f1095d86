"""Cluster metadata records, in the shape of Kafka's KRaft records.

Each record is a frozen dataclass named and shaped as Kafka's (``metadata/src/main/resources/
common/metadata/*.json``): same fields, snake_case here, and the same api keys. On disk a
record is the value of a record in a v2 record batch (see ``FORMAT.md`` beside this file),
written as the JSON Kafka's own tools print for a metadata record::

    {"type": "TOPIC_RECORD", "version": 0, "data": {"name": "orders", "topicId": "..."}}

Topic ids are written as Kafka writes them in text (URL-safe base64, no padding). Pure: no
I/O. :func:`decode` raises :class:`MetadataRecordError` for anything it cannot read.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints


class MetadataRecordError(ValueError):
    """A metadata record that cannot be decoded (unknown type, missing or bad field)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicRecord:
    API_KEY: ClassVar[int] = 2
    TYPE: ClassVar[str] = "TOPIC_RECORD"
    name: str
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionRecord:
    API_KEY: ClassVar[int] = 3
    TYPE: ClassVar[str] = "PARTITION_RECORD"
    partition_id: int
    topic_id: uuid.UUID
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRecord:
    """``value`` None deletes the key. Resource types are Kafka's ConfigResource types."""

    API_KEY: ClassVar[int] = 4
    TYPE: ClassVar[str] = "CONFIG_RECORD"
    resource_type: int
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionChangeRecord:
    """A change to one partition; a field left at its default did not change."""

    API_KEY: ClassVar[int] = 5
    TYPE: ClassVar[str] = "PARTITION_CHANGE_RECORD"
    partition_id: int
    topic_id: uuid.UUID
    isr: tuple[int, ...] | None = None
    leader: int = -2  # Kafka's NO_LEADER_CHANGE
    replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveTopicRecord:
    API_KEY: ClassVar[int] = 9
    TYPE: ClassVar[str] = "REMOVE_TOPIC_RECORD"
    topic_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureLevelRecord:
    API_KEY: ClassVar[int] = 12
    TYPE: ClassVar[str] = "FEATURE_LEVEL_RECORD"
    name: str
    feature_level: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerIdsRecord:
    """``next_producer_id``: the first id of the next block; every id below it is handed out."""

    API_KEY: ClassVar[int] = 15
    TYPE: ClassVar[str] = "PRODUCER_IDS_RECORD"
    broker_id: int
    broker_epoch: int
    next_producer_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserScramCredentialRecord:
    """A SCRAM credential as Kafka stores it: never the password, only what verifies it."""

    API_KEY: ClassVar[int] = 11
    TYPE: ClassVar[str] = "USER_SCRAM_CREDENTIAL_RECORD"
    name: str
    mechanism: int  # 1 SCRAM-SHA-256, 2 SCRAM-SHA-512 (Kafka's ScramMechanism)
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveUserScramCredentialRecord:
    API_KEY: ClassVar[int] = 22
    TYPE: ClassVar[str] = "REMOVE_USER_SCRAM_CREDENTIAL_RECORD"
    name: str
    mechanism: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessControlEntryRecord:
    """One ACL binding; codes are Kafka's (ResourceType, PatternType, AclOperation, AclPermissionType)."""

    API_KEY: ClassVar[int] = 18
    TYPE: ClassVar[str] = "ACCESS_CONTROL_ENTRY_RECORD"
    id: uuid.UUID
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveAccessControlEntryRecord:
    API_KEY: ClassVar[int] = 19
    TYPE: ClassVar[str] = "REMOVE_ACCESS_CONTROL_ENTRY_RECORD"
    id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityData:
    """One part of a quota entity: ``user``, ``client-id`` or ``ip``; a null name is the default."""

    entity_type: str
    entity_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientQuotaRecord:
    API_KEY: ClassVar[int] = 14
    TYPE: ClassVar[str] = "CLIENT_QUOTA_RECORD"
    entity: tuple[EntityData, ...]
    key: str
    value: float
    remove: bool = False


MetadataRecord = (TopicRecord | PartitionRecord | ConfigRecord | PartitionChangeRecord | RemoveTopicRecord
                  | FeatureLevelRecord | ProducerIdsRecord | UserScramCredentialRecord
                  | RemoveUserScramCredentialRecord | AccessControlEntryRecord | RemoveAccessControlEntryRecord
                  | ClientQuotaRecord)

#: Kafka's record types this broker reads. Room is kept for DelegationTokenRecord (10) and
#: friends: add the class here.
RECORD_TYPES: dict[str, type[Any]] = {cls.TYPE: cls for cls in (
    TopicRecord, PartitionRecord, ConfigRecord, PartitionChangeRecord, RemoveTopicRecord, FeatureLevelRecord,
    ProducerIdsRecord, UserScramCredentialRecord, RemoveUserScramCredentialRecord, AccessControlEntryRecord,
    RemoveAccessControlEntryRecord, ClientQuotaRecord)}

#: resource types of ConfigRecord (Kafka's ConfigResource.Type)
TOPIC_RESOURCE, BROKER_RESOURCE, GROUP_RESOURCE = 2, 4, 32


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def short_uuid(u: uuid.UUID) -> str:
    """A uuid as Kafka writes it in text: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(u.bytes).decode().rstrip("=")


def parse_short_uuid(text: str) -> uuid.UUID:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 16:
        raise ValueError(f"{text!r} is not a topic id")
    return uuid.UUID(bytes=raw)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = {f.name: get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _out(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return short_uuid(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, tuple):
        return [_out(x) for x in value]
    if dataclasses.is_dataclass(value):
        return _fields_out(value)
    return value


def _fields_out(obj: Any) -> dict[str, Any]:
    return {_camel(f.name): _out(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def encode(record: MetadataRecord) -> bytes:
    return json.dumps({"type": record.TYPE, "version": 0, "data": _fields_out(record)}, separators=(",", ":")).encode()


def _in(hint: Any, value: Any, what: str) -> Any:
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is uuid.UUID:
        if type(value) is not str:
            raise MetadataRecordError(f"{what} is not a topic id")
        return parse_short_uuid(value)
    if hint is bytes:
        if type(value) is not str:
            raise MetadataRecordError(f"{what} is not base64 bytes")
        return base64.b64decode(value, validate=True)
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            raise MetadataRecordError(f"{what} is not a list")
        return tuple(_in(item, x, f"{what}[]") for x in value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise MetadataRecordError(f"{what} is not an object")
        return _fields_in(hint, value, what)
    if hint is float and type(value) in (int, float):
        return float(value)
    if type(value) is not hint:
        raise MetadataRecordError(f"{what} is not a{'n integer' if hint is int else ' string'}")
    return value


def decode(raw: bytes) -> MetadataRecord:
    try:
        doc = json.loads(raw)
        cls = RECORD_TYPES.get(doc["type"])
        data = doc["data"]
    except (ValueError, KeyError, TypeError) as e:
        raise MetadataRecordError(f"unreadable metadata record: {e}") from None
    if cls is None:
        raise MetadataRecordError(f"unknown metadata record type {doc['type']!r} (written by a newer tomyum?)")
    return _fields_in(cls, data, cls.TYPE)  # type: ignore[no-any-return]


def _fields_in(cls: Any, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise MetadataRecordError(f"{what} is not an object")
    kwargs = {}
    for name, hint in _hints(cls).items():
        key = _camel(name)
        if key not in data:
            field = next(f for f in dataclasses.fields(cls) if f.name == name)
            if field.default is dataclasses.MISSING:
                raise MetadataRecordError(f"{what} has no {key}")
            continue
        try:
            kwargs[name] = _in(hint, data[key], f"{what}.{key}")
        except ValueError as e:
            raise MetadataRecordError(str(e)) from None
    return cls(**kwargs)
