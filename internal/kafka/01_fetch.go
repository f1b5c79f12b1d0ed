package kafka

// Behavior:
//
//   - Batches are served as stored (compressed as the producer sent them),
//     starting with the batch that contains the fetch offset, up to the high
//     watermark (the durable log end: consumers never see data a crash could
//     take back).
//   - Byte limits: PartitionMaxBytes per partition and MaxBytes per response;
//     the first batch of the response is returned even when it is larger
//     (KIP-74), so a consumer can never get stuck behind a big batch.
//   - Long poll: when fewer than MinBytes are available the reply waits, up
//     to MaxWaitMillis, on the group committer's rounds (every round that
//     makes data durable may satisfy it), without blocking the connection's
//     reader. A graceful shutdown (Broker.EndWaits) answers parked fetches
//     at once.
//   - An offset outside [log start, log end] answers
//     OFFSET_OUT_OF_RANGE; a CurrentLeaderEpoch other than ours answers
//     FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.
//   - Fetch sessions (KIP-227) are not created yet: SessionID 0 in the reply
//     tells clients to keep sending full fetches, which they all support.
//   - read_committed equals read_uncommitted until transactions exist (no
//     transactional batches can be written), so LastStableOffset = HWM.
//
// Version notes:
//   - v4 is the minimum (KIP-896); v13+ addresses topics by id.

import (
	"context"
	"errors"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFetch(b *Broker, _ context.Context, req *wire.Request) (wire.Reply, error) {
	r, ok := req.Body.(*kmsg.FetchRequest)
	if !ok {
		return wire.Reply{}, errWrongType
	}
	if r.SessionID != 0 || r.SessionEpoch > 0 {
		// We never hand out session ids, so a client naming one is
		// confused; tell it the session does not exist.
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return wire.Reply{Resp: resp}, nil
	}
	round := b.committer.Next() // taken before reading so no round is missed
	resp, n := b.fetchOnce(r, req.Version)
	if n >= int(r.MinBytes) || r.MaxWaitMillis <= 0 {
		return wire.Reply{Resp: resp}, nil
	}
	deadline := time.Now().Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	return wire.Reply{Later: func() kmsg.Response {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		for {
			select {
			case <-round.Done():
			case <-t.C:
				resp, _ := b.fetchOnce(r, req.Version)
				return resp
			case <-b.waitsEnded: // shutting down
				resp, _ := b.fetchOnce(r, req.Version)
				return resp
			case <-req.Conn.Done():
				return nil // client gone: nothing to answer
			}
			round = b.committer.Next()
			var n int
			resp, n = b.fetchOnce(r, req.Version)
			if n >= int(r.MinBytes) {
				return resp
			}
		}
	}}, nil
}

// fetchOnce builds a response from what is durable now and returns the
// number of record bytes in it.
func (b *Broker) fetchOnce(r *kmsg.FetchRequest, version int16) (*kmsg.FetchResponse, int) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(version)
	remaining := int(r.MaxBytes)
	if remaining <= 0 {
		remaining = 1 << 30
	}
	total := 0
	resp.Topics = make([]kmsg.FetchResponseTopic, len(r.Topics))
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		st := &resp.Topics[ti]
		st.Default()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		ts := b.topicFor(version, rt.Topic, rt.TopicID)
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			sp.HighWatermark = -1
			sp.RecordBatches = []byte{} // nil would encode as null, which librdkafka rejects
			p, missing := ts.partition(rp.Partition, version)
			if p == nil {
				sp.ErrorCode = missing
				continue
			}
			n := b.fetchPartition(p, rp, sp, remaining, total == 0)
			total += n
			remaining -= n
		}
	}
	return resp, total
}

func (b *Broker) fetchPartition(p *partition, rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, remaining int, first bool) int {
	hwm := p.highWatermark()
	sp.HighWatermark = hwm
	sp.LastStableOffset = hwm
	sp.LogStartOffset = p.log.LogStartOffset()
	if e := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); e != nil {
		sp.ErrorCode = e.Code
		return 0
	}
	if p.log.Failed() {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return 0
	}
	// Between the high watermark and the log end the data exists but is not
	// durable yet: answer empty (Kafka does the same), not out of range.
	if rp.FetchOffset < sp.LogStartOffset || rp.FetchOffset > p.log.LogEndOffset() {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0
	}
	if rp.FetchOffset >= hwm || remaining <= 0 {
		return 0
	}
	limit := int(rp.PartitionMaxBytes)
	if limit > remaining {
		limit = remaining
	}
	data, err := p.log.Read(rp.FetchOffset, limit, hwm, nil)
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0
	case err != nil:
		b.log.Error("fetch read failed", "topic", p.topic, "partition", p.index, "offset", rp.FetchOffset, "err", err)
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return 0
	}
	if len(data) > limit && !first {
		// Only the response's first batch may exceed the limits (KIP-74).
		return 0
	}
	sp.RecordBatches = data
	b.stats.bytesOut.Add(int64(len(data)))
	storage.SplitBatches(data, func(batch []byte) error { // headers only, in memory
		if h, err := storage.ParseBatchHeader(batch); err == nil {
			b.stats.recordsOut.Add(int64(h.RecordCount))
		}
		return nil
	})
	return len(data)
}

// checkLeaderEpoch validates a client's idea of the leader epoch (-1 = no
// check): older -> FENCED_LEADER_EPOCH, newer -> UNKNOWN_LEADER_EPOCH.
func checkLeaderEpoch(p *partition, epoch int32) *kerr.Error {
	switch {
	case epoch < 0 || epoch == p.leaderEpoch():
		return nil
	case epoch < p.leaderEpoch():
		return kerr.FencedLeaderEpoch
	default:
		return kerr.UnknownLeaderEpoch
	}
}
