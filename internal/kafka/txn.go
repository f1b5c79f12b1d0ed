package kafka

// Transactions at the broker (KIP-98): what the transaction coordinator
// (internal/txn) needs of the broker (txnMarkers: marker writes through the
// normal append path and group committer, group offset commits, producer
// ids), and the produce path's checks against the coordinator: a
// transactional batch is appended only to a partition in the producer's
// ongoing transaction. The partition side (open and aborted transactions,
// markers, last stable offset) is internal/partition/txn.go.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/statelog"
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

// WriteMarkers writes the markers of partitions this broker leads and asks
// the leaders of the others to write theirs (WriteTxnMarkers), all at once;
// it returns once every marker is durable or the first failure. A failure
// leaves the transaction in Prepare*: its producer's retried EndTxn (or the
// next start) completes it, writing every marker again, which readers
// tolerate (a second marker of one transaction closes nothing).
func (m txnMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts []txn.TP) error {
	b := m.b
	local := parts[:0:0]
	remote := map[int32][]txn.TP{}
	for _, tp := range parts {
		ts := b.topic(tp.Topic)
		if ts == nil || tp.Partition < 0 || int(tp.Partition) >= len(ts.parts) {
			continue // deleted since: nothing to mark
		}
		if l := ts.meta.Leader(tp.Partition); l != b.opts.NodeID && l >= 0 {
			remote[l] = append(remote[l], tp)
		} else {
			local = append(local, tp)
		}
	}
	errs := make(chan error, len(remote))
	for id, tps := range remote {
		go func() { errs <- b.remoteMarkers(id, pid, epoch, commit, tps) }()
	}
	err := b.writeMarkers(pid, epoch, commit, local)
	for range remote {
		if rerr := <-errs; err == nil {
			err = rerr
		}
	}
	return err
}

// topicParts is one topic's partitions of a list of TPs.
type topicParts struct {
	topic string
	parts []int32
}

// byTopic groups tps by topic, topics in first-appearance order (the shape
// of every inter-broker request that names partitions).
func byTopic(tps []txn.TP) []topicParts {
	var out []topicParts
	idx := map[string]int{}
	for _, tp := range tps {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(out)
			idx[tp.Topic] = i
			out = append(out, topicParts{topic: tp.Topic})
		}
		out[i].parts = append(out[i].parts, tp.Partition)
	}
	return out
}

// remoteMarkers has broker id write the markers of its partitions tps.
func (b *Broker) remoteMarkers(id int32, pid int64, epoch int16, commit bool, tps []txn.TP) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = pid, epoch, commit
	for _, g := range byTopic(tps) {
		mk.Topics = append(mk.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: g.topic, Partitions: g.parts})
	}
	req.Markers = append(req.Markers, mk)
	resp, err := b.askPeer(b.waits, id, req)
	if err != nil {
		return err
	}
	for _, rm := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				if e := kerr.ErrorForCode(rp.ErrorCode); e != nil && e != kerr.UnknownTopicOrPartition {
					return fmt.Errorf("kafka: marker for %s-%d on broker %d: %w", rt.Topic, rp.Partition, id, e)
				}
			}
		}
	}
	return nil
}

// writeMarkers appends the markers of partitions this broker has and waits
// until they are durable.
func (b *Broker) writeMarkers(pid int64, epoch int16, commit bool, parts []txn.TP) error {
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
	// Offsets a transaction coordinated elsewhere wrote to this broker's
	// __consumer_offsets partitions count (commit) or go (abort) now that
	// its marker is durable after them.
	if g := b.groups.Load(); g != nil {
		for _, pp := range pend {
			if pp.p.Topic() == OffsetsTopic {
				g.CompleteTxn(int(pp.p.Index()), pid, commit, pp.end-1)
			}
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
	// remote: the transaction's coordinator is another broker, which
	// answered for each transactional partition of the request in codes
	// (enrolRemote).
	remote bool
	codes  map[txn.TP]int16
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
	pid, epoch, tps := b.txnBatches(version, r)
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

// txnBatches returns the partitions of a produce request this broker leads
// whose first batch is transactional, with that batch's producer id and
// epoch (the first producer's: another producer's batch is checked, and
// refused, alone).
func (b *Broker) txnBatches(version int16, r *kmsg.ProduceRequest) (int64, int16, []txn.TP) {
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
				continue
			}
			pid, epoch = h.ProducerID, h.ProducerEpoch
			tps = append(tps, txn.TP{Topic: p.Topic(), Partition: p.Index()})
		}
	}
	return pid, epoch, tps
}

