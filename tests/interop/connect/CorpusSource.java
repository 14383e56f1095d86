// A source connector for the transforms oracle (tests/interop/test_connect_transforms.py): it
// emits the records of a corpus file once, each line a JSON object
//   {"key": <JsonConverter envelope or null>, "value": <envelope or null>,
//    "headers": [[name, <envelope>], ...], "timestamp": <ms>}
// decoding every envelope with Kafka's JsonConverter (schemas.enable=true). Once the worker has
// called commitRecord for every record (acknowledged by Kafka, or dropped), it creates the file
// "done.file": the test's sign that the corpus went through. corpus_source.py is
// its twin for tomyum connect; the same corpus and transforms go through both workers.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class CorpusSource extends SourceConnector {
    private Map<String, String> props;

    @Override public void start(Map<String, String> props) { this.props = props; }
    @Override public Class<? extends Task> taskClass() { return CorpusTask.class; }
    @Override public List<Map<String, String>> taskConfigs(int maxTasks) { return List.of(props); }
    @Override public void stop() { }
    @Override public ConfigDef config() {
        return new ConfigDef()
            .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the corpus file")
            .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the topic")
            .define("done.file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "created when all is committed");
    }
    @Override public String version() { return "1"; }

    public static class CorpusTask extends SourceTask {
        private String file;
        private String topic;
        private String doneFile;
        private boolean done;
        private int expected = -1;
        private int committed;
        private final JsonConverter converter = new JsonConverter();
        private final ObjectMapper mapper = new ObjectMapper();

        @Override public String version() { return "1"; }

        @Override public void start(Map<String, String> props) {
            file = props.get("file");
            topic = props.get("topic");
            doneFile = props.get("done.file");
            converter.configure(Map.of("schemas.enable", "true"), false);
        }

        private SchemaAndValue decode(JsonNode envelope) throws Exception {
            if (envelope == null || envelope.isNull()) {
                return SchemaAndValue.NULL;
            }
            return converter.toConnectData(topic, mapper.writeValueAsBytes(envelope));
        }

        @Override public List<SourceRecord> poll() throws InterruptedException {
            if (done) {
                Thread.sleep(100);
                return null;
            }
            done = true;
            List<SourceRecord> records = new ArrayList<>();
            try {
                List<String> lines = Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8);
                expected = lines.size();
                for (int i = 0; i < lines.size(); i++) {
                    JsonNode line = mapper.readTree(lines.get(i));
                    SchemaAndValue key = decode(line.get("key"));
                    SchemaAndValue value = decode(line.get("value"));
                    ConnectHeaders headers = new ConnectHeaders();
                    for (JsonNode h : line.get("headers")) {
                        SchemaAndValue hv = decode(h.get(1));
                        headers.add(h.get(0).asText(), hv.value(), hv.schema());
                    }
                    records.add(new SourceRecord(Collections.singletonMap("file", file),
                        Collections.singletonMap("line", i), topic, null, key.schema(), key.value(),
                        value.schema(), value.value(), line.get("timestamp").asLong(), headers));
                }
            } catch (Exception e) {
                throw new org.apache.kafka.connect.errors.ConnectException(e);
            }
            return records;
        }

        @Override public synchronized void commitRecord(SourceRecord record, RecordMetadata metadata) {
            if (++committed == expected) {
                try {
                    Files.createFile(Paths.get(doneFile));
                } catch (java.io.IOException e) {
                    throw new org.apache.kafka.connect.errors.ConnectException(e);
                }
            }
        }

        @Override public void stop() { }
    }
}
