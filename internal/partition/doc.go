// Package partition is the partition layer: one partition of a topic as the
// broker serves it, below the protocol handlers and above storage. A
// Partition is its log (internal/storage) plus everything that must change
// together with an append:
//
//   - leader epochs: every appended batch is stamped with the current leader
//     epoch, and the first offset of each epoch is checkpointed
//     (leader_epoch.go); OffsetForLeaderEpoch answers from it;
//   - idempotent-producer state: per producer its epoch and last five
//     batches' sequences, checked and updated under the partition lock with
//     the append (partition.go), forgotten after producer.id.expiration.ms
//     (ExpireProducers);
//   - the transaction index: open transactions (first offset per producer),
//     aborted transactions, COMMIT/ABORT markers, the last stable offset
//     (txn.go);
//   - retention and cleaning of this one partition (retention.go,
//     cleaner.go) and what the WAL replay needs (wal.go); the partition is a
//     commit.WALLog for the group committer.
//
// It knows logs, producer state and epochs; it knows no Kafka protocol:
// failures are package-prefixed sentinel errors (ErrUnknownProducerID,
// ErrInvalidProducerEpoch, ErrOutOfOrderSequence, ErrFencedLeaderEpoch,
// ErrUnknownLeaderEpoch, ErrStorage wrapping the storage error), which
// internal/kafka translates into error codes in one place. Which partitions
// exist, their configs and the sweeps over them belong to the Broker
// (internal/kafka).
//
// # On-disk files
//
// Besides the storage files (see internal/storage), a partition directory
// holds:
//
//	partition.metadata        JSON {"topic_id": ...}: written once when the
//	                          directory is created; a directory whose id is
//	                          not the topic's (an older topic of the same
//	                          name) is wiped by Create or Open
//	leader-epoch-checkpoint   Kafka's text format: "0" (version), the entry
//	                          count, then "epoch start-offset" per line,
//	                          ascending; written only when the history
//	                          is more than "epoch 0 from the log start"
//	                          (an epoch starts, the log start moves);
//	                          without the file every open derives that
//	                          history again
//	producers.snapshot        "chronik-producers-v2 ", the CRC-32C of the
//	                          rest as 8 hex digits, a newline, then JSON
//	                          of the producer state, open and aborted
//	                          transactions and the log end it covers;
//	                          written by Close when it would say
//	                          something new (an append or an expiry since
//	                          it was loaded). A file that is only the JSON
//	                          (earlier versions) is read too.
//
// The first two are written atomically and durably (temporary file, fsync,
// rename, fsync of the directory). The snapshot is rewritten at every
// close of a changed partition, so it is overwritten in place once the log
// is durable (storage.OverwriteFile; in a CloseBatch after its syncfs): a
// crash may tear it, which its checksum turns into "no snapshot" (the log
// is scanned from its start instead).
//
// # Invariants
//
//   - A Partition is open or closed (handle.go). New touches no file; the
//     first use opens the directory (creating it) and the log, and loads
//     the producer state. Every method holds Partition.mu shared for its
//     duration, so closing (mu exclusive) never happens under a running
//     call; the open-file budget (Files, files.go) frees the descriptors
//     of least recently used partitions (closing unchanged ones, only
//     releasing the files of changed ones: storage.Log.ReleaseFiles keeps
//     the state, and the next use reopens one file per segment; a
//     released partition still counts as open), closing least recently
//     used partitions with TryLock only, so it never waits for, or delays,
//     a request. A failed log is never closed by it (it stays offline).
//     What Metadata asks of every partition (leader epoch, failed) is kept
//     in the Partition and never opens one; Offsets of a partition closed
//     since its last use come from what its close saw (it cannot change
//     while closed), and offsets and transactions of one that released
//     its files come from its state without reopening them (useState); the sweeps open a closed
//     partition only when its summary from the last close says there is
//     work (retention, cleaning) and close it again after.
//   - Appends, and the producer and transaction state they change, are
//     serialised by state.mu: an idempotent batch's sequence is checked
//     and recorded with its append, under the same hold of the lock. The
//     epoch entry for an append is checkpointed before the batch is
//     appended.
//   - The WAL replay at start opens partitions without producer state
//     (ReplayWALBatch), then LoadProducers loads producers.snapshot if it
//     covers a prefix of the log and replays the batch headers after it
//     (the whole log without one); a state not loaded is never evicted and
//     never writes a snapshot. State rebuilt so counts as seen at the
//     restart: expiry may start late, never early.
//   - The log start moves only through SetLogStartOffset (DeleteRecords,
//     ApplyRetention), which trims the epoch checkpoint after it; Open trims
//     it again, repairing a crash between the two.
//   - Retention deletes only segments wholly below the high watermark;
//     cleaning keeps each producer's last data batch header.
//
// # Lock order
//
// Partition.mu (open/close) -> state.mu -> leaderEpochs.mu (a leaf), and
// state.mu -> the storage log's locks; Files.mu is taken under
// Partition.mu (opened, closed) and never held while taking it. No method
// of a Partition calls another while holding Partition.mu shared (a
// waiting Close would deadlock a recursive read lock). Callers may hold the Broker's topic lock or a transactional
// id's lock (marker writes) when they take Partition.mu, never the other way
// round; the group committer's lock is never held while taking it.
package partition
