package kafka

// Behavior:
//
//   - No reassignment is ever in progress (45 accepts only the current
//     assignment, a no-op, until moving replicas exists), so the answer lists no topics, whether
//     the request names topics or asks for all (null).
//
// Version notes:
//   - v0 is the only version.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleListPartitionReassignments(b *Broker, r *kmsg.ListPartitionReassignmentsRequest) (*kmsg.ListPartitionReassignmentsResponse, error) {
	return r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse), nil
}
