package group

// Offsets of a transaction whose coordinator is another broker, as Kafka
// keeps all transactional offsets: TxnOffsetCommit writes them to the
// group's __consumer_offsets partition as a batch of the producer's
// transaction (statelog.TxnPartition), durable before the answer, and they
// count only when the transaction's COMMIT marker, which the transaction
// coordinator has written to that partition, follows them (CompleteTxn at
// runtime, the marker met in order at replay); an ABORT marker drops them.
// The committed offsets take the marker's position in the log, so a
// commit written after the marker wins over them and one written before
// loses. (A transaction coordinated on this broker stages its offsets with
// the coordinator and commits them here in process: CommitTxnOffsets.)

import (
	"context"
	"fmt"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnKey names one producer's open transaction in one partition.
type txnKey struct {
	pid  int64
	part int
}

// StageTxnOffsets writes the offsets of producer pid's transaction to the
// group's partition and returns once they are durable; they become visible
// when CompleteTxn sees the transaction committed there.
func (c *Coordinator) StageTxnOffsets(gid string, pid int64, epoch int16, commits []Commit) error {
	if len(commits) == 0 {
		return nil
	}
	o := c.offsets
	part := o.partitionOf(gid)
	tp, ok := o.parts[part].(statelog.TxnPartition)
	if !ok {
		return fmt.Errorf("group: __consumer_offsets-%d does not take transactional offsets here", part)
	}
	now := c.opts.Now().UnixMilli()
	changes := make([]change, len(commits))
	recs := make([]kmsg.Record, len(commits))
	for i, cm := range commits {
		changes[i] = change{group: gid, tp: cm.TP, off: Offset{Offset: cm.Offset, LeaderEpoch: cm.LeaderEpoch, Metadata: cm.Metadata, CommitMs: now}}
		recs[i].Key = encodeOffsetKey(gid, cm.TP)
		recs[i].Value = encodeOffsetValue(changes[i].off)
	}
	_, wait, err := tp.AppendTxn(recs, pid, epoch)
	if err != nil {
		return fmt.Errorf("group: append transactional offsets: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeWait)
	defer cancel()
	if err := wait(ctx); err != nil {
		return fmt.Errorf("group: transactional offsets not durable: %w", err)
	}
	o.mu.Lock()
	k := txnKey{pid, part}
	o.pending[k] = append(o.pending[k], changes...)
	o.mu.Unlock()
	return nil
}

// CompleteTxn applies (commit) or drops the offsets producer pid's
// transaction staged in __consumer_offsets partition part, whose marker is
// durable at markerOffset.
func (c *Coordinator) CompleteTxn(part int, pid int64, commit bool, markerOffset int64) {
	c.offsets.completeTxn(txnKey{pid, part}, commit, markerOffset)
}

func (o *offsetStore) completeTxn(k txnKey, commit bool, markerOffset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	changes := o.pending[k]
	delete(o.pending, k)
	if !commit {
		return
	}
	for _, ch := range changes {
		o.applyLocked(ch.group, ch.tp, &offsetEntry{Offset: ch.off, seq: markerOffset, deleted: ch.del})
	}
}

// PendingTxnOffsets returns the partitions of group gid with offsets staged
// by transactions not completed yet (OffsetFetch's require_stable).
func (c *Coordinator) PendingTxnOffsets(gid string) map[TP]bool {
	o := c.offsets
	o.mu.Lock()
	defer o.mu.Unlock()
	var out map[TP]bool
	for _, changes := range o.pending {
		for _, ch := range changes {
			if ch.group == gid {
				if out == nil {
					out = map[TP]bool{}
				}
				out[ch.tp] = true
			}
		}
	}
	return out
}

// replayTxn replays partition i with its transactional offsets: staged at
// their batch, applied at their COMMIT marker, dropped at ABORT; those of
// transactions still open stay pending.
func (o *offsetStore) replayTxn(i int, p statelog.TxnPartition) error {
	return p.ReplayBatches(func(b statelog.Batch, off int64, r *kmsg.Record) error {
		switch {
		case b.Control:
			o.completeTxn(txnKey{b.ProducerID, i}, b.Commit, off)
		case b.Transactional:
			if ch, ok := decodeOffsetChange(r); ok {
				o.mu.Lock()
				k := txnKey{b.ProducerID, i}
				o.pending[k] = append(o.pending[k], ch)
				o.mu.Unlock()
			}
		default:
			o.applyRecord(off, r)
		}
		return nil
	})
}

// decodeOffsetChange decodes an offset commit record (false: another kind).
func decodeOffsetChange(r *kmsg.Record) (change, bool) {
	if len(r.Key) < 2 {
		return change{}, false
	}
	if v := int16(r.Key[0])<<8 | int16(r.Key[1]); v != 0 && v != keyOffsetCommit {
		return change{}, false
	}
	var k kmsg.OffsetCommitKey
	if k.ReadFrom(r.Key) != nil {
		return change{}, false
	}
	ch := change{group: k.Group, tp: TP{Topic: k.Topic, Partition: k.Partition}, del: r.Value == nil}
	if !ch.del {
		var v kmsg.OffsetCommitValue
		if v.ReadFrom(r.Value) != nil {
			return change{}, false
		}
		ch.off = Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitMs: v.CommitTimestamp}
	}
	return ch, true
}
