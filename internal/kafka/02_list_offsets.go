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
//   - v0 (removed by Kafka 4.0, KIP-896, but still sent by sarama-based tools
//     configured for Kafka < 0.10.1, e.g. Debian's Burrow 1.2.1) answers
//     OldStyleOffsets as Kafka 0.10 did (fetchOffsetsBefore), with the
//     segment's largest record timestamp where Kafka used the segment file's
//     modification time: the candidates are each segment's base offset
//     (at least the log start) and, when the active segment holds data, the
//     log end offset; -1 (latest) starts from the last, -2 (earliest) from
//     the first, a timestamp from the last whose time is <= it; up to
//     MaxNumOffsets of them are answered, newest first. Offsets above the
//     high watermark are replaced by the high watermark, as Kafka did for
//     consumers. The other special timestamps (-3, -4, ...) answer no
//     offsets.
//   - LeaderEpoch (v4+) is the partition's leader epoch; a mismatching
//     CurrentLeaderEpoch is fenced.

import (
	"time"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"

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
			case r.Version == 0:
				sp.OldStyleOffsets = oldStyleOffsets(p, rp.Timestamp, rp.MaxNumOffsets, time.Now().UnixMilli())
			default:
				sp.LeaderEpoch = p.LeaderEpoch()
				sp.Offset, sp.Timestamp = listOffset(p, rp.Timestamp)
				if rp.Timestamp == -1 && r.IsolationLevel == 1 {
					sp.Offset = p.LastStable()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *partition.Partition, ts int64) (offset, timestamp int64) {
	offset, timestamp = -1, -1
	_ = p.WithLog(func(l *storage.Log) error { // an error was answered by servingPartition
		offset, timestamp = logOffset(l, ts)
		return nil
	})
	return offset, timestamp
}

func logOffset(l *storage.Log, ts int64) (offset, timestamp int64) {
	hwm := l.DurableOffset()
	switch ts {
	case -1:
		return hwm, -1
	case -2, -4:
		return l.LogStartOffset(), -1
	case -3:
		mts, off := l.MaxTimestamp()
		if off < 0 || off >= hwm {
			return -1, -1
		}
		return off, mts
	}
	if ts < 0 {
		return -1, -1 // unknown special value (e.g. -5, tiered storage)
	}
	off, found, ok := l.OffsetForTimestamp(ts)
	if !ok || off >= hwm {
		return -1, -1
	}
	return off, found
}

// oldStyleOffsets answers a v0 ListOffsets (see Version notes); nowMs
// stands for the time of the log end offset.
func oldStyleOffsets(p *partition.Partition, ts int64, maxNum int32, nowMs int64) []int64 {
	var start, end, hwm int64
	var segs []storage.SegmentInfo
	if err := p.WithLog(func(l *storage.Log) error {
		start, end, hwm, segs = l.LogStartOffset(), l.LogEndOffset(), l.DurableOffset(), l.Segments()
		return nil
	}); err != nil {
		return []int64{}
	}
	type candidate struct{ offset, ts int64 }
	var cands []candidate
	for _, s := range segs {
		if s.Sealed && s.Next <= start {
			continue // wholly below the log start, awaiting deletion
		}
		cands = append(cands, candidate{max(s.Base, start), s.MaxTimestamp})
	}
	if len(segs) > 0 && segs[len(segs)-1].Size > 0 {
		cands = append(cands, candidate{end, nowMs})
	}
	from := -1
	switch {
	case ts == -1:
		from = len(cands) - 1
	case ts == -2:
		from = min(0, len(cands)-1)
	case ts >= 0:
		for from = len(cands) - 1; from >= 0 && cands[from].ts > ts; from-- {
		}
	}
	out := []int64{}
	for i := from; i >= 0 && len(out) < int(maxNum); i-- {
		out = append(out, cands[i].offset)
	}
	// Kafka's rule for consumers: nothing above the high watermark.
	if len(out) > 0 && out[0] > hwm {
		i := 0
		for i < len(out) && out[i] > hwm {
			i++
		}
		if out = out[i:]; len(out) == 0 || out[0] != hwm {
			out = append([]int64{hwm}, out...)
		}
	}
	return out
}

// servingPartition returns the partition if it can answer offset queries:
// it exists, the client's CurrentLeaderEpoch (-1: no check) matches, and its
// log has not failed. Otherwise nil and the error code to answer.
func (b *Broker) servingPartition(topic string, i, currentEpoch int32) (*partition.Partition, int16) {
	p, code := b.localPartition(topic, i)
	if p == nil {
		return nil, code
	}
	if err := p.CheckLeaderEpoch(currentEpoch); err != nil {
		return nil, partitionErr(err).Code
	}
	if _, err := p.Offsets(); err != nil { // failed, or cannot be opened
		return nil, kerr.KafkaStorageError.Code
	}
	return p, 0
}
