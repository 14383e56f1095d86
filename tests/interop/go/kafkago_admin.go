package main

// segmentio/kafka-go's kafka.Client: the same scenario as franzAdmin (its DescribeGroups
// reports no protocol type).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

func kafkagoAdmin(ctx context.Context, o *opts) error {
	cl := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 30 * time.Second}
	created, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: o.topic, NumPartitions: 3, ReplicationFactor: 1}}})
	if err == nil {
		err = created.Errors[o.topic]
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	emit("created", map[string]any{"topic": o.topic})
	if err := kafkagoDescribeTopic(ctx, cl, o.topic); err != nil {
		return err
	}

	o.partitions, o.count = 1, 5
	if err := kafkagoProduce(ctx, o); err != nil {
		return err
	}
	listed, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		o.topic: {kafka.FirstOffsetOf(0), kafka.FirstOffsetOf(1), kafka.FirstOffsetOf(2),
			kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)}}})
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	start, end := map[string]int64{}, map[string]int64{}
	for _, p := range listed.Topics[o.topic] {
		if p.Error != nil {
			return fmt.Errorf("list offsets of %d: %w", p.Partition, p.Error)
		}
		start[fmt.Sprint(p.Partition)], end[fmt.Sprint(p.Partition)] = p.FirstOffset, p.LastOffset
	}
	emit("offsets", map[string]any{"which": "start", "offsets": start})
	emit("offsets", map[string]any{"which": "end", "offsets": end})

	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, Topic: o.topic, GroupID: o.group,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond})
	defer reader.Close()
	for got := 0; got < 5; got++ {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("group member read %d of 5: %w", got, err)
		}
		if err := reader.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	if _, err := kafkagoDescribeGroup(ctx, cl, o.group, true); err != nil {
		return err
	}
	fetched, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: o.group,
		Topics: map[string][]int{o.topic: {0, 1, 2}}})
	if err == nil {
		err = fetched.Error
	}
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	committed := map[string]int64{}
	for _, p := range fetched.Topics[o.topic] {
		committed[fmt.Sprint(p.Partition)] = p.CommittedOffset
	}
	emit("group_offsets", map[string]any{"offsets": committed})
	reader.Close() // leaves the group
	for {
		state, err := kafkagoDescribeGroup(ctx, cl, o.group, false)
		if err != nil {
			return fmt.Errorf("describe after leave: %w", err)
		}
		if state == "Empty" {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the group never became Empty after its member left")
		case <-time.After(50 * time.Millisecond):
		}
	}
	deleted, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{o.group}})
	if err == nil {
		err = deleted.Errors[o.group]
	}
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	emit("group_deleted", map[string]any{"group": o.group})
	gone, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{o.topic}})
	if err == nil {
		err = gone.Errors[o.topic]
	}
	if err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	meta, err := kafkagoMetadata(ctx, cl, nil)
	if err != nil {
		return err
	}
	listedAfter := false
	for _, t := range meta.Topics {
		listedAfter = listedAfter || t.Name == o.topic
	}
	emit("topic_deleted", map[string]any{"still_listed": listedAfter})
	return nil
}

// kafkagoMetadata asks the broker: kafka-go's Transport answers Metadata from a cache it
// refreshes every 6 s, so the request goes through a Transport of its own.
func kafkagoMetadata(ctx context.Context, cl *kafka.Client, topics []string) (*kafka.MetadataResponse, error) {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	fresh := &kafka.Client{Addr: cl.Addr, Timeout: cl.Timeout, Transport: transport}
	return fresh.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
}

func kafkagoDescribeTopic(ctx context.Context, cl *kafka.Client, topic string) error {
	meta, err := kafkagoMetadata(ctx, cl, []string{topic})
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, t := range meta.Topics {
		if t.Name == topic {
			emit("topic", map[string]any{"partitions": len(t.Partitions)})
			return t.Error
		}
	}
	return fmt.Errorf("topic %s not in metadata", topic)
}

// kafkagoDescribeGroup returns the group's state; with report, it emits the description too.
func kafkagoDescribeGroup(ctx context.Context, cl *kafka.Client, group string, report bool) (string, error) {
	described, err := cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return "", fmt.Errorf("describe group: %w", err)
	}
	g := described.Groups[0]
	if g.Error != nil {
		return "", fmt.Errorf("describe group: %w", g.Error)
	}
	if report {
		assigned := []int{}
		for _, m := range g.Members {
			for _, t := range m.MemberAssignments.Topics {
				assigned = append(assigned, t.Partitions...)
			}
		}
		emit("group", map[string]any{"state": g.GroupState, "members": len(g.Members), "assigned": assigned})
	}
	return g.GroupState, nil
}
