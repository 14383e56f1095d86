"""The broker's config keys (Kafka's ``KafkaConfig`` / ``ServerLogConfigs`` names and defaults).

The table is the rule: a key missing here is unknown (an error naming it); a key with
``implemented=False`` is one Kafka has and tomyum accepts with a warning and ignores. The
``doc`` strings are tomyum's own words for what Kafka documents the key to mean, and what
tomyum does with it where that differs.
"""

from __future__ import annotations

from dataclasses import replace

from tomyum.config.definition import (
    ConfigDef,
    ConfigType,
    Importance,
    at_least,
    between,
    defs,
    each_of,
    one_of,
)

BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, PASSWORD = (
    ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.SHORT, ConfigType.LONG, ConfigType.DOUBLE,
    ConfigType.LIST, ConfigType.PASSWORD)
HIGH, MEDIUM, LOW = Importance.HIGH, Importance.MEDIUM, Importance.LOW

DAY_MS = 24 * 3600 * 1000
LONG_MAX = 2**63 - 1
#: KIP-1030 (Kafka 4.0): a segment is at least 1 MiB, so that no client can make the broker
#: open a segment (and its files) per batch
MIN_SEGMENT_BYTES = 1 << 20
#: the authorizer class name that turns ACLs on (Kafka's KRaft authorizer)
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
COMPRESSION = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
CLEANUP_POLICIES = ("delete", "compact")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")


def static(d: ConfigDef) -> ConfigDef:
    return replace(d, dynamic=False)


def ignored(name: str, type: ConfigType, default: object, *, doc: str) -> ConfigDef:
    """A Kafka key tomyum accepts in its static configuration, with a warning, and ignores."""
    return ConfigDef(name, type, default, doc=doc, implemented=False, dynamic=False)


