package main

// twmb/franz-go (kgo) and its admin client kadm.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var franzCommands = map[string]command{
	"produce":            franzProduce,
	"consume":            franzConsume,
	"member":             franzMember,
	"txn":                franzTxn,
	"eos":                franzEOS,
	"admin":              franzAdmin,
	"describe-producers": franzDescribeProducers,
}

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func franzRecord(topic string, r record) *kgo.Record {
	keys := make([]string, 0, len(r.headers))
	for k := range r.headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	headers := make([]kgo.RecordHeader, 0, len(keys))
	for _, k := range keys {
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(r.headers[k])})
	}
	return &kgo.Record{Topic: topic, Partition: r.partition, Key: []byte(r.key), Value: []byte(r.value),
		Headers: headers}
}

func franzHeaders(r *kgo.Record) map[string]string {
	out := map[string]string{}
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// franzProducer: records go to the partition they name; franz-go is idempotent by default.
func franzProducer(o *opts, extra ...kgo.Opt) (*kgo.Client, error) {
	codec, ok := franzCodecs[o.compression]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", o.compression)
	}
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(5 * time.Millisecond)}, extra...)...)
}

func franzProduceAll(ctx context.Context, cl *kgo.Client, o *opts) error {
	recs := []*kgo.Record{}
	for _, r := range o.records() {
		recs = append(recs, franzRecord(o.topic, r))
	}
	for _, c := range o.chunks(len(recs)) {
		results := cl.ProduceSync(ctx, recs[c[0]:c[1]]...)
		if err := results.FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		for _, res := range results {
			emit("produced", map[string]any{"partition": res.Record.Partition, "offset": res.Record.Offset,
				"value": string(res.Record.Value)})
		}
	}
	return nil
}

func franzProduce(ctx context.Context, o *opts) error {
	cl, err := franzProducer(o)
	if err != nil {
		return err
	}
	defer cl.Close()
	return franzProduceAll(ctx, cl, o)
}

func franzIsolation(o *opts) kgo.Opt {
	if o.isolation == "read_committed" {
		return kgo.FetchIsolationLevel(kgo.ReadCommitted())
	}
	return kgo.FetchIsolationLevel(kgo.ReadUncommitted())
}

// franzConsume reads every partition from its start until -count records (and -linger more).
func franzConsume(ctx context.Context, o *opts) error {
	parts := map[int32]kgo.Offset{}
	for p := 0; p < o.partitions; p++ {
		parts[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), franzIsolation(o),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: parts}))
	if err != nil {
		return err
	}
	defer cl.Close()
	n := 0
	pollCtx := ctx
	for {
		if n >= o.count && pollCtx == ctx {
			if o.linger == 0 {
				return nil
			}
			var cancel context.CancelFunc
			pollCtx, cancel = context.WithTimeout(ctx, o.linger)
			defer cancel()
		}
		fetches := cl.PollFetches(pollCtx)
		if pollCtx.Err() != nil {
			if n >= o.count {
				return nil
			}
			return fmt.Errorf("consumed %d of %d records", n, o.count)
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			emitRecord(r.Partition, r.Offset, r.Key, r.Value, franzHeaders(r))
			n++
		})
	}
}

