"""ApiVersions (key 18), v0-4.

The ranges are computed from the handler registry. A version above 4 never reaches this
handler: the connection answers it with a v0 body and UNSUPPORTED_VERSION (KIP-511).
The response header is always v0, even for the flexible v3+ bodies.
"""

from __future__ import annotations

from typing import Any

from tomyum.broker.context import RequestContext
from tomyum.broker.dispatch import api_version_ranges, handles


@handles(18, versions=range(0, 5))
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {
        "error_code": 0,
        "api_keys": api_version_ranges(),
        "throttle_time": 0,
        "supported_features": (),
        "finalized_features_epoch": -1,
        "finalized_features": (),
        "zk_migration_ready": False,
    }