_SERVER = (
    static(ConfigDef("node.id", INT, 1, at_least(0), importance=HIGH,
                     doc="The id of this broker in the cluster. tomyum defaults it to 1.")),
    static(ConfigDef("broker.id", INT, -1, doc="The pre-KRaft name of node.id; used when node.id is left at "
                     "its default and this is set to 0 or more.")),
    static(ConfigDef("cluster.id", STRING, "", doc="The cluster id written to meta.properties when the data "
                     "directory is formatted; empty picks a random one.")),
    static(ConfigDef("log.dirs", STRING, "./data", importance=HIGH,
                     doc="The directory the broker keeps its partitions and metadata log in (one "
                     "directory in tomyum; `--data-dir` sets it).")),
    static(ConfigDef("log.dir", STRING, "", doc="The single-directory form of log.dirs, used when log.dirs "
                     "is not set.")),
    static(ConfigDef("listeners", LIST, ["PLAINTEXT://127.0.0.1:9092"], importance=HIGH,
                     doc="The addresses the broker accepts connections on, as a comma-separated list of "
                     "LISTENER_NAME://host:port.")),
    static(ConfigDef("advertised.listeners", LIST, [], importance=HIGH,
                     doc="The addresses clients are told to connect to, when they differ from listeners "
                     "(behind NAT or in a container); empty advertises listeners.")),
    static(ConfigDef("listener.security.protocol.map", LIST,
                     ["PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL"],
                     doc="The security protocol of each listener name, as NAME:PROTOCOL pairs.")),
    static(ConfigDef("socket.listen.backlog.size", INT, 1024, at_least(1),
                     doc="How many connections may wait to be accepted. Kafka's default is 50; an asyncio "
                     "accept loop is slower than Kafka's acceptor thread, so a burst waits in a longer queue.")),
    static(ConfigDef("socket.request.max.bytes", INT, 104857600, at_least(1),
                     doc="The largest request the broker reads; a larger frame closes the connection.")),
    static(ConfigDef("connections.max.idle.ms", LONG, 600000,
                     doc="A connection that has sent nothing for this long is closed.")),
    static(ConfigDef("max.incremental.fetch.session.cache.slots", INT, 1000, at_least(0),
                     doc="How many incremental fetch sessions (KIP-227) the broker keeps; 0 turns them off, "
                     "and every fetch then lists all its partitions.")),
    ConfigDef("max.connections", INT, 2**31 - 1, at_least(0),
              doc="The most connections the broker holds, over all listeners; a connection over it is "
              "closed as soon as it is accepted (Kafka waits for one to close instead; tomyum refuses at once)."),
    ConfigDef("max.connections.per.ip", INT, 2**31 - 1, at_least(0),
              doc="The most connections from one IP address; a connection over it is closed as soon as it "
              "is accepted, and the broker goes on serving the connections it has."),
    ConfigDef("max.connections.per.ip.overrides", STRING, "",
              doc="Per-IP exceptions to max.connections.per.ip, as host:count pairs separated by commas "
              "(127.0.0.1:200,10.0.0.5:0)."),
    ConfigDef("max.connection.creation.rate", INT, 2**31 - 1, at_least(0),
              doc="The most new connections a second on each listener (Kafka's rate over quota.window.num "
              "windows); a connection over it is closed as soon as it is accepted. The ip entity's "
              "connection_creation_rate quota (AlterClientQuotas) limits one address the same way."),
    static(ConfigDef("quota.window.num", INT, 11, at_least(1),
                     doc="How many samples client quota rates are measured over (produce, fetch, connection "
                     "creation).")),
    static(ConfigDef("quota.window.size.seconds", INT, 1, at_least(1),
                     doc="The length of one sample of a client quota rate; the rate is measured over "
                     "quota.window.num of them, and the throttle time is how long the excess takes to drain.")),
    # tomyum's own: fetched record ranges of at least this many bytes leave by sendfile
    # (zero copy) on plaintext listeners; read when a connection opens
    ConfigDef("fetch.zero.copy.min.bytes", INT, 65536, at_least(-1),
              doc="tomyum's own: fetched record ranges of at least this many bytes are sent with sendfile "
              "(zero copy) on plaintext listeners; -1 reads them into memory. A change applies to new "
              "connections."),
    # tomyum's own: the web console (tomyum.console), started by `tomyum serve` as a client of the broker
    static(ConfigDef("console.listener", STRING, "",
                     doc="tomyum's own: HOST:PORT of the web console's HTTP listener (topics, messages, consumer "
                     "groups, configs), a Kafka client of this broker's first listener, or as console.client.config "
                     "says; empty: none. Port 0 "
                     "picks a free port, named in the line printed before the broker's ready line.")),
    static(ConfigDef("console.connect.url", STRING, "",
                     doc="tomyum's own: the REST URL (http://HOST:8083) of a Kafka Connect worker (tomyum connect "
                     "or Apache Kafka Connect) whose connectors the web console shows on its Connectors page, "
                     "with pause, resume, stop, restart and delete; empty: none.")),
    static(ConfigDef("console.client.config", STRING, "",
                     doc="tomyum's own: a Kafka client properties file (as --command-config: security.protocol, "
                     "sasl.mechanism, sasl.jaas.config, ssl.truststore.*, ...) the web console connects with, "
                     "acting as that principal; its bootstrap.servers, if any, names the listener to use, else "
                     "the console takes the first listener of its security.protocol. Empty: the first listener, "
                     "no credentials. The console has no login of its own: whoever reaches console.listener "
                     "acts as this principal.")),
    # tomyum's own: Prometheus' /metrics over HTTP (broker/metrics.py); issue 23's key
    static(ConfigDef("metrics.listener", STRING, "",
                     doc="tomyum's own: HOST:PORT (or http://HOST:PORT, https://HOST:PORT) of an HTTP listener "
                     "answering GET /metrics in Prometheus' text format: kafka_exporter's families and tomyum's "
                     "own (docs/monitoring.md); empty: none. Port 0 picks a free port, named in the line the "
                     "broker prints when it is ready. https:// serves TLS with the ssl.* keys as the listener "
                     "named metrics sees them (listener.name.metrics.ssl.keystore.location, ...; "
                     "listener.name.metrics.ssl.client.auth=required asks for a client certificate: mTLS).")),
    static(ConfigDef("metrics.basic.auth.users", PASSWORD, None,
                     doc="tomyum's own: USER:PASSWORD pairs, comma-separated, that the metrics listener accepts "
                     "as HTTP basic authentication (RFC 7617); any other request is answered 401. Empty: no "
                     "password asked. Use it with https:// so that the passwords do not cross the network "
                     "in the clear.")),
    ignored("request.timeout.ms", INT, 30000, doc="A client's key, not a broker's: accepted so that "
            "existing tomyum config files load, and ignored."),
    static(ConfigDef("shutdown.timeout.ms", INT, 10000, at_least(0),
                     doc="tomyum's own: how long a clean shutdown waits for requests in flight before it "
                     "closes their connections.")),
)

