package kafka

// Transactions at the broker (KIP-98): what the transaction coordinator
// (internal/txn) needs of the broker (txnMarkers: marker writes through the
// normal append path and group committer, group offset commits, producer
// ids), and the produce path's checks against the coordinator: a
// transactional batch is appended only to a partition in the producer's
// ongoing transaction. The partition side (open and aborted transactions,
// markers, last stable offset) is internal/partition/txn.go.

import (
	"errors"
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
		p   *partition.Partition
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
		off, n, err := p.AppendMarker(pid, epoch, commit)
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
		if pp.p.DurableOffset() < pp.end {
			return fmt.Errorf("kafka: marker for %s-%d not durable", pp.p.Topic(), pp.p.Index())
		}
	}
	return nil
}

type commitRound = commit.Round

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
			p, _ := b.servePartition(ts, rp.Partition, version)
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
			tps = append(tps, txn.TP{Topic: p.Topic(), Partition: p.Index()})
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
func (b *Broker) txnProduceErr(tx txnProducer, p *partition.Partition, h *storage.BatchHeader) error {
	c := b.txns.Load()
	if c == nil || tx.id == nil {
		return errTxn
	}
	if tx.err != nil {
		return tx.err
	}
	if e := c.Enrolled(*tx.id, h.ProducerID, h.ProducerEpoch, txn.TP{Topic: p.Topic(), Partition: p.Index()}); e != nil {
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
