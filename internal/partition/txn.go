package partition

// Transactions on the partition side (KIP-98):
//
//   - A transactional batch is appended only if its partition is in the
//     producer's ongoing transaction (the caller asks the coordinator,
//     internal/txn); the partition then remembers the first offset of that
//     transaction.
//   - The coordinator's EndTxn writes a control batch (COMMIT or ABORT
//     marker, AppendMarker) to each enrolled partition through the normal
//     append path and group committer; the marker closes the producer's open
//     transaction, and an ABORT records (producer id, first offset, marker
//     offset) in the partition's aborted list. A marker of a newer epoch
//     fences the older one (its produces then fail INVALID_PRODUCER_EPOCH).
//   - Last stable offset: the smallest first offset of an open transaction,
//     else the high watermark. read_committed fetches stop there and carry
//     the aborted transactions overlapping the fetched range (AbortedIn).
//   - Open transactions and the aborted list are part of the producer
//     snapshot written at a clean close; without one (a crash) they are
//     rebuilt by scanning the log from its start (control batches are read
//     to learn commit or abort). Aborted entries below the log start are
//     dropped lazily, when read.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AbortedTxn is one aborted transaction of a partition.
type AbortedTxn struct {
	PID   int64 `json:"pid"`
	First int64 `json:"first"`
	Last  int64 `json:"last"` // offset of the ABORT marker
}

// AppendMarker appends a COMMIT or ABORT control batch for pid and updates
// the partition's transaction state. It returns the marker's offset and size.
func (p *state) AppendMarker(pid int64, epoch int16, commit bool) (int64, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now().UnixMilli()
	raw := encodeMarker(pid, epoch, commit, now)
	off, err := p.appendStamped(raw)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: marker for %s-%d: %w", ErrStorage, p.topic, p.index, err)
	}
	p.applyMarker(pid, epoch, commit, off)
	p.noteMarker(pid, now) // partition.go (DescribeProducers)
	if st := p.producers[pid]; st != nil {
		st.Seen = now
	}
	return off, int64(len(raw)), nil
}

// applyMarker closes pid's open transaction at a marker. Caller holds p.mu.
func (p *state) applyMarker(pid int64, epoch int16, commit bool, off int64) {
	if first, ok := p.ongoing[pid]; ok {
		if !commit {
			p.aborted = append(p.aborted, AbortedTxn{PID: pid, First: first, Last: off})
		}
		delete(p.ongoing, pid)
	}
	if st := p.producers[pid]; st == nil || epoch > st.Epoch {
		p.producers[pid] = &producerState{Epoch: epoch}
	}
}

// noteTxnBatch records the start of pid's transaction at a transactional
// data batch. Caller holds p.mu.
func (p *state) noteTxnBatch(h *storage.BatchHeader, base int64) {
	if !h.IsTransactional() || h.IsControl() {
		return
	}
	if p.ongoing == nil {
		p.ongoing = map[int64]int64{}
	}
	if _, ok := p.ongoing[h.ProducerID]; !ok {
		p.ongoing[h.ProducerID] = base
	}
}

// LastStable is the last stable offset: no read_committed consumer may read
// at or past it.
func (p *state) LastStable() int64 {
	lso := p.HighWatermark()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, first := range p.ongoing {
		lso = min(lso, first)
	}
	return lso
}

// AbortedIn returns the aborted transactions overlapping [from, to).
func (p *state) AbortedIn(from, to int64) []AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.log.LogStartOffset()
	var out []AbortedTxn
	keep := p.aborted[:0]
	for _, a := range p.aborted {
		if a.Last < start {
			continue
		}
		keep = append(keep, a)
		if a.Last >= from && a.First < to {
			out = append(out, a)
		}
	}
	p.aborted = keep
	return out
}

// encodeMarker builds a control batch: key (version 0, type 0 abort / 1
// commit), value (version 0, coordinator epoch 0).
func encodeMarker(pid int64, epoch int16, commit bool, ts int64) []byte {
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], 1)
	}
	val := make([]byte, 6)
	rec := kmsg.Record{Key: key, Value: val}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	body := rec.AppendTo(nil)
	bt := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: storage.AttrTransactional | storage.AttrControl,
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: -1,
		NumRecords: 1, Records: body,
	}
	bt.Length = int32(storage.BatchHeaderSize - 12 + len(body))
	out := bt.AppendTo(nil)
	crc := crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(out[17:], crc)
	return out
}

// markerIsCommit reads the type of a control batch's marker.
func markerIsCommit(batch []byte) (bool, error) {
	var commit bool
	seen := false
	err := storage.DecodeRecords(batch, nil, func(r *kmsg.Record) error {
		if len(r.Key) < 4 {
			return errors.New("partition: short control record key")
		}
		commit, seen = binary.BigEndian.Uint16(r.Key[2:]) == 1, true
		return nil
	})
	if err == nil && !seen {
		err = errors.New("partition: empty control batch")
	}
	return commit, err
}
