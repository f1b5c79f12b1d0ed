package kafka

// Behavior:
//
//   - Answers for the metadata quorum's partition, __cluster_metadata-0 (any
//     other: UNKNOWN_TOPIC_OR_PARTITION), from this broker's view of it: the
//     leader and its term as the leader epoch, the commit index as the high
//     watermark, every voter and observer. A broker alone is the quorum's
//     only voter and always its leader.
//   - The leader's own log end is reported, and the other replicas' log ends
//     as their broker heartbeats last told the controller (at most a
//     heartbeat interval old; LastFetchTimestamp is that heartbeat's time,
//     LastCaughtUpTimestamp too when it reported the leader's commit index or
//     more). A member not heard from since this leader was elected: -1.
//   - A broker that is not the leader answers NOT_LEADER_OR_FOLLOWER with the
//     leader it knows, as Kafka's controllers do.

import (
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeQuorum(b *Broker, r *kmsg.DescribeQuorumRequest) (*kmsg.DescribeQuorumResponse, error) {
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	q := b.meta.Quorum()
	for _, rt := range r.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			t.Partitions = append(t.Partitions, describeQuorumPartition(p, rt.Topic, q))
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func describeQuorumPartition(p kmsg.DescribeQuorumResponseTopicPartition, topic string, q metadata.QuorumState) kmsg.DescribeQuorumResponseTopicPartition {
	if topic != "__cluster_metadata" || p.Partition != 0 {
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return p
	}
	p.LeaderID, p.LeaderEpoch = q.LeaderID, int32(q.Term)
	if q.LeaderID != q.Self {
		p.ErrorCode = kerr.NotLeaderForPartition.Code
		return p
	}
	p.HighWatermark = int64(q.CommitIndex)
	now := time.Now().UnixMilli()
	replica := func(id int32) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = id, -1, -1, -1
		if id == q.Self {
			rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = int64(q.LastIndex), now, now
		} else if pr, ok := q.Progress[id]; ok {
			rs.LogEndOffset, rs.LastFetchTimestamp = int64(pr.LogEnd), pr.At.UnixMilli()
			if pr.LogEnd >= q.CommitIndex {
				rs.LastCaughtUpTimestamp = rs.LastFetchTimestamp
			}
		}
		return rs
	}
	for _, id := range q.Voters {
		p.CurrentVoters = append(p.CurrentVoters, replica(id))
	}
	for _, id := range q.Observers {
		p.Observers = append(p.Observers, replica(id))
	}
	return p
}
