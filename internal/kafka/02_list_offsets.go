package kafka

// Behavior:
//
//   - Timestamp -1 (latest) answers the high watermark; -2 (earliest) and -4
//     (earliest local, KIP-405) the log start offset; -3 (max timestamp,
//     KIP-734) the offset and timestamp of the record with the largest
//     timestamp; any other value the first record whose timestamp is >= it,
//     found through the time index and exact to the record, or offset -1 when
//     no such record is below the high watermark.
//   - Latest (-1) with IsolationLevel read_committed answers the last stable
//     offset instead of the high watermark.
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
			p, code := b.servingPartition(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case p == nil:
				sp.ErrorCode = code
			default:
				sp.LeaderEpoch = p.leaderEpoch()
				sp.Offset, sp.Timestamp = listOffset(p, rp.Timestamp)
				if rp.Timestamp == -1 && r.IsolationLevel == 1 {
					sp.Offset = p.lastStable()
				}
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

// servingPartition returns the partition if it can answer offset queries:
// it exists, the client's CurrentLeaderEpoch (-1: no check) matches, and its
// log has not failed. Otherwise nil and the error code to answer.
func (b *Broker) servingPartition(topic string, i, currentEpoch int32) (*partition, int16) {
	p := b.partition(topic, i)
	switch {
	case p == nil:
		return nil, kerr.UnknownTopicOrPartition.Code
	case checkLeaderEpoch(p, currentEpoch) != nil:
		return nil, checkLeaderEpoch(p, currentEpoch).Code
	case p.log.Failed():
		return nil, kerr.KafkaStorageError.Code
	}
	return p, 0
}
