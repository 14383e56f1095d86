"""A word count on tomyum.streams with exactly_once_v2, run as a process by
test_streams_runtime.py with ``KafkaStreams.run`` until SIGTERM (clean shutdown) or SIGKILL.

    python streams_app.py BOOTSTRAP TEXT_TOPIC COUNTS_TOPIC APPLICATION_ID STATE_DIR
"""

from __future__ import annotations

import logging
import sys

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig
from tomyum.streams.runtime import KafkaStreams


def main() -> int:
    bootstrap, text, counts, app_id, state_dir = sys.argv[1:6]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    builder = StreamsBuilder()
    (builder.stream(text, value_serde=Serdes.string())
        .flat_map_values(str.split)
        .group_by(lambda key, word: word, key_serde=Serdes.string(), value_serde=Serdes.string())
        .count(Materialized(store_name="counts", store_type="persistent"))
        .to_stream()
        .to(counts, value_serde=Serdes.long()))
    app = KafkaStreams(builder.build(), StreamsConfig(application_id=app_id, state_dir=state_dir),
                       bootstrap_servers=bootstrap, processing_guarantee="exactly_once_v2", commit_interval_ms=100,
                       # a killed instance's partitions move after 6 s rather than Kafka's default 45 s
                       client_config={"consumer.session.timeout.ms": 6000, "consumer.heartbeat.interval.ms": 1000})
    # "RUNNING 0_0,1_0": the state, and the tasks this instance runs (read by the tests)
    app.set_state_listener(lambda new, old: print(new.value, ",".join(sorted(app.tasks)), flush=True))
    return app.run()  # until SIGINT or SIGTERM, then a clean close: 0


if __name__ == "__main__":
    sys.exit(main())
