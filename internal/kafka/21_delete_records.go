package kafka

// Behavior:
//
//   - Moves each partition's log start offset forward to the requested offset
//     (-1 means the high watermark). Whole segments below the new start are
//     deleted; a segment only partly below it stays, but fetches and
//     ListOffsets below the start answer OFFSET_OUT_OF_RANGE / the new start.
//     The start is persisted (storage's log-start-offset file, fsynced) before
//     it is answered, so it survives restarts and crashes.
//   - An offset at or below the current start changes nothing and answers
//     the current start as the low watermark (Kafka does the same).
//   - An offset above the high watermark, or negative other than -1:
//     OFFSET_OUT_OF_RANGE. Unknown topic or partition:
//     UNKNOWN_TOPIC_OR_PARTITION. A failed log: KAFKA_STORAGE_ERROR.
//   - The work (a checkpoint fsync and file removals) happens on the
//     connection's reader; the timeout is not needed on a single node.
//
// Version notes:
//   - v0-v2 (KIP-896 left all of them); v2 is flexible.

import (
	"errors"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(b *Broker, r *kmsg.DeleteRecordsRequest) (*kmsg.DeleteRecordsResponse, error) {
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			sp.ErrorCode = b.deleteRecords(rt.Topic, rp.Partition, rp.Offset, &sp.LowWatermark)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) deleteRecords(topic string, index int32, offset int64, low *int64) int16 {
	p, code := b.localPartition(topic, index)
	if p == nil {
		return code
	}
	off, err := p.Offsets()
	if err != nil { // failed, or cannot be opened
		return kerr.KafkaStorageError.Code
	}
	hwm := off.HighWatermark
	if offset == -1 {
		offset = hwm
	}
	if offset < 0 || offset > hwm {
		*low = off.LogStart
		return kerr.OffsetOutOfRange.Code
	}
	_, _, err = p.SetLogStartOffset(offset)
	if now, oerr := p.Offsets(); oerr == nil {
		*low = now.LogStart
	}
	switch {
	case err == nil:
		b.log.Debug("log start offset moved by DeleteRecords", "topic", topic, "partition", index, "log_start_offset", *low)
		return 0
	case errors.Is(err, storage.ErrClosed): // the topic was deleted meanwhile
		return kerr.UnknownTopicOrPartition.Code
	case !errors.Is(err, storage.ErrOffsetOutOfRange):
		b.log.Warn("DeleteRecords failed", "topic", topic, "partition", index, "offset", offset, "err", err)
	}
	return partitionErr(err).Code
}
