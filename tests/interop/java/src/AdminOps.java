import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * AdminOps BOOTSTRAP TOPIC GROUP
 *
 * <p>Kafka's Admin client through a topic's life, one JSON line per step ("step" names it):
 * create (3 partitions, a config), describe, create partitions (to 5), describe cluster,
 * incremental alter and describe configs, produce 10 records to partition 0, list offsets
 * (earliest, latest, max timestamp), delete records before offset 4, list offsets again, a group
 * commits offsets, list and describe consumer groups, list the group's offsets, delete the group
 * and the topic, list topics.
 *
 * <p>AdminOps describe-group BOOTSTRAP GROUP: the group as its coordinator describes it (for a
 * KIP-848 group through ConsumerGroupDescribe), {"step": "describe_group", "type": ..., "state":
 * ..., "members": [{"member_id", "client_id", "partitions"}, ...]}.
 */
public final class AdminOps {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("describe-group")) {
            describeGroup(args[1], args[2]);
            return;
        }
        String bootstrap = args[0], topic = args[1], group = args[2];
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("cleanup.policy", "delete", "retention.ms", "3600000")))).all().get();
            Json.emit("step", "create_topics", "ok", true);

            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            List<Object> partitions = new ArrayList<>();
            d.partitions().forEach(p -> partitions.add(Map.of("partition", p.partition(), "leader", p.leader().id(),
                    "replicas", p.replicas().size(), "isr", p.isr().size())));
            Json.emit("step", "describe_topics", "name", d.name(), "internal", d.isInternal(),
                    "topic_id", d.topicId().toString(), "partitions", partitions);

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
            int count = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
            Json.emit("step", "create_partitions", "partitions", count);

            DescribeClusterResult cluster = admin.describeCluster();
            List<Object> nodes = new ArrayList<>();
            cluster.nodes().get().forEach(n -> nodes.add(Map.of("id", n.id(), "host", n.host(), "port", n.port())));
            Json.emit("step", "describe_cluster", "cluster_id", cluster.clusterId().get(),
                    "controller", cluster.controller().get().id(), "nodes", nodes);

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND),
                    new AlterConfigOp(new ConfigEntry("segment.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            Map<String, Object> configs = new TreeMap<>();
            for (String key : List.of("retention.ms", "max.message.bytes", "cleanup.policy", "segment.ms")) {
                ConfigEntry e = config.get(key);
                configs.put(key, Map.of("value", String.valueOf(e.value()), "source", e.source().toString()));
            }
            Json.emit("step", "describe_configs", "configs", configs);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SUBTRACT)))).all().get();
            String policy = admin.describeConfigs(List.of(resource)).all().get().get(resource).get("cleanup.policy").value();
            Json.emit("step", "subtract_config", "cleanup.policy", policy);

            TopicPartition p0 = new TopicPartition(topic, 0);
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            long base = System.currentTimeMillis() - 60_000;
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 10; i++) {  // timestamps rise to i=7, then fall: the max is offset 7
                    long ts = base + (i <= 7 ? i : 7 - i) * 1000L;
                    producer.send(new ProducerRecord<>(topic, 0, ts, "k" + i, "v" + i)).get();
                }
            }
            Json.emit("step", "list_offsets", "offsets", offsets(admin, p0, base + 2500));

            admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(4))).all().get();
            Json.emit("step", "delete_records", "offsets", offsets(admin, p0, base + 2500));

            Properties c = new Properties();
            c.put("bootstrap.servers", bootstrap);
            c.put("group.id", group);
            c.put("key.deserializer", StringDeserializer.class.getName());
            c.put("value.deserializer", StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                consumer.commitSync(Map.of(p0, new OffsetAndMetadata(6, "admin-test")));
            }
            List<Object> groups = new ArrayList<>();
            Collection<GroupListing> listings = admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get();
            listings.forEach(g -> groups.add(Map.of("group_id", g.groupId(), "type", String.valueOf(g.type().orElse(null)),
                    "state", String.valueOf(g.groupState().orElse(null)))));
            Json.emit("step", "list_consumer_groups", "groups", groups);
            ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            Json.emit("step", "describe_consumer_groups", "group_id", gd.groupId(), "state", gd.groupState().toString(),
                    "members", gd.members().size(), "coordinator", gd.coordinator().id());
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            Map<String, Object> offsets = new TreeMap<>();
            committed.forEach((tp, o) -> offsets.put(tp.toString(), Map.of("offset", o.offset(), "metadata", o.metadata())));
            Json.emit("step", "list_consumer_group_offsets", "offsets", offsets);

            admin.deleteConsumerGroups(List.of(group)).all().get();
            admin.deleteTopics(List.of(topic)).all().get();
            long deadline = System.currentTimeMillis() + 15_000;
            boolean listed = true;
            while (listed && System.currentTimeMillis() < deadline) {
                listed = admin.listTopics().names().get().contains(topic);
                if (listed) Thread.sleep(100);
            }
            List<String> groupIds = new ArrayList<>();
            admin.listGroups().all().get().forEach(g -> groupIds.add(g.groupId()));
            Json.emit("step", "deleted", "topic_listed", listed, "group_listed", groupIds.contains(group));
        }
    }

    private static void describeGroup(String bootstrap, String group) throws Exception {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            List<Object> members = new ArrayList<>();
            for (MemberDescription m : d.members()) {
                List<Integer> partitions = new ArrayList<>();
                m.assignment().topicPartitions().forEach(tp -> partitions.add(tp.partition()));
                partitions.sort(null);
                members.add(Map.of("member_id", m.consumerId(), "client_id", m.clientId(), "partitions", partitions));
            }
            Json.emit("step", "describe_group", "type", d.type().toString(), "state", d.groupState().toString(),
                    "members", members);
        }
    }

    private static Map<String, Object> offsets(Admin admin, TopicPartition tp, long timestamp) throws Exception {
        Map<String, Object> out = new TreeMap<>();
        Map<String, OffsetSpec> specs = Map.of("earliest", OffsetSpec.earliest(), "latest", OffsetSpec.latest(),
                "max_timestamp", OffsetSpec.maxTimestamp(), "for_timestamp", OffsetSpec.forTimestamp(timestamp));
        for (Map.Entry<String, OffsetSpec> spec : specs.entrySet()) {
            ListOffsetsResult.ListOffsetsResultInfo info = admin.listOffsets(Map.of(tp, spec.getValue())).partitionResult(tp).get();
            out.put(spec.getKey(), info.offset());
        }
        return out;
    }
}
