package kafka

// Behavior:
//
//   - Leaders never change until elections exist (issue 14, slice 4; a
//     partition's leader is its first replica, always its preferred one):
//     each requested partition that exists answers
//     ELECTION_NOT_NEEDED, any other UNKNOWN_TOPIC_OR_PARTITION, for both
//     election types (preferred, unclean).
//   - A null topic list means every partition; Kafka then leaves out the
//     partitions that need no election, so the answer is empty.
//   - An election type other than 0 (preferred) or 1 (unclean) is
//     INVALID_REQUEST.
//
// Version notes:
//   - v0 (no ElectionType, no top-level ErrorCode) predates
//     ELECTION_NOT_NEEDED; Kafka answers NONE there, and so do we.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleElectLeaders(b *Broker, r *kmsg.ElectLeadersRequest) (*kmsg.ElectLeadersResponse, error) {
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	if r.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	notNeeded := kerr.ElectionNotNeeded.Code
	if r.Version == 0 {
		notNeeded = 0
	}
	for _, rt := range r.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, i := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = i
			if b.partition(rt.Topic, i) == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.ErrorCode = notNeeded
			}
			if sp.ErrorCode != 0 {
				sp.ErrorMessage = kmsg.StringPtr(kerr.ErrorForCode(sp.ErrorCode).Error())
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
