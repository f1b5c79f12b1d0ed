package kafka

// A broker in a cluster (issue 14, slice 2: placement; replication is
// replication.go and fetcher.go). The metadata image names each partition's replicas
// (metadata.Topic.Replicas, the leader first); a broker serves a partition
// only while it is its leader and answers NOT_LEADER_OR_FOLLOWER otherwise,
// naming the leader and its endpoint where the protocol can (KIP-951:
// Produce v10+, Fetch v16+), so clients re-route without a metadata
// round trip. Topics other brokers create, grow, reconfigure or delete reach
// this broker through the image (followImage). Coordinators live where the
// leader of their internal-topic partition is: FindCoordinator names it, and
// a group or transactional id whose partition another broker leads is
// answered NOT_COORDINATOR here.

import (
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leads reports whether this broker leads partition i of t.
func (b *Broker) leads(t *metadata.Topic, i int32) bool { return t.Leader(i) == b.opts.NodeID }

// servePartition returns partition i of ts if this broker leads it, or nil
// and the error code to answer: UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID
// for requests naming topics by id), NOT_LEADER_OR_FOLLOWER.
func (b *Broker) servePartition(ts *topicState, i int32, version int16) (*partition.Partition, int16) {
	p, missing := ts.partition(i, version)
	if p == nil {
		return nil, missing
	}
	if !b.leads(ts.meta, i) {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return p, 0
}

// localPartition is b.partition for requests about a partition's data:
// nil and NOT_LEADER_OR_FOLLOWER where another broker leads it.
func (b *Broker) localPartition(topic string, i int32) (*partition.Partition, int16) {
	ts := b.topic(topic)
	if ts == nil || i < 0 || int(i) >= len(ts.parts) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if !b.leads(ts.meta, i) {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return ts.parts[i], 0
}

// leaderOf returns partition i's leader as clients are told (-1 while it
// has none: unplaced, or its broker fenced or unregistered; this broker
// answers, so it counts as live) and its leader epoch.
func (b *Broker) leaderOf(im *metadata.Image, t *metadata.Topic, i int32) (int32, int32) {
	id := t.Leader(i)
	if id < 0 {
		return -1, -1
	}
	if id == b.opts.NodeID {
		return id, 0
	}
	if br := im.Brokers[id]; br == nil || br.Fenced {
		return -1, 0
	}
	return id, 0
}

// replicasOf returns partition i's replicas and ISR as Metadata reports
// them (unplaced: nodes). The in-sync set lives in the leader's memory
// until it is recorded in the metadata log (replication.go), so every
// replica is reported in sync.
func replicasOf(t *metadata.Topic, i int32, nodes []int32) ([]int32, []int32) {
	if int(i) < len(t.Replicas) && len(t.Replicas[i]) > 0 {
		return t.Replicas[i], t.Replicas[i]
	}
	return nodes, nodes
}

// currentReplicas returns partition i of topic's replicas as the image has
// them (nil if unknown).
func (b *Broker) currentReplicas(topic string, i int32) []int32 {
	t := b.meta.Image().Topics[topic]
	if t == nil || i < 0 || int(i) >= len(t.Replicas) {
		return nil
	}
	return t.Replicas[i]
}

// endpoints returns the registered, unfenced brokers among ids (each once):
// the NodeEndpoints of a KIP-951 answer.
func (b *Broker) endpoints(ids []int32) []endpoint {
	if len(ids) == 0 {
		return nil
	}
	var out []endpoint
	for _, e := range b.brokerList(b.meta.Image(), false) {
		if slices.Contains(ids, e.id) {
			out = append(out, e)
		}
	}
	return out
}

// coordinates reports whether this broker coordinates key: it leads the
// key's partition of the internal topic (OffsetsTopic for groups,
// TxnStateTopic for transactional ids). A topic not created yet is this
// broker's to create: it coordinates.
func (b *Broker) coordinates(topic, key string) bool {
	t := b.meta.Image().Topics[topic]
	if t == nil {
		return true
	}
	return b.leads(t, int32(statelog.PartitionFor(key, int(t.Partitions))))
}

// notCoordinator is NOT_COORDINATOR's code when this broker does not
// coordinate the group, 0 when it does.
func (b *Broker) notCoordinator(group string) int16 {
	if b.coordinates(OffsetsTopic, group) {
		return 0
	}
	return kerr.NotCoordinator.Code
}

// notTxnCoordinator is notCoordinator for a transactional id.
func (b *Broker) notTxnCoordinator(id string) int16 {
	if b.coordinates(TxnStateTopic, id) {
		return 0
	}
	return kerr.NotCoordinator.Code
}

// offsetsPartition is group's partition of __consumer_offsets.
func (b *Broker) offsetsPartition(group string) txn.TP {
	n := 1
	if ot := b.meta.Image().Topics[OffsetsTopic]; ot != nil {
		n = int(ot.Partitions)
	}
	return txn.TP{Topic: OffsetsTopic, Partition: int32(statelog.PartitionFor(group, n))}
}

// followImage keeps b.topics equal to the image's topics until ctx ends.
func (b *Broker) followImage(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.meta.Changes():
		}
		b.syncTopics()
		b.refreshFetchers()
	}
}

// syncTopics applies the image's topics to b.topics: topics another broker
// created or grew get partitions (directories made for those this broker
// holds a replica of), changed configs reach open logs, deleted topics are closed and
// their local files removed. Changes this broker made itself are already in
// b.topics (made under b.mu with the change, which marks the image synced
// when it was the only change: ownChange). When the image is one change of
// one topic past the last one synced, only that topic is compared;
// otherwise every topic is.
func (b *Broker) syncTopics() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	// Read under b.mu: a change this broker makes is in b.topics and in
	// the image together (both under b.mu), so an image read before the
	// lock could lack a topic b.topics has, which is not a deletion.
	im := b.meta.Image()
	names, ok := im.TopicsChangedSince(b.synced)
	if !ok {
		names = nil
		for name := range im.Topics {
			names = append(names, name)
		}
		for name := range b.topics {
			if im.Topics[name] == nil {
				names = append(names, name)
			}
		}
	}
	b.synced = im
	var created []*partition.Partition
	for _, name := range names {
		created = append(created, b.syncTopic(im, name)...)
	}
	if len(created) > 0 {
		if err := b.createDirs(created); err != nil {
			b.log.Error("could not create partition directories (retried on use)", "err", err)
		}
	}
}

