package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeQuorum: a broker alone is the only voter and the leader of
// the metadata quorum; its high watermark moves with each metadata change;
// another partition is unknown.
func TestDescribeQuorum(t *testing.T) {
	f := newFixture(t)
	describe := func(v int16) kmsg.DescribeQuorumResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		for _, p := range []int32{0, 1} {
			rp := kmsg.NewDescribeQuorumRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := f.do(req, v).(*kmsg.DescribeQuorumResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if code := resp.Topics[0].Partitions[1].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d: partition 1: error %d, want UNKNOWN_TOPIC_OR_PARTITION", v, code)
		}
		return resp.Topics[0].Partitions[0]
	}
	for _, v := range []int16{0, 2} {
		p := describe(v)
		if p.ErrorCode != 0 || p.LeaderID != f.opts.NodeID || p.LeaderEpoch < 1 || p.HighWatermark < 1 {
			t.Fatalf("v%d: %+v", v, p)
		}
		if len(p.CurrentVoters) != 1 || p.CurrentVoters[0].ReplicaID != f.opts.NodeID || p.CurrentVoters[0].LogEndOffset < p.HighWatermark || len(p.Observers) != 0 {
			t.Fatalf("v%d: voters %+v observers %+v", v, p.CurrentVoters, p.Observers)
		}
	}
	before := describe(2).HighWatermark
	f.createTopic("moves-hw", 1, nil)
	if after := describe(2).HighWatermark; after <= before {
		t.Fatalf("high watermark %d after a topic was created, %d before", after, before)
	}
}
