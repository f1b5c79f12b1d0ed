package kafka

import (
	"errors"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionErr translates an error of the partition layer into the Kafka
// error a per-partition answer carries: the one place where partition and
// storage errors become protocol codes. Anything unrecognised is a storage
// failure.
func partitionErr(err error) *kerr.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, partition.ErrUnknownProducerID):
		return kerr.UnknownProducerID
	case errors.Is(err, partition.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, partition.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber
	case errors.Is(err, partition.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch
	case errors.Is(err, partition.ErrUnknownLeaderEpoch):
		return kerr.UnknownLeaderEpoch
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	default:
		return kerr.KafkaStorageError
	}
}
