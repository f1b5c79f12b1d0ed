package partition

// Cleaning of one partition: the Broker's sweep (internal/kafka) picks the
// compacted topics and the budget; Clean runs storage.Log.Clean up to the
// high watermark, keeping the batch that holds each producer's last
// sequence (producerLastOffsets), so producer state rebuilt from the log
// after a crash still knows the producer's epoch and sequence.

import "github.com/chronik-stream/chronik/internal/storage"

// Clean compacts the partition's log with o (UpTo and ProducerLastOffsets
// are set here) and returns the result and the log size before it (the
// bytes examined, counted against the sweep's budget).
func (p *state) Clean(o storage.CleanOptions) (storage.CleanResult, int64, error) {
	if p.log.Failed() {
		return storage.CleanResult{}, 0, nil
	}
	o.UpTo = p.HighWatermark()
	o.ProducerLastOffsets = p.producerLastOffsets()
	before := p.log.Size()
	res, err := p.log.Clean(o)
	return res, before, err
}

// producerLastOffsets maps every producer the partition keeps state for to
// the last offset of its last data batch (Kafka's
// lastRecordsOfActiveProducers): compaction keeps that batch's header. A
// batch appended after this snapshot only makes an older batch kept
// needlessly; an expired producer's batches may all go, as in Kafka.
func (p *state) producerLastOffsets() map[int64]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int64]int64, len(p.producers))
	for pid, st := range p.producers {
		if n := len(st.Batches); n > 0 {
			sb := st.Batches[n-1]
			span := (int64(sb.LastSeq) - int64(sb.FirstSeq) + 1<<31) % (1 << 31) // sequences wrap at 2^31
			out[pid] = sb.Base + span
		}
	}
	return out
}
