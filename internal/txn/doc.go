// Package txn is the transaction coordinator: it maps transactional ids to
// producer ids and epochs, tracks which partitions and groups each ongoing
// transaction touches, and drives commit and abort (KIP-98).
//
// # State machine
//
// Empty -> Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) -> PrepareCommit or
// PrepareAbort (EndTxn, a timeout, or an InitProducerId that fences the
// transaction) -> CompleteCommit or CompleteAbort (markers written) ->
// Ongoing (the next transaction) ... Every transition is written to the
// state log before it takes effect, and the Prepare* record is written
// before any marker: a broker that crashes between Prepare* and Complete*
// finishes the transaction (writes the markers and group offsets again,
// which is idempotent for readers) when it reopens. A transaction that was
// Ongoing at a crash is aborted on reopen (its TxnOffsetCommit offsets were
// only in memory) with the epoch bumped, as a timeout does, so a producer
// that lived through the restart is fenced rather than carrying on into a
// new transaction and committing the rest of the aborted one.
//
// # On-disk format
//
// <data-dir>/__transaction_state/ is a storage.Log of uncompressed batches,
// one record per transition whose value is the JSON of the transactional
// id's whole state (record type Entry); replay keeps the last record per id.
// A record with a null value (a tombstone) makes replay forget the id: it
// expired (transactional.id.expiration.ms). The log is compacted to the last
// record per id when it grows past a threshold; see compact.go.
//
// # Concurrency
//
// Coordinator.mu guards the id map; each entry has its own mutex, held for
// the whole of a request on that id including marker writes, so requests of
// one transactional id are serialised and different ids run in parallel.
// Lock order: entry.mu -> Coordinator.mu -> Coordinator.logMu.
package txn
