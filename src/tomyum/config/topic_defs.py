"""The topic config keys (Kafka's ``TopicConfig`` / ``LogConfig``) and their broker synonyms.

Each topic config declares the broker keys that supply its default, the one that wins first,
with the factor that converts their unit — Kafka's ``ServerTopicConfigSynonyms``. A topic's
value is its own override, else the first synonym that is set, converted, else the default
here. DescribeConfigs lists the same synonyms in the same order, so what a client reads is
what the broker applies.

Only the first synonym of a chain may change at run time (``log.retention.ms``, not
``log.retention.hours``), as in Kafka; a test holds the tables to that.
"""

from __future__ import annotations

from tomyum.config.broker_defs import (
    BOOLEAN,
    CLEANUP_POLICIES,
    COMPRESSION,
    DAY_MS,
    DOUBLE,
    INT,
    LIST,
    LONG,
    LONG_MAX,
    MEDIUM,
    MIN_SEGMENT_BYTES,
    STRING,
    TIMESTAMP_TYPES,
)
from tomyum.config.definition import ConfigDef, Synonym, at_least, between, defs, each_of, one_of

MINUTES_TO_MS = 60_000
HOURS_TO_MS = 3_600_000


def same(name: str) -> tuple[Synonym, ...]:
    """The broker key of the same name (``compression.type``)."""
    return (Synonym(name),)


