"""DescribeClientQuotas (key 48) v0-1, AlterClientQuotas (key 49) v0-1 (KIP-546).

Quotas are set per entity — a ``user``, a ``client-id``, both, or an ``ip`` — or for their
defaults (a null name), and kept as ClientQuotaRecords in the metadata log, durable before
they are answered. Keys as Kafka's: ``producer_byte_rate``, ``consumer_byte_rate``,
``request_percentage``, ``controller_mutation_rate`` for users and client ids,
``connection_creation_rate`` for IPs. An entry of AlterClientQuotas is refused whole with
INVALID_REQUEST if an entity type or key is unknown or a value is not a positive number.
With an authorizer: DescribeClientQuotas needs DESCRIBE_CONFIGS on the cluster,
AlterClientQuotas ALTER_CONFIGS (CLUSTER_AUTHORIZATION_FAILED), as in Kafka.
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import CLUSTER, RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode, KafkaError
from tomyum.metadata.records import ClientQuotaRecord, EntityData
from tomyum.security.acls import AclOperation, ResourceType

USER_KEYS = frozenset({"producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"})
KEYS = {"user": USER_KEYS, "client-id": USER_KEYS, "ip": frozenset({"connection_creation_rate"})}
#: keys whose values are whole numbers (Kafka's LONG quota configs)
LONG_KEYS = frozenset({"producer_byte_rate", "consumer_byte_rate", "connection_creation_rate"})
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2

Entity = tuple[tuple[str, str | None], ...]


def _entity(parts: Any) -> Entity:
    entity = tuple(sorted((p.entity_type, p.entity_name) for p in parts))
    types = [t for t, _ in entity]
    if not entity or len(set(types)) != len(types):
        raise KafkaError("an entity names each of its types once", ErrorCode.invalid_request)
    unknown = [t for t in types if t not in KEYS]
    if unknown:
        raise KafkaError(f"unknown quota entity type {unknown[0]!r} (user, client-id, ip)", ErrorCode.invalid_request)
    if "ip" in types and len(types) > 1:
        raise KafkaError("an ip quota entity cannot be combined with other entity types", ErrorCode.invalid_request)
    return entity


def _changes(entity: Entity, ops: Any) -> list[ClientQuotaRecord]:
    allowed = KEYS[entity[0][0]]
    data = tuple(EntityData(entity_type=t, entity_name=n) for t, n in entity)
    out = []
    for op in ops:
        if op.key not in allowed:
            raise KafkaError(f"{op.key} is not a quota of {'/'.join(t for t, _ in entity)} entities",
                             ErrorCode.invalid_request)
        if not op.remove and (op.value <= 0 or (op.key in LONG_KEYS and op.value != int(op.value))):
            raise KafkaError(f"invalid value {op.value} for quota {op.key}: a positive "
                             f"{'whole ' if op.key in LONG_KEYS else ''}number", ErrorCode.invalid_request)
        out.append(ClientQuotaRecord(entity=data, key=op.key, value=float(op.value), remove=bool(op.remove)))
    return out


@handles(49, versions=range(0, 2))
async def alter_client_quotas(ctx: RequestContext, request: Any) -> dict[str, Any]:
    entries, changes = [], []
    allowed = ctx.authorized(AclOperation.ALTER_CONFIGS, ResourceType.CLUSTER, CLUSTER)
    for e in request.entries:
        result: dict[str, Any] = {"error_code": 0, "error_message": None,
                                  "entity": [{"entity_type": p.entity_type, "entity_name": p.entity_name}
                                             for p in e.entity]}
        try:
            if not allowed:
                raise KafkaError(code=ErrorCode.cluster_authorization_failed)
            changes += _changes(_entity(e.entity), e.ops)
        except KafkaError as err:
            result["error_code"], result["error_message"] = err.code, str(err)
        entries.append(result)
    if not request.validate_only:
        await ctx.broker.metadata.alter_client_quotas(changes)
    return {"throttle_time": 0, "entries": entries}


def _matches(entity: Entity, components: Any, strict: bool) -> bool:
    names = dict(entity)
    for c in components:
        if c.entity_type not in names:
            return False
        name = names[c.entity_type]
        if c.match_type == MATCH_EXACT and name != c.match:
            return False
        if c.match_type == MATCH_DEFAULT and name is not None:
            return False
        if c.match_type == MATCH_SPECIFIED and name is None:
            return False
    return not strict or {c.entity_type for c in components} == set(names)


@handles(48, versions=range(0, 2))
async def describe_client_quotas(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.authorized(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "entries": None,
                "error_message": None}
    bad = [c.entity_type for c in request.components if c.entity_type not in KEYS]
    if bad:  # Kafka's ClientQuotaManager: UnsupportedVersionException
        return {"throttle_time": 0, "error_code": ErrorCode.unsupported_version, "entries": None,
                "error_message": f"Custom entity type '{bad[0]}' not supported"}
    if len({c.entity_type for c in request.components}) != len(request.components):
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "entries": None,
                "error_message": "invalid entity types in the filter: a type named twice"}
    entries = [{"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
                "values": [{"key": k, "value": v} for k, v in sorted(values.items())]}
               for entity, values in ctx.broker.metadata.image.quotas.items()
               if _matches(entity, request.components, request.strict)]
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "entries": entries}