// syncTopic brings b.topics[name] to the image's state and returns the
// partitions this broker holds a replica of that are new to it. Caller holds b.mu.
func (b *Broker) syncTopic(im *metadata.Image, name string) []*partition.Partition {
	t, ts := im.Topics[name], b.topics[name]
	switch {
	case t == nil && ts == nil:
		return nil
	case t == nil:
		b.dropTopic(name, ts)
		b.log.Info("topic deleted by another broker", "topic", name)
		return nil
	case ts != nil && ts.meta == t:
		return nil
	case ts != nil && ts.meta.ID != t.ID: // deleted and created again elsewhere
		b.dropTopic(name, ts)
		ts = nil
	}
	if ts == nil {
		ts = &topicState{meta: t}
		b.addParts(ts)
		b.topics[name] = ts
		b.log.Info("topic created by another broker", "topic", name, "partitions", t.Partitions, "id", t.ID.String())
		return b.hostedParts(ts, 0)
	}
	nts := &topicState{meta: t, parts: ts.parts}
	b.addParts(nts)
	b.topics[name] = nts
	segBytes, segAge := b.topicInt(t, "segment.bytes"), time.Duration(b.topicInt(t, "segment.ms"))*time.Millisecond
	for _, p := range ts.parts {
		p.SetSegmentLimits(segBytes, segAge)
	}
	return b.hostedParts(nts, len(ts.parts))
}

// ownChange records, after a change of topic name this broker made and
// applied to b.topics itself, that b.topics matches the image, unless another change
// came in between (then followImage compares). Caller holds b.mu.
func (b *Broker) ownChange(name string) {
	im := b.meta.Image()
	if names, ok := im.TopicsChangedSince(b.synced); ok && (len(names) == 0 || names[0] == name) {
		b.synced = im
	}
}

// hosts reports whether this broker holds a replica of partition i of t
// (leads or follows it: the leader is the first replica).
func (b *Broker) hosts(t *metadata.Topic, i int32) bool {
	return int(i) < len(t.Replicas) && slices.Contains(t.Replicas[i], b.opts.NodeID)
}

// hostedParts returns the partitions of ts from index from on that this
// broker holds a replica of (leads or follows).
func (b *Broker) hostedParts(ts *topicState, from int) []*partition.Partition {
	var out []*partition.Partition
	for i := from; i < len(ts.parts); i++ {
		if b.hosts(ts.meta, int32(i)) {
			out = append(out, ts.parts[i])
		}
	}
	return out
}

// dropTopic forgets a deleted topic and removes its local files. Caller
// holds b.mu.
func (b *Broker) dropTopic(name string, ts *topicState) {
	delete(b.topics, name)
	for i, p := range ts.parts {
		b.repl.forget(p)
		if err := p.Delete(); err != nil {
			b.log.Warn("could not remove partition files", "topic", name, "partition", i, "err", err)
		}
		os.RemoveAll(partitionDir(b.opts.DataDir, name, int32(i)))
	}
}

// remoteStatePartition stands for a partition of an internal topic that
// another broker leads: its coordinator state lives there, so this broker
// replays nothing from it and never appends to it (requests for its ids
// are answered NOT_COORDINATOR before reaching the coordinator).
type remoteStatePartition struct{}

var errNotLeader = errors.New("kafka: another broker leads this partition")

func (remoteStatePartition) Append([]kmsg.Record) (int64, func(context.Context) error, error) {
	return 0, nil, errNotLeader
}

func (remoteStatePartition) Replay(func(int64, *kmsg.Record) error) error { return nil }
