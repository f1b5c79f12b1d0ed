package metadata

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCreateTopics creates n topics one by one in a fresh store (one
// op = all n, each fsynced as CreateTopics does): the cost of a change must
// not grow with the number of topics already there (issue 13).
func BenchmarkCreateTopics(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, err := Open(b.TempDir(), nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i := range n {
					if _, err := s.CreateTopic(fmt.Sprintf("topic-%06d", i), 1, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/topic")
		})
	}
}

// BenchmarkOpen opens a metadata quorum log of n topic records (plus a
// producer id reservation after every 10th, as a busy broker writes them):
// "replay" as a kill -9 leaves it (every entry applied at start),
// "snapshot" after a clean close (which takes a snapshot).
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mode := range []string{"replay", "snapshot"} {
			b.Run(fmt.Sprintf("topics=%d/%s", n, mode), func(b *testing.B) {
				dir := b.TempDir()
				writeTopicRaftLog(b, dir, n)
				if mode == "snapshot" {
					s, err := Open(dir, nil)
					if err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
				for b.Loop() {
					if mode == "replay" {
						b.StopTimer()
						os.RemoveAll(dir)
						writeTopicRaftLog(b, dir, n)
						b.StartTimer()
					}
					s, err := Open(dir, nil)
					if err != nil {
						b.Fatal(err)
					}
					if got := len(s.Image().Topics); got != n {
						b.Fatalf("%d topics after replay, want %d", got, n)
					}
					b.StopTimer()
					s.q.closeOnce.Do(func() { close(s.q.done) }) // no snapshot at close: the next replay is the same
					s.q.r.Shutdown().Error()
					s.q.wg.Wait()
					s.q.logs.Close()
					b.StartTimer()
				}
			})
		}
	}
}

// writeLegacyLog writes recs as the metadata log of a release before the
// quorum, with one fsync at the end.
func writeLegacyLog(tb testing.TB, dir string, recs []*record) {
	tb.Helper()
	l, err := storage.Open(filepath.Join(dir, LegacyDir), storage.Options{SegmentBytes: 64 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	add := func(rec *record) {
		v, err := json.Marshal(rec)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := l.Append(storage.EncodeBatch(time.Now().UnixMilli(), []kmsg.Record{{Value: v}})); err != nil {
			tb.Fatal(err)
		}
	}
	for _, rec := range recs {
		add(rec)
	}
	if _, err := l.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}

// writeTopicRaftLog writes the quorum log of a broker alone that created n
// topics, directly and with one commit (the store would fsync each).
func writeTopicRaftLog(tb testing.TB, dir string, n int) {
	tb.Helper()
	qdir := filepath.Join(dir, Dir)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(qdir, "raft.db")})
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(qdir, 2, hclog.NewNullLogger())
	if err != nil {
		tb.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = "1"
	addr, trans := raft.NewInmemTransport("node-1")
	err = raft.BootstrapCluster(conf, logs, logs, snaps, trans, raft.Configuration{Servers: []raft.Server{{ID: "1", Address: addr}}})
	if err != nil {
		tb.Fatal(err)
	}
	var entries []*raft.Log
	add := func(rec *record) {
		v, err := json.Marshal(rec)
		if err != nil {
			tb.Fatal(err)
		}
		entries = append(entries, &raft.Log{Index: uint64(len(entries) + 2), Term: 1, Type: raft.LogCommand, Data: v})
	}
	add(&record{Type: "cluster", ClusterID: "bench-cluster"})
	for i := range n {
		id := TopicID{byte(i), byte(i >> 8), byte(i >> 16), 1}
		add(&record{Type: "topic", Create: true, Name: fmt.Sprintf("topic-%06d", i), ID: &id, Partitions: 1})
		if i%10 == 9 {
			add(&record{Type: "producer_ids", NextPID: int64(i+1) * 1000})
		}
	}
	if err := logs.StoreLogs(entries); err != nil {
		tb.Fatal(err)
	}
}
