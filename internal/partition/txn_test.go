package partition

import (
	"testing"

	"github.com/chronik-stream/chronik/internal/storage"
)

func TestMarkerEncoding(t *testing.T) {
	for _, commit := range []bool{false, true} {
		raw := encodeMarker(42, 7, commit, 1000)
		h, err := storage.ValidateBatch(raw)
		if err != nil {
			t.Fatalf("marker does not validate: %v", err)
		}
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 42 || h.ProducerEpoch != 7 || h.RecordCount != 1 {
			t.Fatalf("marker header %+v", h)
		}
		got, err := markerIsCommit(raw)
		if err != nil || got != commit {
			t.Fatalf("markerIsCommit = %v, %v; want %v", got, err, commit)
		}
	}
}

func FuzzMarkerIsCommit(f *testing.F) {
	f.Add(encodeMarker(1, 0, true, 0))
	f.Add(encodeMarker(1, 0, false, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := storage.ValidateBatch(b); err != nil {
			return // only validated batches reach markerIsCommit
		}
		markerIsCommit(b) // must not panic
	})
}
