// Command interop drives one Go Kafka client against a broker and reports what happened as
// JSON lines on stdout, one object per event, for tests/interop/test_go_clients.py to check:
//
//	interop <client> <command> -brokers host:port -topic t [flags]
//
// client is franz (twmb/franz-go + kadm), sarama (IBM/sarama) or kafkago (segmentio/kafka-go);
// commands are produce, consume, member, txn, eos, admin and describe-producers, as far as
// the client has them. Every run ends by itself: at -timeout, on SIGTERM, or when done. Errors
// are an {"event":"error"} line and exit status 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// opts are the flags every command shares; each command reads the ones it needs.
type opts struct {
	client      string
	brokers     []string
	topic       string
	out         string
	group       string
	prefix      string
	from        int
	count       int
	batch       int
	partitions  int
	compression string
	isolation   string
	protocol    string
	txnID       string
	idempotent  bool
	linger      time.Duration
	timeout     time.Duration
}

type command func(ctx context.Context, o *opts) error

var commands = map[string]map[string]command{
	"franz":   franzCommands,
	"sarama":  saramaCommands,
	"kafkago": kafkagoCommands,
}

var emitMu sync.Mutex

// emit writes one JSON line; it is safe from any goroutine.
func emit(event string, fields map[string]any) {
	out := map[string]any{"event": event}
	for k, v := range fields {
		out[k] = v
	}
	line, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	emitMu.Lock()
	defer emitMu.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

// record is what produce sends and the tests expect back: record i goes to partition
// i % partitions with key k-(i%5), value <prefix>-i and two headers.
type record struct {
	partition int32
	key       string
	value     string
	headers   map[string]string
}

func (o *opts) records() []record {
	out := make([]record, 0, o.count)
	for i := o.from; i < o.from+o.count; i++ {
		out = append(out, record{
			partition: int32(i % o.partitions),
			key:       fmt.Sprintf("k-%d", i%5),
			value:     fmt.Sprintf("%s-%d", o.prefix, i),
			headers:   map[string]string{"seq": fmt.Sprint(i), "client": o.client},
		})
	}
	return out
}

// chunks splits n records into the -batch sized runs produce sends one after the other.
func (o *opts) chunks(n int) [][2]int {
	size := o.batch
	if size <= 0 {
		size = n
	}
	out := [][2]int{}
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// consumed is one record as a consumer got it.
type consumed struct {
	partition  int32
	offset     int64
	key, value []byte
	headers    map[string]string
}

func emitRecord(partition int32, offset int64, key, value []byte, headers map[string]string) {
	emit("record", map[string]any{"partition": partition, "offset": offset, "key": string(key),
		"value": string(value), "headers": headers})
}

// collect reports the records that arrive until there are -count (then it reads -linger
// more), a reader fails, or ctx ends before -count.
func collect(ctx context.Context, o *opts, records <-chan consumed, errs <-chan error) error {
	n := 0
	var lingerDone <-chan time.Time
	for {
		if n >= o.count && lingerDone == nil {
			if o.linger == 0 {
				return nil
			}
			lingerDone = time.After(o.linger)
		}
		select {
		case r := <-records:
			emitRecord(r.partition, r.offset, r.key, r.value, r.headers)
			n++
		case err := <-errs:
			return fmt.Errorf("consume: %w", err)
		case <-lingerDone:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("consumed %d of %d records", n, o.count)
		}
	}
}

func emitAssigned(owned map[int32]bool) {
	parts := []int32{}
	for p, ok := range owned {
		if ok {
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	emit("assigned", map[string]any{"partitions": parts})
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: interop <franz|sarama|kafkago> <command> [flags]")
		os.Exit(2)
	}
	client, name := os.Args[1], os.Args[2]
	run, ok := commands[client][name]
	if !ok {
		fmt.Fprintf(os.Stderr, "interop: %s has no command %s\n", client, name)
		os.Exit(2)
	}
	o := &opts{client: client}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap host:port[,host:port]")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.StringVar(&o.out, "out", "", "output topic (eos)")
	fs.StringVar(&o.group, "group", "", "consumer group id")
	fs.StringVar(&o.prefix, "prefix", "v", "value prefix")
	fs.IntVar(&o.from, "from", 0, "index of the first record")
	fs.IntVar(&o.count, "count", 10, "records to produce or consume")
	fs.IntVar(&o.batch, "batch", 0, "produce: send and wait for this many records at a time (0: all at once)")
	fs.IntVar(&o.partitions, "partitions", 1, "partitions of the topic")
	fs.StringVar(&o.compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&o.isolation, "isolation", "read_uncommitted", "read_committed or read_uncommitted")
	fs.StringVar(&o.protocol, "protocol", "classic", "group protocol: classic or consumer (KIP-848)")
	fs.StringVar(&o.txnID, "txn-id", "", "transactional id")
	fs.BoolVar(&o.idempotent, "idempotent", false, "idempotent producer (sarama; franz is by default)")
	fs.DurationVar(&o.linger, "linger", 0, "after count records, go on reading this long")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	o.brokers = strings.Split(*brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o); err != nil {
		emit("error", map[string]any{"error": err.Error()})
		os.Exit(1)
	}
	emit("done", nil)
}
