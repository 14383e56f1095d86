"""The differences between tomyum and Apache Kafka 4.4 that the differential harness accepts, each
with its reason. Keep it short: a difference that is a tomyum bug is fixed (with a test in the
normal suite), not listed here. ``step`` and ``path`` are fnmatch patterns (``harness.Accepted``)
over a difference's step label ("JoinGroup v7 first join") and field path (".topics[0].error_code").
"""

from __future__ import annotations

from tests.interop.differential.harness import Accepted

ACCEPTED: list[Accepted] = [
    Accepted("*", "*error_message", "free text: tomyum words its own and says more where Kafka says "
             "nothing; the error codes beside them are compared"),
    Accepted("Metadata v* auto-created", ".topics[[]0[]].*", "deliberate (COMPAT.md 3): tomyum creates an "
             "auto-created topic before answering, complete with its leader (KafkaJS fails a whole call on "
             "a topic error); Kafka answers UNKNOWN_TOPIC_OR_PARTITION and creates it in the background"),
    Accepted("DescribeConfigs v* topic keys", ".results[[]0[]].configs[[]*[]].*", "min.insync.replicas: Kafka "
             "4's storage format sets it cluster-wide (KIP-966: a DYNAMIC_DEFAULT_BROKER_CONFIG layer), "
             "the peer's formatting and not the broker's behaviour; retention.ms: Kafka lists no broker "
             "synonyms for a topic key whose broker key has another name (its ConfigHelper drops synonyms "
             "until one named like the topic key), tomyum lists the broker's layers as KIP-226 describes"),
    Accepted("IncrementalAlterConfigs v* bad operation", ".responses[[]0[]].error_code", "an operation "
             "byte outside 0-3 makes Kafka fail with UNKNOWN_SERVER_ERROR (an exception it does not map); "
             "tomyum answers INVALID_REQUEST"),
    Accepted("ConsumerGroup* v*", "*epoch", "KIP-848 epochs: Kafka 4.4 bumps a new group's epoch twice for "
             "its first member (member, then subscription metadata), tomyum once; clients treat epochs as "
             "opaque and echo them back"),
]
