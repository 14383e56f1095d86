"""One module per API area; each registers its handlers with ``@handles`` on import."""

from tomyum.broker.handlers import (  # noqa: F401
    api_versions,
    configs,
    fetch,
    list_offsets,
    metadata,
    produce,
    producer_ids,
    topics,
)