// franzMember is a group member until SIGTERM: it reports every assignment change, every
// record, and commits after every poll (then reports the committed offsets).
func franzMember(ctx context.Context, o *opts) error {
	var mu sync.Mutex
	owned := map[int32]bool{}
	change := func(assigned bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[o.topic] {
				owned[p] = assigned
			}
			emitAssigned(owned)
		}
	}
	kopts := []kgo.Opt{kgo.SeedBrokers(o.brokers...), kgo.ConsumeTopics(o.topic), kgo.ConsumerGroup(o.group),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(change(true)), kgo.OnPartitionsRevoked(change(false)),
		kgo.OnPartitionsLost(change(false))}
	if o.protocol == "consumer" {
		kopts = append(kopts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer func() {
		cl.Close() // leaves the group
		emit("closed", nil)
	}()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetches.Err(); err != nil {
			emit("fetch_error", map[string]any{"error": err.Error()})
			continue
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		last := map[int32]int64{}
		for _, r := range recs {
			emitRecord(r.Partition, r.Offset, r.Key, r.Value, franzHeaders(r))
			last[r.Partition] = r.Offset + 1
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			emit("commit_error", map[string]any{"error": err.Error()})
			continue
		}
		for p, off := range last {
			emit("committed", map[string]any{"partition": p, "offset": off})
		}
	}
}

// franzTxn commits a transaction of -count records (prefix committed) then aborts one
// (prefix aborted), both spread over -partitions.
func franzTxn(ctx context.Context, o *opts) error {
	cl, err := franzProducer(o, kgo.TransactionalID(o.txnID), kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, outcome := range []struct {
		prefix string
		commit kgo.TransactionEndTry
	}{{"committed", kgo.TryCommit}, {"aborted", kgo.TryAbort}} {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		o.prefix = outcome.prefix
		if err := franzProduceAll(ctx, cl, o); err != nil {
			return err
		}
		if err := cl.EndTransaction(ctx, outcome.commit); err != nil {
			return fmt.Errorf("end %s: %w", outcome.prefix, err)
		}
		emit("transaction", map[string]any{"outcome": outcome.prefix, "count": o.count})
	}
	return nil
}

// franzEOS is a GroupTransactSession consume-transform-produce loop: every record of -topic
// becomes out-<value> in -out, with its input offset committed in the same transaction; it
// stops after -count records have been committed.
func franzEOS(ctx context.Context, o *opts) error {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(o.brokers...), kgo.TransactionalID(o.txnID),
		kgo.ConsumeTopics(o.topic), kgo.ConsumerGroup(o.group), kgo.DefaultProduceTopic(o.out),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second),
		kgo.TransactionTimeout(30*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer sess.Close()
	done := 0
	for done < o.count {
		fetches := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("committed %d of %d: %w", done, o.count, ctx.Err())
		}
		if err := fetches.Err(); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for _, r := range recs {
			out := &kgo.Record{Partition: r.Partition, Key: r.Key, Value: append([]byte("out-"), r.Value...)}
			sess.Produce(ctx, out, func(_ *kgo.Record, err error) {
				if err != nil {
					emit("produce_error", map[string]any{"error": err.Error()})
				}
			})
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return fmt.Errorf("end: %w", err)
		}
		if committed {
			done += len(recs)
		}
		emit("transaction", map[string]any{"committed": committed, "records": len(recs)})
	}
	return nil
}

// franzDescribeProducers reports the idempotent producers the broker knows per partition
// (DescribeProducers): the oracle of the idempotence tests for every client.
func franzDescribeProducers(ctx context.Context, o *opts) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	set := kadm.TopicsSet{}
	for p := 0; p < o.partitions; p++ {
		set.Add(o.topic, int32(p))
	}
	described, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return err
	}
	for _, ps := range described[o.topic].Partitions {
		if ps.Err != nil {
			return fmt.Errorf("partition %d: %w", ps.Partition, ps.Err)
		}
		for _, p := range ps.ActiveProducers {
			emit("producer", map[string]any{"partition": ps.Partition, "producer_id": p.ProducerID,
				"producer_epoch": p.ProducerEpoch, "last_sequence": p.LastSequence})
		}
	}
	return nil
}

// franzAdmin: kadm creates a 3-partition topic, lists it and its offsets (after 5 records to
// partition 0), describes a group with one live member and its committed offsets, then deletes
// the group and the topic.
func franzAdmin(ctx context.Context, o *opts) error {
	cl, err := franzProducer(o)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, 3, 1, nil, o.topic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	emit("created", map[string]any{"topic": o.topic})
	topics, err := adm.ListTopics(ctx, o.topic)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	emit("topic", map[string]any{"partitions": len(topics[o.topic].Partitions)})

	o.partitions, o.count = 1, 5
	if err := franzProduceAll(ctx, cl, o); err != nil {
		return err
	}
	for _, which := range []string{"start", "end"} {
		list := adm.ListStartOffsets
		if which == "end" {
			list = adm.ListEndOffsets
		}
		listed, err := list(ctx, o.topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return fmt.Errorf("list %s offsets: %w", which, err)
		}
		offsets := map[string]int64{}
		listed.Each(func(l kadm.ListedOffset) { offsets[fmt.Sprint(l.Partition)] = l.Offset })
		emit("offsets", map[string]any{"which": which, "offsets": offsets})
	}

	member, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ConsumeTopics(o.topic),
		kgo.ConsumerGroup(o.group), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer member.Close()
	for got := 0; got < 5; {
		fetches := member.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("group member read %d of 5", got)
		}
		got += len(fetches.Records())
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := franzDescribeGroup(ctx, adm, o.group); err != nil {
		return err
	}
	fetched, err := adm.FetchOffsets(ctx, o.group)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	committed := map[string]int64{}
	fetched.Each(func(r kadm.OffsetResponse) { committed[fmt.Sprint(r.Partition)] = r.At })
	emit("group_offsets", map[string]any{"offsets": committed})
	member.Close()
	for {
		described, err := adm.DescribeGroups(ctx, o.group)
		if err != nil {
			return fmt.Errorf("describe after leave: %w", err)
		}
		if described[o.group].State == "Empty" {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the group never became Empty after its member left")
		case <-time.After(50 * time.Millisecond):
		}
	}
	deleted, err := adm.DeleteGroups(ctx, o.group)
	if err == nil {
		err = deleted.Error()
	}
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	emit("group_deleted", map[string]any{"group": o.group})
	gone, err := adm.DeleteTopics(ctx, o.topic)
	if err == nil {
		err = gone.Error()
	}
	if err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	topics, err = adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	emit("topic_deleted", map[string]any{"still_listed": topics.Has(o.topic)})
	return nil
}

func franzDescribeGroup(ctx context.Context, adm *kadm.Client, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	g := described[group]
	assigned := []int32{}
	for _, m := range g.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				assigned = append(assigned, t.Partitions...)
			}
		}
	}
	sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
	emit("group", map[string]any{"state": g.State, "protocol_type": g.ProtocolType, "protocol": g.Protocol,
		"members": len(g.Members), "assigned": assigned})
	return nil
}
