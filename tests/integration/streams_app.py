"""A word count on tomyum.streams with exactly_once_v2, run as a process by
test_streams_runtime.py with ``KafkaStreams.run`` until SIGTERM (clean shutdown) or SIGKILL.

    python streams_app.py BOOTSTRAP TEXT_TOPIC COUNTS_TOPIC APPLICATION_ID STATE_DIR
        [NUM_STANDBY_REPLICAS [GUARANTEE [TOPOLOGY]]]

TOPOLOGY ``count`` (the default) counts words in a persistent store, ``count-in-memory`` in an
in-memory one; ``final`` counts them per 10-second tumbling
window (no grace) and writes each window's final count once, ``<word>@<window start>``, through
a suppression named ``final`` (test_streams_suppress_live.py).

Besides its state lines it prints what it restores (test_streams_standby_live.py reads them):
``RESTORE-START <changelog> <partition> <store> <from offset> <to offset>`` as a changelog
partition's restore begins, ``RESTORE-END <changelog> <partition> <store> <records> <sum of the
batches' records>`` as it ends, ``RESTORED <task> <store> <records>`` once a store is restored;
and what its standby tasks do (its StandbyUpdateListener): ``STANDBY-START <changelog> <partition>
<store> <offset>``, ``STANDBY-BATCH <changelog> <partition> <store> <task> <batch end offset>
<records> <end offset>``, ``STANDBY-SUSPENDED <changelog> <partition> <store> <store offset> <end
offset> <reason>``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tomyum.streams import Materialized, Serdes, StreamsBuilder, StreamsConfig, Suppressed, TimeWindows
from tomyum.streams.processor import StandbyUpdateListener, StateRestoreListener, SuspendReason
from tomyum.streams.runtime import KafkaStreams


class PrintRestores(StateRestoreListener):
    def __init__(self) -> None:
        self.batches: dict[tuple[str, int], int] = {}

    def on_batch_restored(self, topic_partition: Any, store_name: str, batch_end_offset: int,
                          num_restored: int) -> None:
        key = (topic_partition.topic, topic_partition.partition)
        self.batches[key] = self.batches.get(key, 0) + num_restored

    def on_restore_end(self, topic_partition: Any, store_name: str, total_restored: int) -> None:
        batches = self.batches.pop((topic_partition.topic, topic_partition.partition), 0)
        print("RESTORE-END", topic_partition.topic, topic_partition.partition, store_name, total_restored, batches,
              flush=True)

    def on_restore_start(self, topic_partition: Any, store_name: str, starting_offset: int,
                         ending_offset: int) -> None:
        print("RESTORE-START", topic_partition.topic, topic_partition.partition, store_name, starting_offset,
              ending_offset, flush=True)


class PrintStandbyUpdates(StandbyUpdateListener):
    def on_update_start(self, topic_partition: Any, store_name: str, starting_offset: int) -> None:
        print("STANDBY-START", topic_partition.topic, topic_partition.partition, store_name, starting_offset,
              flush=True)

    def on_batch_loaded(self, topic_partition: Any, store_name: str, task_id: str, batch_end_offset: int,
                        batch_size: int, current_end_offset: int) -> None:
        print("STANDBY-BATCH", topic_partition.topic, topic_partition.partition, store_name, task_id,
              batch_end_offset, batch_size, current_end_offset, flush=True)

    def on_update_suspended(self, topic_partition: Any, store_name: str, store_offset: int, current_end_offset: int,
                            reason: SuspendReason) -> None:
        print("STANDBY-SUSPENDED", topic_partition.topic, topic_partition.partition, store_name, store_offset,
              current_end_offset, reason.value, flush=True)


def main() -> int:
    bootstrap, text, counts, app_id, state_dir = sys.argv[1:6]
    standbys = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    guarantee = sys.argv[7] if len(sys.argv) > 7 else "exactly_once_v2"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    topology = sys.argv[8] if len(sys.argv) > 8 else "count"
    builder = StreamsBuilder()
    words = (builder.stream(text, value_serde=Serdes.string())
             .flat_map_values(str.split)
             .group_by(lambda key, word: word, key_serde=Serdes.string(), value_serde=Serdes.string()))
    if topology == "final":
        (words.windowed_by(TimeWindows.of_size_with_no_grace(10_000))
            .count(Materialized(store_name="counts", store_type="persistent"))
            .suppress(Suppressed.until_window_closes(), name="final")
            .to_stream()
            .map(lambda w, n: (f"{w.key}@{w.window.start_ms}", n))
            .to(counts, key_serde=Serdes.string(), value_serde=Serdes.long()))
    else:
        store_type = "in_memory" if topology == "count-in-memory" else "persistent"
        (words.count(Materialized(store_name="counts", store_type=store_type))
            .to_stream()
            .to(counts, value_serde=Serdes.long()))
    app = KafkaStreams(builder.build(), StreamsConfig(application_id=app_id, state_dir=state_dir),
                       bootstrap_servers=bootstrap, processing_guarantee=guarantee, commit_interval_ms=100,
                       num_standby_replicas=standbys,
                       # a killed instance's partitions move after 6 s rather than Kafka's default 45 s
                       client_config={"consumer.session.timeout.ms": 6000, "consumer.heartbeat.interval.ms": 1000})
    # "RUNNING 0_0,1_0": the state, and the tasks this instance runs (read by the tests)
    app.set_state_listener(lambda new, old: print(new.value, ",".join(sorted(app.tasks)), flush=True))
    app.set_global_state_restore_listener(PrintRestores())
    app.set_standby_update_listener(PrintStandbyUpdates())
    app.set_restore_listener(lambda task, store, n: print("RESTORED", task, store, n, flush=True))
    return app.run()  # until SIGINT or SIGTERM, then a clean close: 0


if __name__ == "__main__":
    sys.exit(main())
