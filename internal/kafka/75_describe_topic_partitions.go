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

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDescribePartitions is Kafka's max.request.partition.size.limit default.
const maxDescribePartitions = 2000

func handleDescribeTopicPartitions(b *Broker, r *kmsg.DescribeTopicPartitionsRequest) (*kmsg.DescribeTopicPartitionsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	im := b.meta.Image()
	var names []string
	if len(r.Topics) == 0 {
		for _, t := range im.SortedTopics() {
			names = append(names, t.Name)
		}
	} else {
		for _, rt := range r.Topics {
			names = append(names, rt.Topic)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	}
	limit := int(r.ResponsePartitionLimit)
	if limit <= 0 || limit > maxDescribePartitions {
		limit = maxDescribePartitions
	}
	var cursorTopic string
	var cursorPart int32
	if r.Cursor != nil {
		cursorTopic, cursorPart = r.Cursor.Topic, max(r.Cursor.Partition, 0)
	}
	for _, name := range names {
		if name < cursorTopic {
			continue
		}
		start := int32(0)
		if name == cursorTopic {
			start = cursorPart
		}
		t := im.Topics[name]
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
		dt, next := b.describeTopicPartitions(t, start, &limit)
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
func (b *Broker) describeTopicPartitions(t *metadata.Topic, start int32, limit *int) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic = kmsg.StringPtr(t.Name)
	dt.TopicID = t.ID
	dt.IsInternal = t.Internal
	dt.AuthorizedOperations = allOperations
	dt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	ts := b.topic(t.Name)
	for i := start; i < t.Partitions; i++ {
		if *limit == 0 {
			return dt, i
		}
		*limit--
		dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		dp.Partition = i
		dp.LeaderID = b.opts.NodeID
		dp.Replicas = []int32{b.opts.NodeID}
		dp.ISR = []int32{b.opts.NodeID}
		dp.EligibleLeaderReplicas = []int32{}
		dp.LastKnownELR = []int32{}
		dp.OfflineReplicas = []int32{}
		if ts != nil && int(i) < len(ts.parts) {
			dp.LeaderEpoch = ts.parts[i].LeaderEpoch()
			if ts.parts[i].Log().Failed() {
				dp.ErrorCode = kerr.KafkaStorageError.Code
				dp.OfflineReplicas = []int32{b.opts.NodeID}
			}
		} else {
			dp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		dt.Partitions = append(dt.Partitions, dp)
	}
	return dt, -1
}
