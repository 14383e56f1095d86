import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * RoundTrip BOOTSTRAP TOPIC COMPRESSION IDEMPOTENT COUNT
 *
 * <p>Produces COUNT keyed records with a header each (acks=all, compression.type=COMPRESSION,
 * enable.idempotence=IDEMPOTENT) to the topic's partitions, then reads the whole topic back with
 * an assigned consumer. Prints {"event": "produced", ...}, then {"event": "consumed", "records":
 * [[partition, offset, key, value, header], ...]}, and for an idempotent producer
 * {"event": "producers", ...}: the producer state each partition's leader keeps (DescribeProducers).
 */
public final class RoundTrip {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], compression = args[2];
        boolean idempotent = Boolean.parseBoolean(args[3]);
        int count = Integer.parseInt(args[4]);

        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("compression.type", compression);
        p.put("enable.idempotence", String.valueOf(idempotent));
        p.put("linger.ms", "5");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        Map<Integer, Long> lastOffset = new HashMap<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> record = new ProducerRecord<>(topic, "k" + i, "v" + i + "-" + "x".repeat(i % 50));
                record.headers().add("h", String.valueOf(i).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(record));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                RecordMetadata m = f.get();
                lastOffset.merge(m.partition(), m.offset(), Math::max);
            }
        }
        Json.emit("event", "produced", "count", count, "last_offsets", lastOffset);

        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        List<List<Object>> records = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(topic).forEach(info -> partitions.add(new TopicPartition(topic, info.partition())));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.currentTimeMillis() + 30_000;
            while (records.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    Header h = r.headers().lastHeader("h");
                    records.add(List.of(r.partition(), r.offset(), r.key(), r.value(),
                            h == null ? "" : new String(h.value(), StandardCharsets.UTF_8)));
                }
            }
        }
        Json.emit("event", "consumed", "records", records);

        if (idempotent) {
            try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
                List<TopicPartition> partitions = new ArrayList<>();
                for (Integer partition : lastOffset.keySet()) partitions.add(new TopicPartition(topic, partition));
                Map<String, Object> states = new HashMap<>();
                admin.describeProducers(partitions).all().get().forEach((tp, d) -> {
                    List<Object> producers = new ArrayList<>();
                    for (ProducerState s : d.activeProducers()) {
                        producers.add(Map.of("producer_id", s.producerId(), "epoch", s.producerEpoch(),
                                "last_sequence", s.lastSequence()));
                    }
                    states.put(String.valueOf(tp.partition()), producers);
                });
                Json.emit("event", "producers", "partitions", states);
            }
        }
    }
}
