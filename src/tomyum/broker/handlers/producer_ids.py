"""InitProducerId (key 22) v0-4, for idempotent producers.

Hands out a producer id never used before in this data directory, with epoch 0. Producers
with a ``transactional.id`` need the transaction coordinator, which is not built yet: they
get COORDINATOR_NOT_AVAILABLE. (librdkafka, kafka-python and the Java client enable
idempotence by default, so a bare producer calls this first.)
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import handles
from tomyum.errors import ErrorCode


@handles(22, versions=range(0, 5))
async def init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if request.transactional_id is not None:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available,
                "producer_id": -1, "producer_epoch": -1}
    producer_id = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if producer_id >= 0 and epoch >= 0:
        # KIP-360: an idempotent producer bumping its own epoch after an error
        return {"throttle_time": 0, "error_code": 0, "producer_id": producer_id,
                "producer_epoch": (epoch + 1) % 32767}
    return {"throttle_time": 0, "error_code": 0, "producer_id": ctx.broker.store.allocate_producer_id(),
            "producer_epoch": 0}
