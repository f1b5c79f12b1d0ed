package kafka

// Behavior:
//
//   - Moving replicas is not built yet (issue 14, slice 5), so the only
//     valid assignment is the partition's current one: reassigning it to
//     exactly that is a no-op success; any other replica list (other or
//     unknown brokers, duplicates, empty) answers INVALID_REPLICA_ASSIGNMENT.
//   - A null replica list cancels a reassignment; none is ever in progress,
//     so that answers NO_REASSIGNMENT_IN_PROGRESS, as Kafka does.
//   - Partitions of unknown topics answer UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes:
//   - v0-v1; v1's AllowReplicationFactorChange is echoed back (no factor
//     other than 1 is possible anyway).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterPartitionReassignments(b *Broker, r *kmsg.AlterPartitionAssignmentsRequest) (*kmsg.AlterPartitionAssignmentsResponse, error) {
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case b.partition(rt.Topic, rp.Partition) == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Replicas == nil:
				sp.ErrorCode = kerr.NoReassignmentInProgress.Code
			case !slices.Equal(rp.Replicas, b.currentReplicas(rt.Topic, rp.Partition)):
				sp.ErrorCode = kerr.InvalidReplicaAssignment.Code
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
