package kafka

// Behavior:
//
//   - Grows a topic to Count partitions; a count not above the current one is
//     INVALID_PARTITIONS. A manual Assignment must name only this broker.
//   - ValidateOnly checks and changes nothing. A topic named twice is
//     INVALID_REQUEST.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(b *Broker, r *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, error) {
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := b.createPartitionsRequest(&rt, r.ValidateOnly, seen[rt.Topic] > 1)
		if err != nil {
			st.ErrorCode = createErrCode(err)
			if ke, ok := err.(*kerr.Error); ok {
				st.ErrorCode = ke.Code
			}
			st.ErrorMessage = kmsg.StringPtr(err.Error())
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createPartitionsRequest(rt *kmsg.CreatePartitionsRequestTopic, validateOnly, dup bool) error {
	if dup {
		return kerr.InvalidRequest
	}
	t, ok := b.meta.Image().Topics[rt.Topic]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if rt.Count <= t.Partitions {
		return fmt.Errorf("%w: topic has %d partitions, asked for %d", errInvalidPartitions, t.Partitions, rt.Count)
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.Partitions) {
		return kerr.InvalidReplicaAssignment
	}
	var reps [][]int32
	for _, a := range rt.Assignment {
		if len(t.Replicas) > 0 && len(a.Replicas) != len(t.Replicas[0]) {
			return fmt.Errorf("%w: the topic has %d replicas per partition, the assignment names %d", kerr.InvalidReplicaAssignment, len(t.Replicas[0]), len(a.Replicas))
		}
		reps = append(reps, a.Replicas)
	}
	if err := b.meta.Image().CheckAssignment(reps); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidReplicaAssignment, err)
	}
	if validateOnly {
		if rt.Count > maxPartitionsPerTopic {
			return fmt.Errorf("%w: at most %d", errInvalidPartitions, maxPartitionsPerTopic)
		}
		return nil
	}
	return b.createPartitions(rt.Topic, rt.Count, reps)
}