_TOPICS = (
    static(ConfigDef("num.partitions", INT, 1, at_least(1), importance=MEDIUM,
                     doc="The partition count of a topic created without one (auto-created, or with -1).")),
    static(ConfigDef("default.replication.factor", INT, 1, at_least(1),
                     doc="The replication factor of a topic created without one; a single broker holds one "
                     "replica.")),
    static(ConfigDef("auto.create.topics.enable", BOOLEAN, True, importance=HIGH,
                     doc="Create a topic when a client asks for its metadata and it does not exist.")),
    static(ConfigDef("delete.topic.enable", BOOLEAN, True, doc="Whether DeleteTopics may delete topics.")),
    ConfigDef("message.max.bytes", INT, 1048588, at_least(0), importance=HIGH,
              doc="The largest record batch the broker accepts; the broker default of a topic's "
              "max.message.bytes."),
    static(ConfigDef("max.request.partition.size.limit", INT, 2000, at_least(1),
                     doc="The most partitions one DescribeTopicPartitions answer holds (a request asks for at "
                     "most this many; the rest follow its cursor).")),
    ConfigDef("topic.max.partitions", INT, 10000, at_least(1),
              doc="tomyum's own: the most partitions one topic may have (each is a directory and open files)."),
    static(ConfigDef("auto.create.topics.partitions.per.second", DOUBLE, 10.0, at_least(0.001),
                     doc="tomyum's own: auto-created topics get at most this many partitions a second (a burst "
                     "of twice as many); over it the topic is not created.")),
    ConfigDef("max.broker.partitions", INT, 20000, at_least(1),
              doc="The most partitions this broker holds (the limit KIP-578 proposed); a creation over it is "
              "POLICY_VIOLATION."),
    ConfigDef("min.insync.replicas", INT, 1, at_least(1),
              doc="The broker default of a topic's min.insync.replicas."),
    ConfigDef("unclean.leader.election.enable", BOOLEAN, False,
              doc="The broker default of a topic's unclean.leader.election.enable."),
    ConfigDef("compression.type", STRING, "producer", one_of(*COMPRESSION),
              doc="The broker default of a topic's compression.type."),
)

