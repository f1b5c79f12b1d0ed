// Package statelogtest gives coordinator tests statelog partitions without
// a broker: each is a storage.Log in its own directory, appended to and
// fsynced directly (no group committer), so tests can reopen a directory
// to see what survived, or open it twice to see what a crash would leave.
package statelogtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Open opens (or creates) n partitions under dir/<topic>-<i>; they are
// closed when the test ends.
func Open(t testing.TB, dir, topic string, n int) []statelog.Partition {
	t.Helper()
	out := make([]statelog.Partition, n)
	for i := range n {
		l, err := storage.Open(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, i)), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		out[i] = &Partition{Log: l}
	}
	return out
}

// Partition is a statelog.Partition over one storage.Log.
type Partition struct {
	Log *storage.Log
	// Fail, when set, makes Append fail with it.
	Fail error
}

// Append appends and fsyncs at once; the wait always succeeds.
func (p *Partition) Append(recs []kmsg.Record) (int64, func(context.Context) error, error) {
	return p.append(storage.EncodeBatch(time.Now().UnixMilli(), recs))
}

// AppendTxn appends recs as a transactional batch of pid and fsyncs.
func (p *Partition) AppendTxn(recs []kmsg.Record, pid int64, epoch int16) (int64, func(context.Context) error, error) {
	return p.append(storage.EncodeTxnBatch(time.Now().UnixMilli(), recs, pid, epoch))
}

// AppendMarker appends pid's COMMIT (commit) or ABORT marker and fsyncs.
func (p *Partition) AppendMarker(pid int64, epoch int16, commit bool) (int64, error) {
	off, _, err := p.append(storage.EncodeMarker(time.Now().UnixMilli(), pid, epoch, commit))
	return off, err
}

func (p *Partition) append(raw []byte) (int64, func(context.Context) error, error) {
	if p.Fail != nil {
		return 0, nil, p.Fail
	}
	off, err := p.Log.Append(raw)
	if err != nil {
		return 0, nil, err
	}
	if _, err := p.Log.Sync(); err != nil {
		return 0, nil, err
	}
	return off, func(context.Context) error { return nil }, nil
}

// ReplayBatches reads the log from its start with each record's batch.
func (p *Partition) ReplayBatches(fn func(statelog.Batch, int64, *kmsg.Record) error) error {
	var cur statelog.Batch
	return storage.ReplayRecords(p.Log, -1, func(h *storage.BatchHeader) (bool, error) {
		cur = statelog.Batch{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, Transactional: h.IsTransactional(), Control: h.IsControl()}
		return true, nil
	}, func(off int64, r *kmsg.Record) error {
		b := cur
		b.Commit = b.Control && len(r.Key) >= 4 && r.Key[3] == 1
		return fn(b, off, r)
	})
}

// Replay reads the log from its start.
func (p *Partition) Replay(fn func(int64, *kmsg.Record) error) error {
	return storage.ReplayRecords(p.Log, -1, nil, fn)
}

// CopyDir copies the files of from (a fixture: a state log of an older
// release) into a new directory to.
func CopyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
