package kafka

// Behavior:
//
//   - Timestamp -1 (latest) answers the high watermark; -2 (earliest) and -4
//     (earliest local, KIP-405) the log start offset; -3 (max timestamp,
//     KIP-734) the offset and timestamp of the record with the largest
//     timestamp; any other value the first record whose timestamp is >= it,
//     found through the time index and exact to the record, or offset -1 when
//     no such record is below the high watermark.
//   - IsolationLevel read_committed equals read_uncommitted until
//     transactions exist.
//
// Version notes:
//   - v1 is the minimum (KIP-896). LeaderEpoch (v4+) is the partition's
//     leader epoch; a mismatching CurrentLeaderEpoch is fenced.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(b *Broker, r *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp = -1, -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case checkLeaderEpoch(p, rp.CurrentLeaderEpoch) != nil:
				sp.ErrorCode = checkLeaderEpoch(p, rp.CurrentLeaderEpoch).Code
			case p.log.Failed():
				sp.ErrorCode = kerr.KafkaStorageError.Code
			default:
				sp.LeaderEpoch = p.leaderEpoch()
				sp.Offset, sp.Timestamp = listOffset(p, rp.Timestamp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *partition, ts int64) (offset, timestamp int64) {
	hwm := p.highWatermark()
	switch ts {
	case -1:
		return hwm, -1
	case -2, -4:
		return p.log.LogStartOffset(), -1
	case -3:
		mts, off := p.log.MaxTimestamp()
		if off < 0 || off >= hwm {
			return -1, -1
		}
		return off, mts
	}
	if ts < 0 {
		return -1, -1 // unknown special value (e.g. -5, tiered storage)
	}
	off, found, ok := p.log.OffsetForTimestamp(ts)
	if !ok || off >= hwm {
		return -1, -1
	}
	return off, found
}