_LOG = (
    ConfigDef("log.segment.bytes", INT, 1073741824, at_least(MIN_SEGMENT_BYTES), importance=HIGH,
              doc="The broker default of segment.bytes: the size at which a partition's active segment is rolled."),
    ConfigDef("log.roll.ms", LONG, None, doc="The broker default of segment.ms; when unset, log.roll.hours applies."),
    static(ConfigDef("log.roll.hours", INT, 168, at_least(1),
                     doc="The broker default of segment.ms in hours, used when log.roll.ms is not set.")),
    ConfigDef("log.roll.jitter.ms", LONG, None, implemented=False,
              doc="The broker default of segment.jitter.ms; when unset, log.roll.jitter.hours applies."),
    static(ConfigDef("log.roll.jitter.hours", INT, 0, at_least(0), implemented=False,
                     doc="The broker default of segment.jitter.ms in hours, used when log.roll.jitter.ms is not set.")),
    ConfigDef("log.retention.ms", LONG, None, importance=HIGH,
              doc="The broker default of retention.ms (-1: no limit); when unset, log.retention.minutes, then "
              "log.retention.hours apply."),
    static(ConfigDef("log.retention.minutes", INT, None,
                     doc="The broker default of retention.ms in minutes, used when log.retention.ms is not set.")),
    static(ConfigDef("log.retention.hours", INT, 168, importance=HIGH,
                     doc="The broker default of retention.ms in hours, used when neither log.retention.ms nor "
                     "log.retention.minutes is set.")),
    ConfigDef("log.retention.bytes", LONG, -1, doc="The broker default of retention.bytes (-1: no limit)."),
    static(ConfigDef("log.retention.check.interval.ms", LONG, 300000, at_least(1),
                     doc="How often the broker looks for segments that retention may delete.")),
    ConfigDef("log.segment.delete.delay.ms", LONG, 60000, at_least(0), implemented=False,
              doc="The broker default of file.delete.delay.ms."),
    ConfigDef("log.index.interval.bytes", INT, 4096, at_least(0),
              doc="The broker default of index.interval.bytes."),
    ConfigDef("log.index.size.max.bytes", INT, 10485760, at_least(4), implemented=False,
              doc="The broker default of segment.index.bytes."),
    ConfigDef("log.preallocate", BOOLEAN, False, implemented=False, doc="The broker default of preallocate."),
    ConfigDef("log.message.timestamp.type", STRING, "CreateTime", one_of(*TIMESTAMP_TYPES),
              doc="The broker default of message.timestamp.type."),
    ConfigDef("log.message.timestamp.before.max.ms", LONG, LONG_MAX, at_least(0),
              doc="The broker default of message.timestamp.before.max.ms."),
    ConfigDef("log.message.timestamp.after.max.ms", LONG, 3600000, at_least(0),
              doc="The broker default of message.timestamp.after.max.ms."),
    ConfigDef("log.flush.interval.messages", LONG, LONG_MAX, at_least(1),
              doc="The broker default of flush.messages."),
    ConfigDef("log.flush.interval.ms", LONG, None,
              doc="The broker default of flush.ms; when unset, log.flush.scheduler.interval.ms applies."),
    static(ConfigDef("log.flush.scheduler.interval.ms", LONG, LONG_MAX,
                     doc="In Kafka, how often the flusher checks whether a log is due; also the default of "
                     "flush.ms when log.flush.interval.ms is not set, which is all tomyum uses it for.")),
    ConfigDef("log.cleanup.policy", LIST, ["delete"], each_of(*CLEANUP_POLICIES),
              doc="The broker default of cleanup.policy."),
    static(ConfigDef("log.cleaner.enable", BOOLEAN, True,
                     doc="Run the log cleaner, which compacts topics whose cleanup.policy includes compact.")),
    ConfigDef("log.cleaner.backoff.ms", LONG, 15000, at_least(0),
              doc="How long the cleaner sleeps when no log needs cleaning."),
    ConfigDef("log.cleaner.delete.retention.ms", LONG, DAY_MS, at_least(0),
              doc="The broker default of delete.retention.ms."),
    ConfigDef("log.cleaner.min.cleanable.ratio", DOUBLE, 0.5, between(0, 1),
              doc="The broker default of min.cleanable.dirty.ratio."),
    ConfigDef("log.cleaner.min.compaction.lag.ms", LONG, 0, at_least(0),
              doc="The broker default of min.compaction.lag.ms."),
    ConfigDef("log.cleaner.max.compaction.lag.ms", LONG, LONG_MAX, at_least(1),
              doc="The broker default of max.compaction.lag.ms."),
)

