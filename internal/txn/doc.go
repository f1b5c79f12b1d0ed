// Package txn is the transaction coordinator: it maps transactional ids to
// producer ids and epochs, tracks which partitions and groups each ongoing
// transaction touches, and drives commit and abort (KIP-98).
//
// # State machine
//
// Empty -> Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) -> PrepareCommit or
// PrepareAbort (EndTxn, a timeout, or an InitProducerId that fences the
// transaction) -> CompleteCommit or CompleteAbort (markers written) ->
// Ongoing (the next transaction) ... Every transition is durable in the
// state log before it takes effect, and the Prepare* record is durable
// before any marker: a broker that crashes between Prepare* and Complete*
// finishes the transaction (writes the markers and group offsets again,
// which is idempotent for readers) when it reopens. A transaction that was
// Ongoing at a crash stays open, as Kafka keeps it across a coordinator
// move: its record holds everything it has (partitions, groups, staged
// TxnOffsetCommit offsets), so its producer carries on, or the timeout
// aborts it from its original start. Records of older releases that did
// not log staged offsets (Entry.OffsetsLogged false) are aborted at reopen
// with the epoch bumped, as a timeout does, so a producer that lived
// through the restart is fenced rather than carrying on into a new
// transaction and committing the rest of the aborted one.
//
// A decided transaction (Prepare* durable) is answered as done; markers
// that cannot be written yet (a partition leader down) are retried in the
// background, the id answering CONCURRENT_TRANSACTIONS meanwhile
// (pending_markers.go).
//
// # State log
//
// The state lives in the internal topic __transaction_state (statelog),
// ordinary compacted partitions: an id's records go to partition
// statelog.PartitionFor(id, n), Kafka's mapping, in Kafka's record schemas
// (key TxnMetadataKey v0, value TxnMetadataValue v1; record.go), one record
// per transition holding the id's whole state. A transition is appended and
// waited for until the broker's group commit made it durable, and only
// then adopted. At start every partition is replayed, the last record of an
// id winning; a null value (tombstone) forgets the id, which expired
// (transactional.id.expiration.ms, expire.go). The broker's cleaner compacts
// the topic (cleanup.policy=compact) to the last record per id; nothing here
// rewrites files. A state log of an older release, <data-dir>/
// __transaction_state/ (a storage.Log of JSON Entry records), is migrated
// at the first start (migrate.go).
//
// Kafka's value has no place for some of the state this coordinator keeps:
// the groups of the transaction and their staged TxnOffsetCommit offsets,
// Entry.OffsetsLogged, the exhausted-epoch Marker, the epoch of Prev and
// TimedOut (KIP-588). They travel in one tagged field of the value with a
// tag number far above Kafka's (record.go), which Kafka's decoders skip
// as unknown, so kafka-console-consumer's TransactionLogMessageFormatter and
// other Kafka tools still read the records, and replay restores all of it.
// Kafka keeps staged offsets elsewhere: a TxnOffsetCommit is written to
// __consumer_offsets as a transactional offset commit (a batch of the
// producer's transaction, made visible by the COMMIT marker the coordinator
// writes there too), so its transaction state needs only the partitions.
// A group coordinated on another broker already goes that way (the broker
// enrols the offsets partition as an ordinary partition of the transaction;
// group/txn_offsets.go). A group on this broker still has its staged
// offsets ride in our tag, and commit writes them to __consumer_offsets as
// ordinary commits (Markers.CommitOffsets); moving it to the same design is
// what a group coordinator moving between brokers will need.
//
// # Concurrency
//
// Coordinator.mu guards the id map; each entry has its own mutex, held for
// the whole of a request on that id including marker writes and the wait
// for durability, so requests of one transactional id are serialised and
// different ids run in parallel. Coordinator.logMu guards the last durable
// record of each id (what the admin reads decode) and is never held while
// waiting. Lock order: entry.mu -> Coordinator.mu -> Coordinator.logMu;
// entry.mu may be held while the broker takes partition and group locks.
package txn
