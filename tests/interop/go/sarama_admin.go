package main

// sarama's ClusterAdmin: the same scenario as franzAdmin.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

func saramaAdmin(ctx context.Context, o *opts) error {
	cfg, err := saramaConfig(o)
	if err != nil {
		return err
	}
	adm, err := sarama.NewClusterAdmin(o.brokers, cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := adm.CreateTopic(o.topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	emit("created", map[string]any{"topic": o.topic})
	topics, err := adm.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	emit("topic", map[string]any{"partitions": topics[o.topic].NumPartitions})

	o.partitions, o.count = 1, 5
	p, err := saramaProducer(o)
	if err != nil {
		return err
	}
	err = saramaSend(p, o)
	p.Close()
	if err != nil {
		return err
	}
	for _, which := range []string{"start", "end"} {
		at := map[string]int64{"start": sarama.OffsetOldest, "end": sarama.OffsetNewest}[which]
		listed, err := adm.ListOffsets(map[string]map[int32]int64{o.topic: {0: at, 1: at, 2: at}}, nil)
		if err != nil {
			return fmt.Errorf("list %s offsets: %w", which, err)
		}
		offsets := map[string]int64{}
		for part, r := range listed[o.topic] {
			if r.Err != sarama.ErrNoError {
				return fmt.Errorf("list %s offsets of %d: %w", which, part, r.Err)
			}
			offsets[fmt.Sprint(part)] = r.Offset
		}
		emit("offsets", map[string]any{"which": which, "offsets": offsets})
	}

	groupCtx, leave := context.WithCancel(ctx)
	defer leave()
	read := make(chan struct{})
	got := 0
	h := &saramaHandler{topic: o.topic, onMessage: func(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) {
		s.MarkMessage(m, "")
		s.Commit()
		if got++; got == 5 {
			close(read)
		}
	}}
	wait, err := saramaGroup(groupCtx, o, h)
	if err != nil {
		return err
	}
	select {
	case <-read:
	case <-ctx.Done():
		return fmt.Errorf("group member read %d of 5", got)
	}
	if err := saramaDescribeGroup(adm, o.group); err != nil {
		return err
	}
	fetched, err := adm.ListConsumerGroupOffsets(o.group, map[string][]int32{o.topic: {0, 1, 2}})
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	committed := map[string]int64{}
	for part, b := range fetched.Blocks[o.topic] {
		committed[fmt.Sprint(part)] = b.Offset
	}
	emit("group_offsets", map[string]any{"offsets": committed})
	leave()
	wait()
	for {
		described, err := adm.DescribeConsumerGroups([]string{o.group})
		if err != nil {
			return fmt.Errorf("describe after leave: %w", err)
		}
		if described[0].State == "Empty" {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the group never became Empty after its member left")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := adm.DeleteConsumerGroup(o.group); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	emit("group_deleted", map[string]any{"group": o.group})
	if err := adm.DeleteTopic(o.topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	topics, err = adm.ListTopics()
	if err != nil {
		return err
	}
	_, listed := topics[o.topic]
	emit("topic_deleted", map[string]any{"still_listed": listed})
	return nil
}

func saramaDescribeGroup(adm sarama.ClusterAdmin, group string) error {
	described, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	g := described[0]
	if g.Err != sarama.ErrNoError {
		return fmt.Errorf("describe group: %w", g.Err)
	}
	assigned := []int32{}
	for _, m := range g.Members {
		a, err := m.GetMemberAssignment()
		if err != nil {
			return fmt.Errorf("member assignment: %w", err)
		}
		for _, parts := range a.Topics {
			assigned = append(assigned, parts...)
		}
	}
	emit("group", map[string]any{"state": g.State, "protocol_type": g.ProtocolType, "protocol": g.Protocol,
		"members": len(g.Members), "assigned": assigned})
	return nil
}
