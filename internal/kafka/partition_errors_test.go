package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestPartitionErr(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want *kerr.Error
	}{
		{nil, nil},
		{partition.ErrUnknownProducerID, kerr.UnknownProducerID},
		{partition.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{partition.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{partition.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
		{partition.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
		{fmt.Errorf("%w: append: %w", partition.ErrStorage, storage.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},
		{fmt.Errorf("%w: append: %w", partition.ErrStorage, errors.New("disk full")), kerr.KafkaStorageError},
		{errors.New("anything else"), kerr.KafkaStorageError},
	} {
		if got := partitionErr(tt.err); got != tt.want {
			t.Errorf("partitionErr(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
