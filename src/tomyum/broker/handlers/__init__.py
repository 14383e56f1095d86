"""One module per API area; each registers its handlers with ``@handles`` on import."""

from tomyum.broker.dispatch import HANDLERS, ApiHandler
from tomyum.broker.handlers import (  # noqa: F401
    acls,
    api_versions,
    configs,
    consumer_groups,
    fetch,
    group_admin,
    groups,
    list_offsets,
    log_dirs,
    metadata,
    offset_commits,
    produce,
    quotas,
    replicas,
    sasl,
    scram,
    topics,
    transactions,
)


def registry() -> dict[int, ApiHandler]:
    """Every handler, by API key (all registered once this package is imported)."""
    return HANDLERS
