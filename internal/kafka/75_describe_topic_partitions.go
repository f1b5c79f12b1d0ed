package kafka

// Behavior (KIP-966):
//
//   - Topics are described in name order: the requested ones (duplicates
//     once), or every topic when the list is empty. Unknown requested topics
//     answer UNKNOWN_TOPIC_OR_PARTITION with no partitions (INVALID_TOPIC_
//     EXCEPTION for an illegal name).
//   - Pagination: at most ResponsePartitionLimit partitions per response
//     (capped at maxDescribePartitions, Kafka's default
//     max.request.partition.size.limit; <= 0 means the cap). A Cursor
//     (topic, partition) starts the answer there, skipping topics that sort
//     before it. When the limit cuts the list, NextCursor names the first
//     partition not returned (the next topic's partition 0 when a topic
//     ended exactly at the limit); otherwise it is null.
//   - Partitions are led by this node with replicas = ISR = [it]; the
//     eligible-leader lists are empty (no ELR on a single node).
//     AuthorizedOperations reports "all" until ACLs exist.
//
// Version notes:
//   - v0 is the only version.

import (
	"slices"
	"sort"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDescribePartitions is Kafka's max.request.partition.size.limit default.
const maxDescribePartitions = 2000

func handleDescribeTopicPartitions(b *Broker, r *kmsg.DescribeTopicPartitionsRequest) (*kmsg.DescribeTopicPartitionsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	im := b.meta.Image()
	limit := int(r.ResponsePartitionLimit)
	if limit <= 0 || limit > maxDescribePartitions {
		limit = maxDescribePartitions
	}
	var cursorTopic string
	var cursorPart int32
	if r.Cursor != nil {
		cursorTopic, cursorPart = r.Cursor.Topic, max(r.Cursor.Partition, 0)
	}
	// Both lists are in name order: start at the cursor's topic by binary
	// search, so walking all pages of 100k partitions stays linear.
	var names []string
	var sorted []*metadata.Topic
	n := 0
	if len(r.Topics) == 0 {
		sorted = im.SortedTopics()
		n = len(sorted)
	} else {
		names = make([]string, 0, len(r.Topics))
		for _, rt := range r.Topics {
			names = append(names, rt.Topic)
		}
		slices.Sort(names)
		names = slices.Compact(names)
		n = len(names)
	}
	nameAt := func(i int) string {
		if sorted != nil {
			return sorted[i].Name
		}
		return names[i]
	}
	nodes := []int32{b.opts.NodeID} // replicas = ISR for every partition, shared
	first := sort.Search(n, func(i int) bool { return nameAt(i) >= cursorTopic })
	for i := first; i < n; i++ {
		name := nameAt(i)
		start := int32(0)
		if name == cursorTopic {
			start = cursorPart
		}
		var t *metadata.Topic
		if sorted != nil {
			t = sorted[i]
		} else {
			t = im.Topics[name]
		}
		if t == nil {
			dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
			dt.Topic = kmsg.StringPtr(name)
			dt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validateTopicName(name) != nil {
				dt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, dt)
			continue
		}
		if limit == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: start}
			break
		}
		dt, next := b.describeTopicPartitions(im, t, start, &limit, nodes)
		resp.Topics = append(resp.Topics, dt)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
	}
	return resp, nil
}

// describeTopicPartitions describes t's partitions from start while *limit
// allows, decrementing it; next is the first partition left out, or -1.
// nodes ([this node]) stands for the replicas of a partition not placed yet.
func (b *Broker) describeTopicPartitions(im *metadata.Image, t *metadata.Topic, start int32, limit *int, nodes []int32) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic = kmsg.StringPtr(t.Name)
	dt.TopicID = t.ID
	dt.IsInternal = t.Internal
	dt.AuthorizedOperations = allOperations
	dt.Partitions = make([]kmsg.DescribeTopicPartitionsResponseTopicPartition, 0, max(0, min(int(t.Partitions-start), *limit)))
	ts := b.topic(t.Name)
	empty := []int32{}
	for i := start; i < t.Partitions; i++ {
		if *limit == 0 {
			return dt, i
		}
		*limit--
		dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		dp.Partition = i
		dp.LeaderID, dp.LeaderEpoch = b.leaderOf(im, t, i)
		dp.Replicas, dp.ISR = replicasOf(t, i, nodes)
		dp.EligibleLeaderReplicas = empty
		dp.LastKnownELR = empty
		dp.OfflineReplicas = empty
		switch {
		case dp.LeaderID < 0:
			dp.ErrorCode = kerr.LeaderNotAvailable.Code
			dp.ISR, dp.OfflineReplicas = empty, dp.Replicas
		case dp.LeaderID != b.opts.NodeID:
		case ts != nil && int(i) < len(ts.parts):
			dp.LeaderEpoch = ts.parts[i].LeaderEpoch()
			if ts.parts[i].Failed() {
				dp.ErrorCode = kerr.KafkaStorageError.Code
				dp.OfflineReplicas = dp.Replicas
			}
		default:
			dp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		dt.Partitions = append(dt.Partitions, dp)
	}
	return dt, -1
}
