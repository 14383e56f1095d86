"""One module per API area; each registers its handlers with ``@handles`` on import."""

from tomyum.broker.handlers import (  # noqa: F401
    api_versions,
    configs,
    consumer_groups,
    fetch,
    group_admin,
    groups,
    list_offsets,
    metadata,
    offset_commits,
    produce,
    topics,
    transactions,
)
