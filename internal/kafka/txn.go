package kafka

// Transactions on the partition side (KIP-98):
//
//   - A transactional batch is appended only if its partition is in the
//     producer's ongoing transaction (asked of the coordinator, internal/txn);
//     the partition then remembers the first offset of that transaction.
//   - The coordinator's EndTxn writes a control batch (COMMIT or ABORT marker)
//     to each enrolled partition through the normal append path and group
//     committer; the marker closes the producer's open transaction, and an
//     ABORT records (producer id, first offset, marker offset) in the
//     partition's aborted list. A marker of a newer epoch fences the older
//     one (its produces then fail INVALID_PRODUCER_EPOCH).
//   - Last stable offset: the smallest first offset of an open transaction,
//     else the high watermark. read_committed fetches stop there and carry
//     the aborted transactions overlapping the fetched range.
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

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// abortedTxn is one aborted transaction of a partition.
type abortedTxn struct {
	PID   int64 `json:"pid"`
	First int64 `json:"first"`
	Last  int64 `json:"last"` // offset of the ABORT marker
}

// SetTxn installs the transaction coordinator; until then transactional
// requests are refused.
func (b *Broker) SetTxn(c *txn.Coordinator) { b.txns.Store(c) }

// TxnMarkers returns what the transaction coordinator needs of the broker:
// marker writes, group offset commits and producer ids.
func (b *Broker) TxnMarkers() txn.Markers { return txnMarkers{b} }

type txnMarkers struct{ b *Broker }

func (m txnMarkers) AllocatePID() (int64, error) { return m.b.allocateProducerID() }

