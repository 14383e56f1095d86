import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Transactions commit-abort BOOTSTRAP TOPIC TXN_ID
 *   Three transactions to TOPIC's partitions (committed "c1".."c3", aborted "a1".."a3",
 *   committed "c4", "c5"), then everything read back with read_committed and with
 *   read_uncommitted: {"event": "read", "isolation": ..., "values": [...]}. The last transaction
 *   is described by the Admin client while open and once committed ({"event": "described"}), and
 *   looked for in the transactions it lists ({"event": "listed"}).
 *
 * Transactions ctp BOOTSTRAP INPUT OUTPUT GROUP TXN_ID COUNT
 *   Consume-transform-produce: COUNT records to INPUT, then group GROUP (read_committed) reads
 *   them and a transactional producer writes each value upper-cased to OUTPUT with the input
 *   offsets (sendOffsetsToTransaction). The first transaction is aborted and the consumer rewound
 *   to its committed offsets, the rest committed. Prints {"event": "ctp", "transactions": n,
 *   "aborted": 1}, the group's committed offsets and OUTPUT read with read_committed.
 */
public final class Transactions {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("commit-abort")) commitAbort(args[1], args[2], args[3]);
        else consumeTransformProduce(args[1], args[2], args[3], args[4], args[5], Integer.parseInt(args[6]));
    }

    static KafkaProducer<String, String> producer(String bootstrap, String transactionalId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        if (transactionalId != null) p.put("transactional.id", transactionalId);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String isolation) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        if (group != null) c.put("group.id", group);
        c.put("isolation.level", isolation);
        c.put("auto.offset.reset", "earliest");
        c.put("enable.auto.commit", "false");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        return new KafkaConsumer<>(c);
    }

    static void commitAbort(String bootstrap, String topic, String txnId) throws Exception {
        try (KafkaProducer<String, String> producer = producer(bootstrap, txnId);
             Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            producer.initTransactions();
            String[][] transactions = {{"c1", "c2", "c3"}, {"a1", "a2", "a3"}, {"c4", "c5"}};
            for (String[] values : transactions) {
                producer.beginTransaction();
                for (String v : values) producer.send(new ProducerRecord<>(topic, v, v));
                producer.flush();  // in the log before the abort (an abort drops unsent batches)
                if (values[0].equals("c4")) describe(admin, txnId, "Ongoing");
                if (values[0].startsWith("a")) producer.abortTransaction();
                else producer.commitTransaction();
            }
            describe(admin, txnId, "CompleteCommit");
            List<Object> listed = new ArrayList<>();
            for (TransactionListing t : admin.listTransactions().all().get()) {
                if (t.transactionalId().equals(txnId)) listed.add(Map.of("state", t.state().toString(), "producer_id", t.producerId()));
            }
            Json.emit("event", "listed", "transactions", listed);
        }
        for (String isolation : List.of("read_committed", "read_uncommitted")) {
            Json.emit("event", "read", "isolation", isolation, "values", readAll(bootstrap, topic, isolation));
        }
    }

    /** Describe the transaction (DescribeTransactions) once it is in ``state`` (markers are
     * written after EndTxn is answered), or after 15 s in whatever state it is. */
    static void describe(Admin admin, String txnId, String state) throws Exception {
        long deadline = System.currentTimeMillis() + 15_000;
        TransactionDescription d = admin.describeTransactions(List.of(txnId)).all().get().get(txnId);
        while (!d.state().toString().equals(state) && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
            d = admin.describeTransactions(List.of(txnId)).all().get().get(txnId);
        }
        List<Integer> partitions = new ArrayList<>();
        d.topicPartitions().forEach(tp -> partitions.add(tp.partition()));
        partitions.sort(null);
        Json.emit("event", "described", "state", d.state().toString(), "producer_id", d.producerId(),
                "epoch", d.producerEpoch(), "partitions", partitions, "started", d.transactionStartTimeMs().isPresent());
    }

    /** Every value of TOPIC up to its end offsets (the last stable offsets for read_committed). */
    static List<String> readAll(String bootstrap, String topic, String isolation) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, null, isolation)) {
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(topic).forEach(i -> partitions.add(new TopicPartition(topic, i.partition())));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : partitions) done &= consumer.position(tp) >= end.get(tp);
                if (done) break;
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.value());
            }
        }
        values.sort(null);
        return values;
    }

    static void consumeTransformProduce(String bootstrap, String input, String output, String group,
                                        String txnId, int count) throws Exception {
        try (KafkaProducer<String, String> plain = producer(bootstrap, null)) {
            for (int i = 0; i < count; i++) plain.send(new ProducerRecord<>(input, "k" + i, "v" + i));
            plain.flush();
        }
        int transactions = 0, aborted = 0, processed = 0;
        try (KafkaProducer<String, String> producer = producer(bootstrap, txnId);
             KafkaConsumer<String, String> consumer = consumer(bootstrap, group, "read_committed")) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));
            long deadline = System.currentTimeMillis() + 60_000;
            while (processed < count && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> polled = consumer.poll(Duration.ofMillis(200));
                if (polled.isEmpty()) continue;
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : polled) {
                    producer.send(new ProducerRecord<>(output, r.key(), r.value().toUpperCase()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                transactions++;
                if (aborted == 0) {
                    producer.flush();
                    producer.abortTransaction();
                    aborted++;
                    for (TopicPartition tp : polled.partitions()) {  // back to what the group committed
                        OffsetAndMetadata committed = consumer.committed(java.util.Set.of(tp)).get(tp);
                        consumer.seek(tp, committed == null ? 0 : committed.offset());
                    }
                    continue;
                }
                producer.commitTransaction();
                processed += polled.count();
            }
        }
        Json.emit("event", "ctp", "transactions", transactions, "aborted", aborted, "processed", processed);
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, group, "read_committed")) {
            Map<String, Object> committed = new HashMap<>();
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(input).forEach(i -> partitions.add(new TopicPartition(input, i.partition())));
            consumer.committed(new java.util.HashSet<>(partitions)).forEach(
                    (tp, o) -> committed.put(String.valueOf(tp.partition()), o == null ? null : o.offset()));
            Json.emit("event", "committed", "offsets", committed);
        }
        Json.emit("event", "read", "isolation", "read_committed", "values", readAll(bootstrap, output, "read_committed"));
    }
}
