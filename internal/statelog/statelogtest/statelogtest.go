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
	if p.Fail != nil {
		return 0, nil, p.Fail
	}
	off, err := p.Log.Append(storage.EncodeBatch(time.Now().UnixMilli(), recs))
	if err != nil {
		return 0, nil, err
	}
	if _, err := p.Log.Sync(); err != nil {
		return 0, nil, err
	}
	return off, func(context.Context) error { return nil }, nil
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
