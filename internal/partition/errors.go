package partition

import "errors"

// Errors of an append or a read, for the protocol layer to translate (each
// is one Kafka error code there). Storage failures come wrapped in
// ErrStorage with the storage error kept in the chain.
var (
	// ErrUnknownProducerID: a sequence other than 0 from a producer the
	// partition keeps no state for (never seen, or its state expired).
	ErrUnknownProducerID = errors.New("partition: unknown producer id")
	// ErrInvalidProducerEpoch: a producer epoch older than the partition's.
	ErrInvalidProducerEpoch = errors.New("partition: producer epoch is older than the partition's")
	// ErrOutOfOrderSequence: a sequence that neither continues the
	// producer's last batch nor repeats one of its recent batches.
	ErrOutOfOrderSequence = errors.New("partition: out of order sequence number")
	// ErrFencedLeaderEpoch: a client's leader epoch older than ours.
	ErrFencedLeaderEpoch = errors.New("partition: leader epoch is older than the partition's")
	// ErrUnknownLeaderEpoch: a client's leader epoch newer than ours.
	ErrUnknownLeaderEpoch = errors.New("partition: leader epoch is newer than the partition's")
	// ErrStorage: the log or a partition file could not be written.
	ErrStorage = errors.New("partition: storage error")
)
