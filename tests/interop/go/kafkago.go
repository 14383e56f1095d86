package main

// segmentio/kafka-go: Writer, Reader and the ConsumerGroup/Generation API. It has neither an
// idempotent nor a transactional producer.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

var kafkagoCommands = map[string]command{
	"produce": kafkagoProduce,
	"consume": kafkagoConsume,
	"member":  kafkagoMember,
	"admin":   kafkagoAdmin,
}

var kafkagoCodecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

func kafkagoProduce(ctx context.Context, o *opts) error {
	codec, ok := kafkagoCodecs[o.compression]
	if !ok {
		return fmt.Errorf("unknown compression %q", o.compression)
	}
	// the Writer picks partitions through its Balancer: record i goes to i % partitions
	balancer := kafka.BalancerFunc(func(m kafka.Message, _ ...int) int {
		for _, h := range m.Headers {
			if h.Key == "seq" {
				seq, _ := strconv.Atoi(string(h.Value))
				return seq % o.partitions
			}
		}
		return 0
	})
	w := &kafka.Writer{Addr: kafka.TCP(o.brokers...), Topic: o.topic, Balancer: balancer, Compression: codec,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000}
	defer w.Close()
	msgs := []kafka.Message{}
	for _, r := range o.records() {
		headers := []kafka.Header{{Key: "client", Value: []byte(r.headers["client"])},
			{Key: "seq", Value: []byte(r.headers["seq"])}}
		msgs = append(msgs, kafka.Message{Key: []byte(r.key), Value: []byte(r.value), Headers: headers})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for _, r := range o.records() { // the Writer reports no offsets: -1
		emit("produced", map[string]any{"partition": r.partition, "offset": -1, "value": r.value})
	}
	return nil
}

func kafkagoHeaders(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func kafkagoReader(o *opts, partition int) *kafka.Reader {
	isolation := kafka.ReadUncommitted
	if o.isolation == "read_committed" {
		isolation = kafka.ReadCommitted
	}
	return kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, Topic: o.topic, Partition: partition,
		IsolationLevel: isolation, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond})
}

// kafkagoConsume reads every partition from its start until -count records (and -linger more).
func kafkagoConsume(ctx context.Context, o *opts) error {
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	records := make(chan consumed)
	errs := make(chan error, o.partitions)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	for p := 0; p < o.partitions; p++ {
		r := kafkagoReader(o, p)
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(readCtx)
				if err != nil {
					if readCtx.Err() == nil {
						errs <- err
					}
					return
				}
				select {
				case records <- consumed{int32(m.Partition), m.Offset, m.Key, m.Value, kafkagoHeaders(m)}:
				case <-readCtx.Done():
					return
				}
			}
		}()
	}
	return collect(ctx, o, records, errs)
}

// kafkagoMember is a group member until SIGTERM: for each generation it reads its partitions
// from their committed offsets and commits after every message.
func kafkagoMember(ctx context.Context, o *opts) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: o.group, Brokers: o.brokers,
		Topics: []string{o.topic}, SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		RebalanceTimeout: 10 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset})
	if err != nil {
		return err
	}
	defer func() {
		cg.Close() // leaves the group
		emit("closed", nil)
	}()
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			emit("group_error", map[string]any{"error": err.Error()})
			continue
		}
		owned := map[int32]bool{}
		for _, pa := range gen.Assignments[o.topic] {
			owned[int32(pa.ID)] = true
			partition, offset := pa.ID, pa.Offset
			gen.Start(func(genCtx context.Context) {
				r := kafkagoReader(o, partition)
				defer r.Close()
				if err := r.SetOffset(offset); err != nil {
					emit("group_error", map[string]any{"error": err.Error()})
					return
				}
				for {
					m, err := r.ReadMessage(genCtx)
					if err != nil {
						return
					}
					emitRecord(int32(m.Partition), m.Offset, m.Key, m.Value, kafkagoHeaders(m))
					err = gen.CommitOffsets(map[string]map[int]int64{o.topic: {partition: m.Offset + 1}})
					if err != nil {
						emit("commit_error", map[string]any{"error": err.Error()})
						return
					}
					emit("committed", map[string]any{"partition": partition, "offset": m.Offset + 1})
				}
			})
		}
		emitAssigned(owned)
	}
}