// enrolRemote asks the transaction's coordinator, another broker, about
// every partition of a transactional produce this broker leads whose first
// batch is transactional, in one AddPartitionsToTxn (the batched form of
// KIP-890): to add them (transaction version 2, implicit) or to verify they
// are in the ongoing transaction (VerifyOnly). The answers go in tx.codes,
// mapped to the codes a produce answers; a coordinator that cannot be asked
// makes the whole request retriable (NOT_ENOUGH_REPLICAS, as Kafka answers a
// failed verification).
func (b *Broker) enrolRemote(ctx context.Context, version int16, r *kmsg.ProduceRequest, tx *txnProducer) {
	tx.remote = true
	pid, epoch, tps := b.txnBatches(version, r)
	if len(tps) == 0 {
		return
	}
	verifyOnly := !tx.implicit
	codes, kerrv := b.askTxnCoordinator(ctx, *tx.id, pid, epoch, tps, verifyOnly)
	if kerrv != nil {
		tx.err = kerr.NotEnoughReplicas
		return
	}
	tx.codes = map[txn.TP]int16{}
	for tp, code := range codes {
		switch kerr.ErrorForCode(code) {
		case kerr.ProducerFenced:
			code = kerr.InvalidProducerEpoch.Code // the produce response's code for it
		case kerr.ConcurrentTransactions:
			code = kerr.NotEnoughReplicas.Code // retriable for every client, as in Kafka
			if verifyOnly {
				code = kerr.InvalidTxnState.Code // as Enrolled answers
			}
		case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress:
			code = kerr.NotEnoughReplicas.Code
		}
		tx.codes[tp] = code
	}
}

// askTxnCoordinator sends transactional id's coordinator, another broker,
// one AddPartitionsToTxn (the batched form) for tps: to add them to the
// ongoing transaction or, with verifyOnly, to check they are in it. It
// returns the coordinator's code per partition, or COORDINATOR_NOT_AVAILABLE
// when it could not be asked.
func (b *Broker) askTxnCoordinator(ctx context.Context, id string, pid int64, epoch int16, tps []txn.TP, verifyOnly bool) (map[txn.TP]int16, *kerr.Error) {
	im := b.meta.Image()
	st := im.Topics[TxnStateTopic]
	if st == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	coord, _ := b.leaderOf(im, st, int32(statelog.PartitionFor(id, int(st.Partitions))))
	if coord < 0 {
		return nil, kerr.CoordinatorNotAvailable
	}
	rx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rx.TransactionalID, rx.ProducerID, rx.ProducerEpoch, rx.VerifyOnly = id, pid, epoch, verifyOnly
	for _, g := range byTopic(tps) {
		rx.Topics = append(rx.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: g.topic, Partitions: g.parts})
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Transactions = append(req.Transactions, rx)
	resp, err := b.askPeer(ctx, coord, req)
	if err != nil {
		b.log.Warn("a transaction's coordinator could not be asked", "transactional_id", id, "coordinator", coord, "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	ar := resp.(*kmsg.AddPartitionsToTxnResponse)
	if e := kerr.ErrorForCode(ar.ErrorCode); e != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	codes := map[txn.TP]int16{}
	for _, sx := range ar.Transactions {
		for _, st := range sx.Topics {
			for _, sp := range st.Partitions {
				codes[txn.TP{Topic: st.Topic, Partition: sp.Partition}] = sp.ErrorCode
			}
		}
	}
	return codes, nil
}

// txnProduceErr checks a transactional batch against the coordinator: its
// partition must be in the producer's ongoing transaction.
func (b *Broker) txnProduceErr(tx txnProducer, p *partition.Partition, h *storage.BatchHeader) error {
	if tx.id == nil {
		return errTxn
	}
	if tx.err != nil {
		return tx.err
	}
	if tx.remote {
		code, ok := tx.codes[txn.TP{Topic: p.Topic(), Partition: p.Index()}]
		if !ok {
			return errTxn
		}
		if e := kerr.ErrorForCode(code); e != nil {
			return e
		}
		return nil
	}
	c := b.txns.Load()
	if c == nil {
		return errTxn
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