TOPIC_CONFIGS = defs(
    ConfigDef("cleanup.policy", LIST, ["delete"], each_of(*CLEANUP_POLICIES), importance=MEDIUM,
              synonyms=(Synonym("log.cleanup.policy"),),
              doc="What happens to old segments: delete removes them past retention.ms or retention.bytes, "
              "compact keeps the latest record of each key; both may be given."),
    ConfigDef("compression.type", STRING, "producer", one_of(*COMPRESSION), importance=MEDIUM,
              synonyms=same("compression.type"),
              doc="The codec batches are stored with; producer keeps each batch as the producer compressed it. "
              "tomyum always does that: another codec is accepted and not applied."),
    ConfigDef("delete.retention.ms", LONG, DAY_MS, at_least(0),
              synonyms=(Synonym("log.cleaner.delete.retention.ms"),),
              doc="On a compacted topic, how long a tombstone (a record with a null value) and a transaction's "
              "markers are kept after cleaning, so that consumers behind still see the delete."),
    ConfigDef("file.delete.delay.ms", LONG, 60000, at_least(0), implemented=False,
              synonyms=(Synonym("log.segment.delete.delay.ms"),),
              doc="How long a deleted segment's files are kept before they are removed from disk."),
    ConfigDef("flush.messages", LONG, LONG_MAX, at_least(1), synonyms=(Synonym("log.flush.interval.messages"),),
              doc="Force an fsync once this many records written with acks=0/1 are unflushed. With neither "
              "this nor flush.ms set, tomyum flushes at once (group commit)."),
    ConfigDef("flush.ms", LONG, LONG_MAX, at_least(0),
              synonyms=(Synonym("log.flush.interval.ms"), Synonym("log.flush.scheduler.interval.ms")),
              doc="Force an fsync once records written with acks=0/1 have waited this long (at most a day "
              "in tomyum). acks=all is always answered after an fsync."),
    ConfigDef("index.interval.bytes", INT, 4096, at_least(0), synonyms=(Synonym("log.index.interval.bytes"),),
              doc="How many bytes of batches lie between two entries of the offset and time indexes; smaller "
              "means larger indexes and shorter scans."),
    ConfigDef("max.compaction.lag.ms", LONG, LONG_MAX, at_least(1),
              synonyms=(Synonym("log.cleaner.max.compaction.lag.ms"),),
              doc="The longest a record may stay uncompacted; the active segment is rolled in time for it."),
    ConfigDef("max.message.bytes", INT, 1048588, at_least(0), importance=MEDIUM,
              synonyms=(Synonym("message.max.bytes"),),
              doc="The largest record batch (after compression) a producer may append to the topic."),
    ConfigDef("message.timestamp.type", STRING, "CreateTime", one_of(*TIMESTAMP_TYPES),
              synonyms=(Synonym("log.message.timestamp.type"),),
              doc="CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's "
              "clock when it appends them."),
    ConfigDef("message.timestamp.before.max.ms", LONG, LONG_MAX, at_least(0),
              synonyms=(Synonym("log.message.timestamp.before.max.ms"),),
              doc="With CreateTime, how far in the past a batch's timestamp may be before the batch is refused."),
    ConfigDef("message.timestamp.after.max.ms", LONG, 3600000, at_least(0),
              synonyms=(Synonym("log.message.timestamp.after.max.ms"),),
              doc="With CreateTime, how far in the future a batch's timestamp may be before the batch is refused."),
    ConfigDef("message.timestamp.difference.max.ms", LONG, LONG_MAX, at_least(0), implemented=False,
              doc="The older, symmetric form of message.timestamp.before.max.ms and .after.max.ms (removed in "
              "Kafka 4.0)."),
    ConfigDef("min.cleanable.dirty.ratio", DOUBLE, 0.5, between(0, 1),
              synonyms=(Synonym("log.cleaner.min.cleanable.ratio"),),
              doc="The cleaner compacts a log once this share of it has not been cleaned yet."),
    ConfigDef("min.compaction.lag.ms", LONG, 0, at_least(0), synonyms=(Synonym("log.cleaner.min.compaction.lag.ms"),),
              doc="The shortest time a record stays uncompacted, so consumers can read every value for a while."),
    ConfigDef("min.insync.replicas", INT, 1, at_least(1), synonyms=same("min.insync.replicas"),
              doc="The fewest in-sync replicas an acks=all produce needs; a single broker is one replica."),
    ConfigDef("preallocate", BOOLEAN, False, implemented=False, synonyms=(Synonym("log.preallocate"),),
              doc="Allocate a new segment's file at its full size when it is created."),
    ConfigDef("retention.bytes", LONG, -1, synonyms=(Synonym("log.retention.bytes"),),
              doc="With the delete policy, the most bytes a partition keeps before its oldest segments are "
              "deleted (-1: no limit)."),
    ConfigDef("retention.ms", LONG, 7 * DAY_MS, at_least(-1), importance=MEDIUM,
              synonyms=(Synonym("log.retention.ms"), Synonym("log.retention.minutes", MINUTES_TO_MS),
                        Synonym("log.retention.hours", HOURS_TO_MS)),
              doc="With the delete policy, how long a segment is kept after its newest record's timestamp "
              "(-1: no limit)."),
    ConfigDef("segment.bytes", INT, 1073741824, at_least(MIN_SEGMENT_BYTES), importance=MEDIUM,
              synonyms=(Synonym("log.segment.bytes"),),
              doc="The size at which the active segment is rolled; retention and compaction work a segment at "
              "a time."),
    ConfigDef("internal.segment.bytes", INT, None, at_least(14),
              doc="Kafka 4's override of segment.bytes below its 1 MiB minimum, for tests (KIP-1030); not "
              "listed by DescribeConfigs."),
    ConfigDef("segment.index.bytes", INT, 10485760, at_least(4), implemented=False,
              synonyms=(Synonym("log.index.size.max.bytes"),),
              doc="The size of a segment's offset and time index files; tomyum grows them as needed."),
    ConfigDef("segment.jitter.ms", LONG, 0, at_least(0), implemented=False,
              synonyms=(Synonym("log.roll.jitter.ms"), Synonym("log.roll.jitter.hours", HOURS_TO_MS)),
              doc="A random amount up to this much is taken off segment.ms per segment, so that many "
              "partitions do not roll at the same moment."),
    ConfigDef("segment.ms", LONG, 7 * DAY_MS, at_least(1), importance=MEDIUM,
              synonyms=(Synonym("log.roll.ms"), Synonym("log.roll.hours", HOURS_TO_MS)),
              doc="The age at which the active segment is rolled even if not full, so that retention and "
              "compaction can reach its records."),
    ConfigDef("unclean.leader.election.enable", BOOLEAN, False, synonyms=same("unclean.leader.election.enable"),
              doc="Whether a replica outside the ISR may become leader, losing records, when no in-sync one is left."),
    ConfigDef("message.downconversion.enable", BOOLEAN, True, implemented=False,
              doc="Whether old fetch versions get records converted to their format (removed in Kafka 4.0)."),
    ConfigDef("local.retention.ms", LONG, -2, implemented=False,
              doc="With tiered storage, how long segments stay on local disk (-2: retention.ms)."),
    ConfigDef("local.retention.bytes", LONG, -2, implemented=False,
              doc="With tiered storage, how many bytes stay on local disk (-2: retention.bytes)."),
    ConfigDef("remote.storage.enable", BOOLEAN, False, implemented=False,
              doc="Copy the topic's segments to tiered (remote) storage."),
    ConfigDef("follower.replication.throttled.replicas", LIST, [], implemented=False,
              doc="Replicas whose follower fetches are throttled, as partition:broker pairs or *."),
    ConfigDef("leader.replication.throttled.replicas", LIST, [], implemented=False,
              doc="Replicas whose leader-side replication is throttled, as partition:broker pairs or *."),
)