func (m txnMarkers) CommitOffsets(gid string, offsets []txn.Offset) error {
	g := m.b.groups.Load()
	if g == nil {
		return errors.New("kafka: group coordinator not ready")
	}
	commits := make([]group.Commit, len(offsets))
	for i, o := range offsets {
		commits[i] = group.Commit{TP: group.TP{Topic: o.Topic, Partition: o.Partition}, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return g.CommitTxnOffsets(gid, commits)
}

// markerWait bounds how long a marker write waits for its fsync round.
const markerWait = 30 * time.Second

func (m txnMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts []txn.TP) error {
	b := m.b
	type pending struct {
		p   *partition
		end int64
	}
	var (
		pend  []pending
		round *commitRound
	)
	for _, tp := range parts {
		p := b.partition(tp.Topic, tp.Partition)
		if p == nil {
			continue // deleted since: nothing to mark
		}
		off, n, err := p.appendMarker(pid, epoch, commit)
		if err != nil {
			return fmt.Errorf("kafka: marker for %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		round = b.committer.AddBytes(p, 1, n)
		pend = append(pend, pending{p, off + 1})
	}
	if round == nil {
		return nil
	}
	t := time.NewTimer(markerWait)
	defer t.Stop()
	select {
	case <-round.Done():
	case <-t.C:
	case <-b.waits.Done():
		// Shutting down: the committer may stop before this round. A
		// marker not durable yet fails the completion, which the
		// coordinator finishes after the restart (Prepare* is durable).
	}
	for _, pp := range pend {
		if pp.p.log.DurableOffset() < pp.end {
			return fmt.Errorf("kafka: marker for %s-%d not durable", pp.p.topic, pp.p.index)
		}
	}
	return nil
}

type commitRound = commit.Round

// appendMarker appends a COMMIT or ABORT control batch for pid and updates
// the partition's transaction state. It returns the marker's offset and size.
func (p *partition) appendMarker(pid int64, epoch int16, commit bool) (int64, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now().UnixMilli()
	raw := encodeMarker(pid, epoch, commit, now)
	le, err := p.epochs.assign(p.log.LogEndOffset())
	if err != nil {
		return 0, 0, err
	}
	storage.SetLeaderEpoch(raw, le)
	off, err := p.log.Append(raw)
	if err != nil {
		return 0, 0, err
	}
	p.applyMarker(pid, epoch, commit, off)
	p.noteMarker(pid, now) // partition.go (DescribeProducers)
	if st := p.producers[pid]; st != nil {
		st.Seen = now
	}
	return off, int64(len(raw)), nil
}

// applyMarker closes pid's open transaction at a marker. Caller holds p.mu.
func (p *partition) applyMarker(pid int64, epoch int16, commit bool, off int64) {
	if first, ok := p.ongoing[pid]; ok {
		if !commit {
			p.aborted = append(p.aborted, abortedTxn{PID: pid, First: first, Last: off})
		}
		delete(p.ongoing, pid)
	}
	if st := p.producers[pid]; st == nil || epoch > st.Epoch {
		p.producers[pid] = &producerState{Epoch: epoch}
	}
}

// noteTxnBatch records the start of pid's transaction at a transactional
// data batch. Caller holds p.mu.
func (p *partition) noteTxnBatch(h *storage.BatchHeader, base int64) {
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

// lastStable is the last stable offset: no read_committed consumer may read
// at or past it.
func (p *partition) lastStable() int64 {
	lso := p.highWatermark()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, first := range p.ongoing {
		lso = min(lso, first)
	}
	return lso
}

// abortedIn returns the aborted transactions overlapping [from, to).
func (p *partition) abortedIn(from, to int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.log.LogStartOffset()
	var out []kmsg.FetchResponseTopicPartitionAbortedTransaction
	keep := p.aborted[:0]
	for _, a := range p.aborted {
		if a.Last < start {
			continue
		}
		keep = append(keep, a)
		if a.Last >= from && a.First < to {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.PID, a.First
			out = append(out, at)
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
			return errors.New("kafka: short control record key")
		}
		commit, seen = binary.BigEndian.Uint16(r.Key[2:]) == 1, true
		return nil
	})
	if err == nil && !seen {
		err = errors.New("kafka: empty control batch")
	}
	return commit, err
}

// txnProducer is a produce request's transactional id and whether the
// request enrols its partitions in the transaction itself.
type txnProducer struct {
	id *string
	// implicit: a produce v12+ under transaction version 2 (KIP-890 part 2)
	// adds its partitions to the transaction, starting one if none is
	// ongoing, instead of requiring AddPartitionsToTxn first. They are
	// enrolled up front, all in one coordinator call (enrolProduce); err
	// is its answer.
	implicit bool
	err      *kerr.Error
}

// implicitTxnAdd reports whether a produce at version v enrols its
// partitions in the transaction (tv2.go in internal/txn).
func (b *Broker) implicitTxnAdd(v int16) bool {
	return v >= 12 && b.opts.TransactionVersion >= 2
}

// enrolProduce adds every partition of a transaction version 2 produce
// whose first batch is transactional to the producer's transaction with one
// coordinator call, so one state-log fsync covers the request rather than
// one per partition. Batches are still checked one by one afterwards
// (txnProduceErr).
func (b *Broker) enrolProduce(version int16, r *kmsg.ProduceRequest) *kerr.Error {
	c := b.txns.Load()
	if c == nil {
		return nil // txnProduceErr answers
	}
	var tps []txn.TP
	pid, epoch := int64(-1), int16(-1)
	for _, rt := range r.Topics {
		ts := b.topicFor(version, rt.Topic, rt.TopicID)
		for _, rp := range rt.Partitions {
			p, _ := ts.partition(rp.Partition, version)
			if p == nil {
				continue
			}
			h, err := storage.ParseBatchHeader(rp.Records)
			if err != nil || !h.IsTransactional() || h.IsControl() {
				continue
			}
			if pid >= 0 && (h.ProducerID != pid || h.ProducerEpoch != epoch) {
				continue // another producer's batch: checked (and refused) alone
			}
			pid, epoch = h.ProducerID, h.ProducerEpoch
			tps = append(tps, txn.TP{Topic: p.topic, Partition: p.index})
		}
	}
	if len(tps) == 0 {
		return nil
	}
	switch e := c.AddPartitions(*r.TransactionID, pid, epoch, tps); e {
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch // the produce response's code for it
	case kerr.ConcurrentTransactions:
		return kerr.NotEnoughReplicas // retriable for every client, as in Kafka
	default:
		return e
	}
}

// txnProduceErr checks a transactional batch against the coordinator: its
// partition must be in the producer's ongoing transaction.
func (b *Broker) txnProduceErr(tx txnProducer, p *partition, h *storage.BatchHeader) error {
	c := b.txns.Load()
	if c == nil || tx.id == nil {
		return errTxn
	}
	if tx.err != nil {
		return tx.err
	}
	if e := c.Enrolled(*tx.id, h.ProducerID, h.ProducerEpoch, txn.TP{Topic: p.topic, Partition: p.index}); e != nil {
		return e
	}
	return nil
}

// kerrCode returns the code of a *kerr.Error inside err, if any.
func kerrCode(err error) (int16, bool) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	return 0, false
}
