package main

// IBM/sarama: SyncProducer (idempotent and transactional), Consumer, ConsumerGroup, ClusterAdmin.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

var saramaCommands = map[string]command{
	"produce": saramaProduce,
	"consume": saramaConsume,
	"member":  saramaMember,
	"txn":     saramaTxn,
	"admin":   saramaAdmin,
}

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func saramaConfig(o *opts) (*sarama.Config, error) {
	codec, ok := saramaCodecs[o.compression]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", o.compression)
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "tomyum-interop-sarama"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Compression = codec
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	if o.idempotent || o.txnID != "" {
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		cfg.Producer.Retry.Max = 20 // as Java's idempotent producer, keep retrying (sarama's default is 3)
	}
	if o.txnID != "" {
		cfg.Producer.Transaction.ID = o.txnID
	}
	if o.isolation == "read_committed" {
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	// sarama shares one connection between the member's fetches and its commits, so a commit
	// waits behind a parked fetch (as it would with Kafka); the default 500 ms makes every
	// commit take about a second
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	return cfg, cfg.Validate()
}

func saramaMessages(o *opts) []*sarama.ProducerMessage {
	msgs := []*sarama.ProducerMessage{}
	for _, r := range o.records() {
		keys := make([]string, 0, len(r.headers))
		for k := range r.headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		headers := []sarama.RecordHeader{}
		for _, k := range keys {
			headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(r.headers[k])})
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: o.topic, Partition: r.partition,
			Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value), Headers: headers})
	}
	return msgs
}

func saramaSend(p sarama.SyncProducer, o *opts) error {
	msgs := saramaMessages(o)
	for _, c := range o.chunks(len(msgs)) {
		if err := p.SendMessages(msgs[c[0]:c[1]]); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				return fmt.Errorf("produce: %w (first: %w)", err, perrs[0].Err)
			}
			return fmt.Errorf("produce: %w", err)
		}
	}
	for _, m := range msgs {
		v, _ := m.Value.Encode()
		emit("produced", map[string]any{"partition": m.Partition, "offset": m.Offset, "value": string(v)})
	}
	return nil
}

func saramaProducer(o *opts) (sarama.SyncProducer, error) {
	cfg, err := saramaConfig(o)
	if err != nil {
		return nil, err
	}
	return sarama.NewSyncProducer(o.brokers, cfg)
}

func saramaProduce(_ context.Context, o *opts) error {
	p, err := saramaProducer(o)
	if err != nil {
		return err
	}
	defer p.Close()
	return saramaSend(p, o)
}

func saramaHeaders(m *sarama.ConsumerMessage) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[string(h.Key)] = string(h.Value)
	}
	return out
}

// saramaConsume reads every partition from its start until -count records (and -linger more).
func saramaConsume(ctx context.Context, o *opts) error {
	cfg, err := saramaConfig(o)
	if err != nil {
		return err
	}
	consumer, err := sarama.NewConsumer(o.brokers, cfg)
	if err != nil {
		return err
	}
	defer consumer.Close()
	records := make(chan consumed)
	errs := make(chan error, o.partitions)
	for p := 0; p < o.partitions; p++ {
		pc, err := consumer.ConsumePartition(o.topic, int32(p), sarama.OffsetOldest)
		if err != nil {
			return err
		}
		defer pc.AsyncClose()
		go func() {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case records <- consumed{m.Partition, m.Offset, m.Key, m.Value, saramaHeaders(m)}:
					case <-ctx.Done():
						return
					}
				case e, ok := <-pc.Errors():
					if ok {
						errs <- e
					}
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return collect(ctx, o, records, errs)
}

// saramaHandler is a sarama.ConsumerGroupHandler that reports assignments and hands every
// message to onMessage.
type saramaHandler struct {
	topic     string
	onMessage func(sarama.ConsumerGroupSession, *sarama.ConsumerMessage)
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	owned := map[int32]bool{}
	for _, p := range s.Claims()[h.topic] {
		owned[p] = true
	}
	emitAssigned(owned)
	return nil
}

func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.onMessage(s, m)
		case <-s.Context().Done():
			return nil
		}
	}
}

// saramaGroup runs a ConsumerGroup member in the background until ctx ends; wait() closes
// it (a LeaveGroup) and returns.
func saramaGroup(ctx context.Context, o *opts, h *saramaHandler) (wait func(), err error) {
	cfg, err := saramaConfig(o)
	if err != nil {
		return nil, err
	}
	g, err := sarama.NewConsumerGroup(o.brokers, o.group, cfg)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{o.topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				emit("group_error", map[string]any{"error": err.Error()})
				time.Sleep(100 * time.Millisecond) // back off before joining again
			}
		}
	}()
	go func() {
		for err := range g.Errors() {
			emit("group_error", map[string]any{"error": err.Error()})
		}
	}()
	return func() {
		wg.Wait()
		g.Close()
		emit("closed", nil)
	}, nil
}

// saramaMember is a group member until SIGTERM, committing after every message.
func saramaMember(ctx context.Context, o *opts) error {
	h := &saramaHandler{topic: o.topic, onMessage: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
		emitRecord(m.Partition, m.Offset, m.Key, m.Value, saramaHeaders(m))
		s.MarkMessage(m, "")
		s.Commit()
		emit("committed", map[string]any{"partition": m.Partition, "offset": m.Offset + 1})
	}}
	wait, err := saramaGroup(ctx, o, h)
	if err != nil {
		return err
	}
	<-ctx.Done()
	wait()
	return nil
}

// saramaTxn commits a transaction of -count records (prefix committed) then aborts one.
func saramaTxn(_ context.Context, o *opts) error {
	p, err := saramaProducer(o)
	if err != nil {
		return err
	}
	defer p.Close()
	for _, outcome := range []string{"committed", "aborted"} {
		if err := p.BeginTxn(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		o.prefix = outcome
		if err := saramaSend(p, o); err != nil {
			return err
		}
		end := p.CommitTxn
		if outcome == "aborted" {
			end = p.AbortTxn
		}
		if err := end(); err != nil {
			return fmt.Errorf("end %s: %w", outcome, err)
		}
		emit("transaction", map[string]any{"outcome": outcome, "count": o.count})
	}
	return nil
}