_COORDINATORS = (
    static(ConfigDef("offsets.topic.num.partitions", INT, 50, at_least(1),
                     doc="The partition count of __consumer_offsets, fixed when it is first created.")),
    static(ConfigDef("offsets.topic.replication.factor", INT, 1, at_least(1),
                     doc="The replication factor of __consumer_offsets (one replica on a single broker).")),
    static(ConfigDef("offsets.retention.minutes", INT, 10080, at_least(1),
                     doc="How long the committed offsets of a group with no members are kept.")),
    static(ConfigDef("offsets.retention.check.interval.ms", LONG, 600000, at_least(1),
                     doc="How often the group coordinator looks for expired committed offsets.")),
    static(ConfigDef("group.initial.rebalance.delay.ms", INT, 3000, at_least(0),
                     doc="How long a new classic group waits for more members before its first rebalance.")),
    static(ConfigDef("group.min.session.timeout.ms", INT, 6000, at_least(0),
                     doc="The shortest session timeout a classic group member may ask for.")),
    static(ConfigDef("group.max.session.timeout.ms", INT, 1800000, at_least(0),
                     doc="The longest session timeout a classic group member may ask for.")),
    static(ConfigDef("group.consumer.heartbeat.interval.ms", INT, 5000, at_least(1),
                     doc="How often members of a consumer group (KIP-848 protocol) heartbeat.")),
    static(ConfigDef("group.consumer.session.timeout.ms", INT, 45000, at_least(1),
                     doc="How long a consumer group member (KIP-848 protocol) may go without a heartbeat before "
                     "it is removed.")),
    static(ConfigDef("transaction.state.log.num.partitions", INT, 50, at_least(1),
                     doc="The partition count of __transaction_state, fixed when it is first created.")),
    static(ConfigDef("transaction.state.log.replication.factor", INT, 1, at_least(1),
                     doc="The replication factor of __transaction_state (one replica on a single broker).")),
    static(ConfigDef("transaction.state.log.min.isr", INT, 1, at_least(1),
                     doc="The min.insync.replicas of __transaction_state.")),
    static(ConfigDef("transactional.id.expiration.ms", INT, 604800000, at_least(1),
                     doc="A transactional id whose producer sends nothing transactional for this long is expired.")),
    static(ConfigDef("transaction.max.timeout.ms", INT, 900000, at_least(1),
                     doc="The longest transaction timeout a producer may ask for.")),
    static(ConfigDef("producer.id.expiration.ms", INT, 86400000, at_least(1),
                     doc="How long a partition keeps an idle producer's state (for duplicate detection).")),
    static(ConfigDef("producer.id.expiration.check.interval.ms", INT, 600000, at_least(1),
                     doc="How often expired producer ids are looked for.")),
    static(ConfigDef("transaction.abort.timed.out.transaction.cleanup.interval.ms", INT, 10000, at_least(1),
                     doc="How often the transaction coordinator aborts transactions past their timeout.")),
    static(ConfigDef("transaction.remove.expired.transaction.cleanup.interval.ms", INT, 3600000, at_least(1),
                     doc="How often the transaction coordinator removes expired transactional ids.")),
)

