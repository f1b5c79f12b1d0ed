package kafka

// Behavior:
//
//   - NumPartitions -1 means num.partitions; ReplicationFactor -1 or 1 is
//     accepted, anything else is INVALID_REPLICATION_FACTOR on a single node.
//     A manual ReplicaAssignment must name only this broker, one replica per
//     partition, partitions 0..n-1.
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
		st.Configs = b.createTopicsConfigs(t)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createTopicRequest(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*metadata.Topic, error) {
	n := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: set either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
		}
		n = int32(len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || a.Partition >= n || len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID {
				return nil, fmt.Errorf("%w: partition %d: replicas must be [%d] on this single-node cluster", kerr.InvalidReplicaAssignment, a.Partition, b.opts.NodeID)
			}
		}
	}
	if n == -1 {
		n = b.settings().partitions
	}
	if rf := rt.ReplicationFactor; rf != -1 && rf != 1 && len(rt.ReplicaAssignment) == 0 {
		return nil, fmt.Errorf("%w: %d requested, this cluster has 1 broker", kerr.InvalidReplicationFactor, rf)
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
		return &metadata.Topic{Name: rt.Topic, Partitions: n, Configs: configs}, nil
	}
	return b.createTopic(rt.Topic, n, configs)
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
