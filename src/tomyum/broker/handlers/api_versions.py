"""ApiVersions (key 18), v0-4.

The ranges are computed from the handler registry. A version above 4 never reaches this
handler: the connection answers it with a v0 body and UNSUPPORTED_VERSION (KIP-511).
The response header is always v0, even for the flexible v3+ bodies. From v3 the client names
its software; a name or version that is not Kafka's pattern (letters, digits, ``-`` and ``.``,
starting and ending with a letter or digit) is INVALID_REQUEST with no ranges, as Kafka answers.

From v3 the answer also names the features (KIP-584) the broker supports, each a range of levels,
and the levels finalized for the cluster, which a client may act on: ``metadata.version`` as the
metadata log holds it, and ``group.version`` 1 (the KIP-848 consumer group protocol). A feature
tomyum does not implement is not listed (``transaction.version`` among them: clients use the
transaction protocol before KIP-890's second part), nor one finalized at level 0, as Kafka
leaves those out. The features' epoch is the metadata log's last offset.
"""

from __future__ import annotations

import re
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import api_version_ranges, handles
from tomyum.metadata.controller import METADATA_VERSION


SOFTWARE_NAME_VERSION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")
#: feature -> (lowest, highest) level this broker supports
SUPPORTED_FEATURES = {"metadata.version": (METADATA_VERSION, METADATA_VERSION), "group.version": (0, 1)}
#: the levels tomyum runs at for the features its metadata log does not record
FIXED_LEVELS = {"group.version": 1}


@handles(18, versions=range(0, 5))
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    valid = ctx.api_version < 3 or all(
        SOFTWARE_NAME_VERSION.fullmatch(value) for value in (request.client_software_name,
                                                             request.client_software_version))
    features = ctx.broker.metadata.image.features
    finalized = {name: level for name, level in (FIXED_LEVELS | features).items() if level > 0}
    return {
        "error_code": 0 if valid else 42,  # INVALID_REQUEST
        "api_keys": api_version_ranges() if valid else (),
        "throttle_time": 0,
        "supported_features": [{"name": name, "min_version": low, "max_version": high}
                               for name, (low, high) in SUPPORTED_FEATURES.items()] if valid else (),
        "finalized_features_epoch": ctx.broker.metadata.log.next_offset - 1 if valid else -1,
        "finalized_features": [{"name": name, "min_version_level": level, "max_version_level": level}
                               for name, level in finalized.items()] if valid else (),
        "zk_migration_ready": False,
    }