_IGNORED = (
    ignored("num.network.threads", INT, 3, doc="Kafka's count of network threads; tomyum serves every "
            "connection on one asyncio loop."),
    ignored("num.io.threads", INT, 8, doc="Kafka's count of request handler threads."),
    ignored("num.recovery.threads.per.data.dir", INT, 2,
            doc="Kafka's count of threads that recover logs at start and flush them at shutdown."),
    ignored("socket.send.buffer.bytes", INT, 102400, doc="The SO_SNDBUF of the broker's sockets."),
    ignored("socket.receive.buffer.bytes", INT, 102400, doc="The SO_RCVBUF of the broker's sockets."),
    ignored("zookeeper.connect", STRING, None, doc="The ZooKeeper ensemble of a pre-KRaft cluster."),
    ignored("zookeeper.connection.timeout.ms", INT, None, doc="How long a pre-KRaft broker waits to connect "
            "to ZooKeeper."),
    ignored("process.roles", LIST, [], doc="The KRaft roles of this process (broker, controller); a tomyum "
            "broker is its own controller."),
    ignored("controller.quorum.voters", LIST, [], doc="The static KRaft controller quorum."),
    ignored("controller.quorum.bootstrap.servers", LIST, [], doc="The addresses a node uses to find the "
            "KRaft controller quorum."),
    ignored("controller.listener.names", STRING, None, doc="The listeners the KRaft controller uses."),
    ignored("inter.broker.listener.name", STRING, None, doc="The listener brokers use to talk to each other."),
    ignored("num.replica.fetchers", INT, 1, doc="The threads a follower fetches from leaders with."),
    # dynamic: kafka-reassign-partitions sets and clears them at run time
    ConfigDef("leader.replication.throttled.rate", LONG, 2**63 - 1, at_least(0), implemented=False,
              doc="The most bytes a second a leader sends to throttled followers (a reassignment's throttle)."),
    ConfigDef("follower.replication.throttled.rate", LONG, 2**63 - 1, at_least(0), implemented=False,
              doc="The most bytes a second a throttled follower fetches (a reassignment's throttle)."),
    ConfigDef("replica.alter.log.dirs.io.max.bytes.per.second", LONG, 2**63 - 1, at_least(0), implemented=False,
              doc="The most bytes a second moved between log directories (AlterReplicaLogDirs)."),
    ignored("replica.lag.time.max.ms", LONG, 30000, doc="How long a follower may lag before it leaves the ISR."),
    ignored("auto.leader.rebalance.enable", BOOLEAN, True, doc="Move leadership back to preferred replicas "
            "in the background."),
    ignored("log.cleaner.threads", INT, 1, doc="Kafka's count of cleaner threads; tomyum runs one."),
    ignored("log.cleaner.dedupe.buffer.size", LONG, 134217728, doc="The memory Kafka's cleaners use to "
            "deduplicate keys."),
    ignored("log.cleaner.io.max.bytes.per.second", DOUBLE, 1.7976931348623157e308,
            doc="A cap on the cleaner's read and write rate."),
    ignored("log.cleaner.io.buffer.size", INT, 524288, doc="The I/O buffer memory of Kafka's cleaners."),
    ignored("log.cleaner.io.buffer.load.factor", DOUBLE, 0.9, doc="How full the cleaner's dedupe buffer may get."),
    ignored("queued.max.requests", INT, 500, doc="How many requests may queue for the handler threads before "
            "the network threads stop reading."),
    ignored("background.threads", INT, 10, doc="Kafka's count of threads for background tasks."),
    ignored("group.coordinator.rebalance.protocols", LIST, ["classic", "consumer"],
            doc="The group protocols the coordinator serves; tomyum serves classic and consumer."),
    ignored("share.coordinator.state.topic.replication.factor", SHORT, 3,
            doc="The replication factor of the share-group state topic (KIP-932)."),
    ignored("share.coordinator.state.topic.min.isr", SHORT, 2,
            doc="The min.insync.replicas of the share-group state topic (KIP-932)."),
    # TLS (KIP-651 PEM stores): every ssl.* key may also be set per listener as
    # listener.name.<listener>.ssl.*; the stores are read when the listener starts, and the
    # listener-prefixed store keys (DYNAMIC_LISTENER_KEYS) may change at run time, per broker
    static(ConfigDef("ssl.keystore.type", STRING, "PEM", one_of("PEM"), doc="The format of the key store: "
                     "PEM (a certificate chain and its private key), the one tomyum reads.")),
    static(ConfigDef("ssl.keystore.location", STRING, None, doc="A PEM file with the listener's certificate "
                     "chain and private key. The store keys may change at run time per broker with the listener "
                     "prefix (listener.name.<l>.ssl.keystore.location): new TLS connections use the new store.")),
    static(ConfigDef("ssl.keystore.certificate.chain", PASSWORD, None, doc="The listener's certificate chain in "
                     "PEM, given inline instead of ssl.keystore.location.")),
    static(ConfigDef("ssl.keystore.key", PASSWORD, None, doc="The listener's private key in PEM, given inline.")),
    static(ConfigDef("ssl.keystore.password", PASSWORD, None, doc="For PEM stores Kafka ignores it; so does "
                     "tomyum.")),
    static(ConfigDef("ssl.key.password", PASSWORD, None, doc="The password of an encrypted private key.")),
    static(ConfigDef("ssl.truststore.type", STRING, "PEM", one_of("PEM"), doc="The format of the trust store: "
                     "PEM certificates.")),
    static(ConfigDef("ssl.truststore.location", STRING, None, doc="A PEM file of the CA certificates that client "
                     "certificates are checked against (mTLS).")),
    static(ConfigDef("ssl.truststore.certificates", PASSWORD, None, doc="The trusted CA certificates in PEM, "
                     "given inline.")),
    static(ConfigDef("ssl.truststore.password", PASSWORD, None, doc="For PEM stores Kafka ignores it; so does "
                     "tomyum.")),
    static(ConfigDef("ssl.client.auth", STRING, "none", one_of("none", "requested", "required"),
                     doc="Whether SSL listeners ask clients for a certificate: none, requested (checked if "
                     "given) or required (mTLS).")),
    static(ConfigDef("ssl.enabled.protocols", LIST, ["TLSv1.2", "TLSv1.3"], each_of("TLSv1.2", "TLSv1.3"),
                     doc="The TLS versions SSL listeners accept.")),
    static(ConfigDef("ssl.cipher.suites", LIST, [], doc="The cipher suites SSL listeners offer (OpenSSL names); "
                     "empty: the library's defaults.")),
    static(ConfigDef("ssl.allow.dn.changes", BOOLEAN, False, doc="Whether a key store changed at run time "
                     "may hold a certificate with another distinguished name than the one it replaces.")),
    static(ConfigDef("ssl.allow.san.changes", BOOLEAN, False, doc="Whether a key store changed at run time "
                     "may hold a certificate without all the subject alternative names of the one it replaces.")),
    static(ConfigDef("ssl.principal.mapping.rules", STRING, "DEFAULT", doc="How a client certificate's "
                     "distinguished name becomes a principal: Kafka's RULE:pattern/replacement/[LU] rules, "
                     "DEFAULT keeping the whole name.")),
    static(ConfigDef("sasl.enabled.mechanisms", LIST, ["GSSAPI"], doc="The SASL mechanisms the broker offers: "
                     "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are implemented (GSSAPI is not).")),
    static(ConfigDef("connections.max.reauth.ms", LONG, 0, at_least(0), doc="KIP-368: the longest a SASL "
                     "session lasts before the client must re-authenticate (0: forever); a connection that "
                     "does not is closed.")),
    static(ConfigDef("sasl.oauthbearer.jwks.endpoint.url", STRING, None, doc="Where the keys that sign "
                     "OAUTHBEARER tokens are published (https: or file:); unset, only unsecured tokens are "
                     "accepted, as Kafka's development default.")),
    static(ConfigDef("sasl.oauthbearer.expected.issuer", STRING, None, doc="The iss claim a token must carry.")),
    static(ConfigDef("sasl.oauthbearer.expected.audience", LIST, [], doc="Audiences of which a token must name "
                     "one.")),
    static(ConfigDef("sasl.oauthbearer.sub.claim.name", STRING, "sub", doc="The claim that names the "
                     "principal.")),
    static(ConfigDef("sasl.oauthbearer.clock.skew.seconds", INT, 30, at_least(0), doc="How far the token's "
                     "times may be off the broker's clock.")),
    ignored("sasl.mechanism.inter.broker.protocol", STRING, "GSSAPI", doc="The SASL mechanism brokers use "
            "with each other."),
    static(ConfigDef("authorizer.class.name", STRING, "", one_of("", STANDARD_AUTHORIZER),
                     doc="The authorizer that checks ACLs: Kafka's StandardAuthorizer class name turns ACLs on "
                     "(kept in the metadata log); empty means no authorizer, and the ACL APIs answer "
                     "SECURITY_DISABLED.")),
    static(ConfigDef("super.users", STRING, "", doc="Principals the authorizer allows everything, separated by "
                     "semicolons (User:admin;User:ops).")),
    static(ConfigDef("allow.everyone.if.no.acl.found", BOOLEAN, False, doc="Whether the authorizer allows "
                     "everyone access to a resource that no ACL names.")),
    ignored("metric.reporters", LIST, [], doc="Classes Kafka reports its metrics to."),
    ignored("confluent.support.metrics.enable", BOOLEAN, True, doc="Confluent Platform's usage reporting "
            "(not a Kafka key; accepted so that Confluent config files load)."),
)

BROKER_CONFIGS = defs(*_SERVER, *_TOPICS, *_LOG, *_COORDINATORS, *_IGNORED)
