package kafka

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFsyncFailureTakesPartitionOffline: a failed fsync is never retried and
// never reported as success. The partition answers KAFKA_STORAGE_ERROR to
// produce, fetch and list-offsets, Metadata marks it offline, the data it
// acknowledged before stays readable after a restart, and the other
// partitions keep working throughout.
func TestFsyncFailureTakesPartitionOffline(t *testing.T) {
	var failing atomic.Bool
	var calls atomic.Int64
	inject := func(o *Options) {
		o.Fsync = func(f *os.File) error {
			if failing.Load() && strings.Contains(f.Name(), "faulty-1"+string(os.PathSeparator)) {
				calls.Add(1)
				return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
			}
			return f.Sync()
		}
	}
	f := openFixture(t, t.TempDir(), inject)
	f.createTopic("faulty", 2, nil)
	before := f.mustProduce("faulty", 1, makeRecordBatch(t, plainBatch(3)))
	if before != 0 {
		t.Fatalf("first base offset %d", before)
	}

	failing.Store(true)
	sp := f.produce("faulty", 1, makeRecordBatch(t, plainBatch(2)))
	wantCode(t, "produce after fsync failure", sp.ErrorCode, kerr.KafkaStorageError)
	if calls.Load() != 1 {
		t.Fatalf("fsync called %d times for the failed partition, want exactly 1 (never retried)", calls.Load())
	}
	sp = f.produce("faulty", 1, makeRecordBatch(t, plainBatch(1)))
	wantCode(t, "produce to the offline partition", sp.ErrorCode, kerr.KafkaStorageError)
	if calls.Load() != 1 {
		t.Fatalf("fsync retried on an offline partition: %d calls", calls.Load())
	}
	// The other partition is unaffected.
	if off := f.mustProduce("faulty", 0, makeRecordBatch(t, plainBatch(2))); off != 0 {
		t.Fatalf("healthy partition base offset %d, want 0", off)
	}
	fp := f.fetch("faulty", 1, 0, 1<<20)
	wantCode(t, "fetch from the offline partition", fp.ErrorCode, kerr.KafkaStorageError)
	lo := f.listOffset("faulty", 1, -1)
	wantCode(t, "list offsets on the offline partition", lo.ErrorCode, kerr.KafkaStorageError)

	md := f.do(metadataReq("faulty"), 12).(*kmsg.MetadataResponse)
	for _, p := range md.Topics[0].Partitions {
		switch p.Partition {
		case 1:
			wantCode(t, "metadata for the offline partition", p.ErrorCode, kerr.KafkaStorageError)
			if len(p.OfflineReplicas) != 1 {
				t.Errorf("offline replicas %v, want [1]", p.OfflineReplicas)
			}
		case 0:
			wantCode(t, "metadata for the healthy partition", p.ErrorCode, nil)
		}
	}

	// A restart (the operator's remedy) recovers the partition: what was
	// acknowledged is there, and it accepts writes again.
	failing.Store(false)
	f = f.reopen(true)
	fp = f.fetch("faulty", 1, 0, 1<<20)
	wantCode(t, "fetch after restart", fp.ErrorCode, nil)
	if n := len(batchOffsets(t, fp.RecordBatches)); n < 1 {
		t.Fatalf("acknowledged batch missing after restart")
	}
	if off := f.mustProduce("faulty", 1, makeRecordBatch(t, plainBatch(1))); off < 3 {
		t.Fatalf("produce after restart at offset %d, want >= 3", off)
	}
}
