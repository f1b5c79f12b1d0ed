package kafka

// Behavior:
//
//   - NumPartitions -1 means num.partitions; ReplicationFactor -1 means
//     default.replication.factor; up to the live brokers is accepted
//     (replicas placed round-robin over them, the leader first,
//     metadata/placement.go; replication.go), more is
//     INVALID_REPLICATION_FACTOR. A manual ReplicaAssignment names
//     partitions 0..n-1, the same number of distinct registered brokers
//     each (INVALID_REPLICA_ASSIGNMENT otherwise).
//   - Configs are validated against the known topic configs (INVALID_CONFIG
//     naming the key); names against Kafka's rules (INVALID_TOPIC_EXCEPTION);
//     an existing topic is TOPIC_ALREADY_EXISTS; a name given twice in one
//     request is INVALID_REQUEST for both.
//   - ValidateOnly runs every check and creates nothing.
//   - v5+ responses carry the partition count, replication factor and the
//     effective configs; v7 the topic id.
//
// Version notes:
//   - v2 is the minimum (KIP-896).

import (
	"errors"
	"fmt"
	"sort"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(b *Broker, r *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, error) {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr("topic named more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := b.createTopicRequest(&rt, r.ValidateOnly)
		if err != nil {
			st.ErrorCode = createErrCode(err)
			var ke *kerr.Error
			if errors.As(err, &ke) {
				st.ErrorCode = ke.Code
			}
			st.ErrorMessage = kmsg.StringPtr(err.Error())
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.ID
		st.NumPartitions = t.Partitions
		st.ReplicationFactor = 1
		if len(t.Replicas) > 0 {
			st.ReplicationFactor = int16(len(t.Replicas[0]))
		}
		st.Configs = b.createTopicsConfigs(t)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createTopicRequest(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*metadata.Topic, error) {
	n := rt.NumPartitions
	var reps [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: set either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
		}
		n = int32(len(rt.ReplicaAssignment))
		reps = make([][]int32, n)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || a.Partition >= n || reps[a.Partition] != nil {
				return nil, fmt.Errorf("%w: partition %d: assignments must name partitions 0-%d once each", kerr.InvalidReplicaAssignment, a.Partition, n-1)
			}
			reps[a.Partition] = a.Replicas
		}
		if err := b.meta.Image().CheckAssignment(reps); err != nil {
			return nil, fmt.Errorf("%w: %v", kerr.InvalidReplicaAssignment, err)
		}
	}
	if n == -1 {
		n = b.settings().partitions
	}
	rf := rt.ReplicationFactor
	switch {
	case len(rt.ReplicaAssignment) > 0:
		rf = int16(len(reps[0]))
	case rf == -1:
		rf = b.opts.DefaultReplicationFactor
	case rf < 1:
		return nil, fmt.Errorf("%w: %d (must be at least 1, or -1 for default.replication.factor)", kerr.InvalidReplicationFactor, rf)
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue // null means "use the default"
		}
		configs[c.Name] = *c.Value
	}
	if len(configs) == 0 {
		configs = nil
	}
	if validateOnly {
		if err := validateTopicName(rt.Topic); err != nil {
			return nil, err
		}
		if n < 1 || n > maxPartitionsPerTopic {
			return nil, fmt.Errorf("%w: %d (must be 1-%d)", errInvalidPartitions, n, maxPartitionsPerTopic)
		}
		if err := metadata.ValidateTopicConfigs(configs); err != nil {
			return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
		}
		if _, ok := b.meta.Image().Topics[rt.Topic]; ok {
			return nil, metadata.ErrTopicExists
		}
		if reps == nil {
			var err error
			if reps, err = b.meta.Image().Place(n, max(rf, 1), b.opts.NodeID); err != nil {
				return nil, err
			}
		}
		return &metadata.Topic{Name: rt.Topic, Partitions: n, Configs: configs, Replicas: reps}, nil
	}
	return b.createTopicWith(rt.Topic, n, max(rf, 1), reps, configs)
}

func (b *Broker) createTopicsConfigs(t *metadata.Topic) []kmsg.CreateTopicsResponseTopicConfig {
	defs := b.settings().defaults
	names := make([]string, 0, len(defs))
	for k := range defs {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(names))
	for _, name := range names {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = name
		c.Value = kmsg.StringPtr(b.topicConfig(t, name))
		c.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if _, ok := t.Configs[name]; ok {
			c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
		out = append(out, c)
	}
	return out
}
