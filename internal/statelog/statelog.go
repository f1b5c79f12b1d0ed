// Package statelog is how coordinators keep their state in internal topics.
//
// Kafka keeps coordinator state in ordinary compacted partitions:
// __consumer_offsets for consumer groups and __transaction_state for
// transactions. A coordinator for an id is "the leader of partition
// PartitionFor(id, n)"; it appends its records there in Kafka's own record
// schemas and, when it takes over a partition (at start on a single node; on
// a leader change in a cluster), replays the partition into memory. The
// cleaner compacts the partitions like any topic with cleanup.policy=compact
// (the last record of each key wins, tombstones go after
// delete.retention.ms), so no coordinator compacts or swaps files itself.
//
// This package names that contract; the broker (internal/kafka) implements
// it with its partitions and group committer, so a coordinator's write is
// durable exactly when a produce with acks=all would be. Migrate moves the
// private state log of an older release into the internal topic.
package statelog

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partition is one partition of an internal topic.
type Partition interface {
	// Append appends recs as one uncompressed batch (producer id -1) and
	// returns the offset of the first record and a wait that returns nil
	// once the batch is durable (fsynced by a group-commit round). Records
	// of one partition are ordered by their offsets, so a coordinator can
	// use them as sequence numbers.
	Append(recs []kmsg.Record) (offset int64, wait func(context.Context) error, err error)
	// Replay calls fn with every record from the log start to the log end
	// in offset order, skipping control batches and data of aborted
	// transactions. The record, its key and its value are reused after fn
	// returns.
	Replay(fn func(offset int64, r *kmsg.Record) error) error
}

// PartitionFor maps a group or transactional id to its partition of an
// internal topic with n partitions exactly as Kafka does:
// Utils.abs(id.hashCode()) % n, where hashCode is Java's String.hashCode
// over UTF-16 code units and Utils.abs masks the sign bit.
func PartitionFor(id string, n int) int {
	var h int32
	for _, r := range id {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return int(h&0x7fffffff) % n
}

// Batch describes the batch a replayed record belongs to.
type Batch struct {
	ProducerID    int64
	ProducerEpoch int16
	Transactional bool
	// Control: the record is a transaction marker (Commit tells which).
	Control, Commit bool
}

// TxnPartition is a Partition that also takes records in a producer's
// transaction, Kafka's transactional offset commits: they count only once
// the transaction's COMMIT marker follows them in the partition.
type TxnPartition interface {
	Partition
	// AppendTxn is Append for records of producer pid's transaction.
	AppendTxn(recs []kmsg.Record, pid int64, epoch int16) (offset int64, wait func(context.Context) error, err error)
	// ReplayBatches is Replay with each record's batch, markers included.
	ReplayBatches(fn func(b Batch, offset int64, r *kmsg.Record) error) error
}
