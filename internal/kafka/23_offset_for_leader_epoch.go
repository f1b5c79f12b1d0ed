package kafka

// Behavior:
//
//   - For each partition, the end offset of the requested leader epoch, from
//     the partition's leader-epoch-checkpoint (leader_epoch.go): the log end
//     offset for the current epoch, the start offset of the next known epoch
//     for an older one (answered with the largest known epoch <= the
//     requested one, as Kafka does), and UNDEFINED_EPOCH / _OFFSET (-1, -1)
//     for an epoch below the first known one or above the current one.
//   - CurrentLeaderEpoch (-1 = no check) older than ours answers
//     FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH; unknown partitions
//     UNKNOWN_TOPIC_OR_PARTITION; a failed log KAFKA_STORAGE_ERROR.
//   - ReplicaID (v3+) is not checked: consumers send -1 and there are no
//     followers yet.
//
// Version notes:
//   - v2 is the minimum (KIP-896); v4 is flexible.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(b *Broker, r *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, code := b.servingPartition(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case p == nil:
				sp.ErrorCode = code
			default:
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
