"""ApiVersions (key 18), v0-4.

The ranges are computed from the handler registry. A version above 4 never reaches this
handler: the connection answers it with a v0 body and UNSUPPORTED_VERSION (KIP-511).
The response header is always v0, even for the flexible v3+ bodies. From v3 the client names
its software; a name or version that is not Kafka's pattern (letters, digits, ``-`` and ``.``,
starting and ending with a letter or digit) is INVALID_REQUEST with no ranges, as Kafka answers.
"""

from __future__ import annotations

import re
from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import api_version_ranges, handles


SOFTWARE_NAME_VERSION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


@handles(18, versions=range(0, 5))
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    valid = ctx.api_version < 3 or all(
        SOFTWARE_NAME_VERSION.fullmatch(value) for value in (request.client_software_name,
                                                             request.client_software_version))
    return {
        "error_code": 0 if valid else 42,  # INVALID_REQUEST
        "api_keys": api_version_ranges() if valid else (),
        "throttle_time": 0,
        "supported_features": (),
        "finalized_features_epoch": -1,
        "finalized_features": (),
        "zk_migration_ready": False,
    }
