import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * GroupMember BOOTSTRAP TOPIC GROUP PROTOCOL
 *
 * <p>One member of consumer group GROUP subscribed to TOPIC, with group.protocol=PROTOCOL
 * ("classic" or "consumer", KIP-848). Prints {"event": "assignment", "partitions": [...]} each
 * time its assignment changes, {"event": "records", "records": [[partition, offset, value], ...]}
 * for what each poll returns, then commits synchronously and prints {"event": "committed",
 * "offsets": {partition: offset}}. A line "close" on stdin, or its end, closes the consumer
 * (leaving the group) and prints {"event": "closed"}.
 */
public final class GroupMember {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], protocol = args[3];
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("group.protocol", protocol);
        c.put("auto.offset.reset", "earliest");
        c.put("enable.auto.commit", "false");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        if (protocol.equals("classic")) {  // KIP-848 takes these from the broker instead
            c.put("session.timeout.ms", "10000");
            c.put("heartbeat.interval.ms", "500");
        }
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
        Thread control = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null && !line.trim().equals("close")) { }
            } catch (Exception ignored) {
                // stdin gone: close as on "close"
            }
            consumer.wakeup();
        });
        control.setDaemon(true);
        control.start();

        consumer.subscribe(List.of(topic));
        Set<Integer> assigned = null;
        try {
            while (true) {
                ConsumerRecords<String, String> polled = consumer.poll(Duration.ofMillis(200));
                Set<Integer> now = new TreeSet<>();
                consumer.assignment().forEach(tp -> now.add(tp.partition()));
                if (!now.equals(assigned)) {
                    assigned = now;
                    Json.emit("event", "assignment", "partitions", new ArrayList<>(now));
                }
                if (polled.isEmpty()) continue;
                List<Object> records = new ArrayList<>();
                Map<Integer, Long> next = new TreeMap<>();
                for (ConsumerRecord<String, String> r : polled) {
                    records.add(List.of(r.partition(), r.offset(), r.value()));
                    next.put(r.partition(), r.offset() + 1);
                }
                Json.emit("event", "records", "records", records);
                Map<TopicPartition, OffsetAndMetadata> offsets = new java.util.HashMap<>();
                next.forEach((p, o) -> offsets.put(new TopicPartition(topic, p), new OffsetAndMetadata(o)));
                try {
                    consumer.commitSync(offsets);
                    Json.emit("event", "committed", "offsets", next);
                } catch (org.apache.kafka.common.errors.RebalanceInProgressException
                         | org.apache.kafka.clients.consumer.CommitFailedException e) {
                    Json.emit("event", "commit_failed", "error", e.toString());
                }
            }
        } catch (WakeupException closing) {
            // asked to close
        } finally {
            consumer.close();
        }
        Json.emit("event", "closed");
    }
}
