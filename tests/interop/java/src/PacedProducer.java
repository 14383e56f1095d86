import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * PacedProducer BOOTSTRAP TOPIC PARTITIONS COUNT
 *
 * <p>An idempotent producer (acks=all, 5 requests in flight, retries until delivery.timeout.ms)
 * sending values "0".."COUNT-1", value i to partition i % PARTITIONS, 250 records every 10 ms so
 * that a broker restart lands mid-stream. Prints {"event": "acked", "count": n} every 1,000
 * acknowledgements and {"event": "done", "acked": n, "failed": n, "error": ...} at the end.
 */
public final class PacedProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int partitions = Integer.parseInt(args[2]), count = Integer.parseInt(args[3]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("max.in.flight.requests.per.connection", "5");
        p.put("linger.ms", "5");
        p.put("delivery.timeout.ms", "90000");
        p.put("request.timeout.ms", "5000");
        p.put("reconnect.backoff.max.ms", "200");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        AtomicInteger acked = new AtomicInteger(), failed = new AtomicInteger();
        AtomicReference<String> error = new AtomicReference<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, i % partitions, null, String.valueOf(i)), (metadata, e) -> {
                    if (e != null) {
                        failed.incrementAndGet();
                        error.compareAndSet(null, e.toString());
                    } else if (acked.incrementAndGet() % 1000 == 0) {
                        Json.emit("event", "acked", "count", acked.get());
                    }
                });
                if (i % 250 == 249) Thread.sleep(10);
            }
            producer.flush();
        }
        Json.emit("event", "done", "acked", acked.get(), "failed", failed.get(), "error", error.get());
    }
}
