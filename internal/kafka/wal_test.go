package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/wal"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lockedBuffer collects a broker's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// walFixture is a broker wired like the server: the WAL at <dir>/__wal is
// handed to the committer and to New for replay.
type walFixture struct {
	*brokerFixture
	wal  *wal.WAL
	wal2 *wal.WAL // the committer's second file (wal.SecondFile)
	logs *lockedBuffer
	run  func() // starts the committer's Run loop
	// pause stops it again (Run's last round included), so the test can
	// cut rounds itself with com.Flush().
	pause func()
}

// openWALFixture opens a broker over dir. The committer does not run until
// f.run(), so a test can cut rounds itself with f.com.Flush().
func openWALFixture(t *testing.T, dir string, mods ...func(*Options)) *walFixture {
	t.Helper()
	opts := Options{
		DataDir: dir, NodeID: 1, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092,
		AutoCreateTopics: false, DefaultPartitions: 3, Defaults: testDefaults(),
	}
	for _, m := range mods {
		m(&opts)
	}
	logs := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	meta, err := metadata.Open(dir, nil)
	if err != nil {
		t.Fatalf("metadata.Open: %v", err)
	}
	w, err := wal.Open(filepath.Join(dir, "__wal"), nil)
	if err != nil {
		t.Fatalf("wal.Open: %v", err)
	}
	w2, err := wal.OpenFile(filepath.Join(dir, "__wal"), wal.SecondFile, nil)
	if err != nil {
		t.Fatalf("wal.OpenFile: %v", err)
	}
	opts.WAL, opts.WAL2 = w, w2
	com := commit.New(commit.Options{WAL: w, WAL2: w2})
	b, err := New(opts, meta, com)
	if err != nil {
		meta.Close()
		w.Close()
		w2.Close()
		t.Fatalf("kafka.New: %v\n%s", err, logs)
	}
	f := &walFixture{
		brokerFixture: &brokerFixture{t: t, dir: dir, opts: opts, meta: meta, com: com, b: b},
		wal:           w, wal2: w2, logs: logs,
	}
	var cancel context.CancelFunc
	var done chan struct{}
	f.run = func() {
		if cancel != nil {
			return
		}
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan struct{})
		go func() { defer close(done); com.Run(ctx) }()
	}
	f.pause = func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	f.stopCommitter = f.pause
	t.Cleanup(func() {
		if !f.closed {
			f.brokerFixture.close()
			w.Reset()
			w2.Reset()
		}
		w.Close()
		w2.Close()
	})
	return f
}

// crashAndReopen abandons the broker (kill -9: no file is closed, no WAL
// reset), lets damage change the files, and opens a new broker on the dir.
func (f *walFixture) crashAndReopen(damage func(), mods ...func(*Options)) *walFixture {
	f.crash()
	if damage != nil {
		damage()
	}
	return openWALFixture(f.t, f.dir, mods...)
}

func (f *walFixture) part(topic string, i int32) *partition.Partition {
	f.t.Helper()
	ts := f.b.topic(topic)
	if ts == nil || int(i) >= len(ts.parts) {
		f.t.Fatalf("no partition %s-%d", topic, i)
	}
	return ts.parts[i]
}

// logBytes is the whole content of a partition log.
func (f *walFixture) logBytes(topic string, i int32) []byte {
	f.t.Helper()
	l := f.part(topic, i).Log()
	out, err := l.Read(l.LogStartOffset(), math.MaxInt32, l.LogEndOffset(), nil)
	if err != nil {
		f.t.Fatalf("read %s-%d: %v", topic, i, err)
	}
	return out
}

// produceRound appends one batch to each partition with the committer
// stopped, then cuts one round covering all of them and returns the base
// offsets it acknowledged.
func (f *walFixture) produceRound(topic string, batches map[int32][]byte) map[int32]int64 {
	f.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	parts := make([]int32, 0, len(batches))
	for p := range batches {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batches[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	rep := f.handle(req, 9)
	f.com.Flush()
	resp := resolve(f.t, rep).(*kmsg.ProduceResponse)
	out := map[int32]int64{}
	for _, sp := range resp.Topics[0].Partitions {
		if sp.ErrorCode != 0 {
			f.t.Fatalf("produce %s-%d: %v", topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
		}
		out[sp.Partition] = sp.BaseOffset
	}
	return out
}

// produceAsync produces without t.Fatal (for goroutines).
func (f *walFixture) produceAsync(topic string, p int32, records []byte) (int64, error) {
	req := produceReq(topic, p, -1, records)
	req.SetVersion(9)
	rep, err := f.b.Handle(context.Background(), &wire.Request{Key: req.Key(), Version: 9, Body: req})
	if err != nil {
		return -1, err
	}
	resp := rep.Resp
	if rep.Later != nil {
		resp = rep.Later()
	}
	sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		return -1, kerr.ErrorForCode(sp.ErrorCode)
	}
	return sp.BaseOffset, nil
}

func segmentPath(t *testing.T, dir, topic string, p int32) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(partitionDir(dir, topic, p), "*.log"))
	if len(matches) == 0 {
		t.Fatalf("no segment for %s-%d", topic, p)
	}
	sort.Strings(matches)
	return matches[len(matches)-1]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func walRecords(t *testing.T, dir string) int {
	t.Helper()
	w, err := wal.Open(filepath.Join(dir, "__wal"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n := 0
	if err := w.Replay(func(wal.Key, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWALReplayRestoresLostSegmentData: acknowledged batches whose segment
// writes a power loss took come back from the WAL at their offsets, byte for
// byte, with their producer-idempotence state.
func TestWALReplayRestoresLostSegmentData(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	const topic, nparts, rounds = "w", 3, 4
	f.createTopic(topic, nparts, nil)
	for p := range int32(nparts) {
		f.part(topic, p).Log() // partitions are created on first use
	}
	pid := initPID(f.brokerFixture, -1, -1, nil).ProducerID

	// Deterministic WAL rounds: every round covers all three partitions.
	// Partition 1 gets idempotent batches (4 records each).
	sizes := make([][]int64, nparts) // segment size before round r
	round := 0
	walRounds := func(n int) {
		for range n {
			batches := map[int32][]byte{}
			for p := range int32(nparts) {
				sizes[p] = append(sizes[p], fileSize(t, segmentPath(t, dir, topic, p)))
				s := plainBatch(2 + round)
				if p == 1 {
					s = batchSpec{n: 4, pid: pid, epoch: 0, seq: int32(4 * round), valueSize: 30}
				}
				batches[p] = makeRecordBatch(t, s)
			}
			f.produceRound(topic, batches)
			round++
		}
	}
	walRounds(rounds / 2)
	if st := f.com.Stats(); st.WALRounds != rounds/2 {
		t.Fatalf("WALRounds = %d after %d three-partition rounds", st.WALRounds, rounds/2)
	}

	// Then concurrent producers with the committer running (rounds of one
	// or more logs, through the WAL or fsynced directly).
	f.run()
	var wg sync.WaitGroup
	errs := make(chan error, nparts)
	for p := range int32(nparts) {
		if p == 1 {
			continue // keeps the idempotent batches in the producer window
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := f.produceAsync(topic, p, makeRecordBatch(t, plainBatch(3))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent produce: %v", err)
	}
	f.pause()
	walRounds(rounds - rounds/2) // so every partition has a WAL-only tail
	if st := f.com.Stats(); st.WALRounds < rounds {
		t.Fatalf("WALRounds = %d, want >= %d", st.WALRounds, rounds)
	}

	want := make([][]byte, nparts)
	ends := make([]int64, nparts)
	synced := make([]int64, nparts)
	for p := range int32(nparts) {
		want[p] = f.logBytes(topic, p)
		pl := f.part(topic, p).Log()
		ends[p] = pl.LogEndOffset()
		if pl.DurableOffset() != ends[p] {
			t.Fatalf("partition %d: durable %d != end %d after every produce was acknowledged", p, pl.DurableOffset(), ends[p])
		}
		// Position of the fsynced prefix: a power loss cannot take it.
		pre, err := pl.Read(0, math.MaxInt32, pl.SyncedOffset(), nil)
		if err != nil {
			t.Fatal(err)
		}
		synced[p] = int64(len(pre))
	}

	// Power loss: the page cache of the segment files is gone. Partition 0
	// loses everything unsynced, partition 1 the batches after round 1,
	// partition 2 is torn in the middle of the last round's batch.
	f2 := f.crashAndReopen(func() {
		cut := []int64{synced[0], max(synced[1], sizes[1][1]), max(synced[2], sizes[2][rounds-1]+7)}
		for p := range int32(nparts) {
			path := segmentPath(t, dir, topic, p)
			if cut[p] >= fileSize(t, path) {
				t.Fatalf("partition %d: cut %d does not remove anything", p, cut[p])
			}
			if err := os.Truncate(path, cut[p]); err != nil {
				t.Fatal(err)
			}
		}
	})
	if !strings.Contains(f2.logs.String(), "WAL replayed") {
		t.Errorf("no \"WAL replayed\" line in the log:\n%s", f2.logs)
	}
	for p := range int32(nparts) {
		got := f2.logBytes(topic, p)
		if !bytes.Equal(got, want[p]) {
			t.Errorf("partition %d: %d bytes after replay, want %d acknowledged bytes (equal: %v)", p, len(got), len(want[p]), bytes.Equal(got, want[p]))
		}
		pl := f2.part(topic, p).Log()
		if pl.LogEndOffset() != ends[p] || pl.DurableOffset() != ends[p] || pl.SyncedOffset() != ends[p] {
			t.Errorf("partition %d: end %d durable %d synced %d, want all %d", p, pl.LogEndOffset(), pl.DurableOffset(), pl.SyncedOffset(), ends[p])
		}
		// Through the Fetch handler too.
		fp := f2.fetch(topic, p, 0, 1<<20)
		if fp.ErrorCode != 0 || fp.HighWatermark != ends[p] {
			t.Errorf("fetch %d: %v hw %d, want hw %d", p, kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark, ends[p])
		}
	}
	// The WAL was reset after the replay.
	if n := walRecords(t, dir); n != 0 {
		t.Fatalf("WAL holds %d records after the replay", n)
	}

	f2.run()
	// Idempotence state includes the restored batches: a retry of the last
	// one is a duplicate (same offset, nothing appended), the next sequence
	// is accepted.
	lastSeq := batchSpec{n: 4, pid: pid, epoch: 0, seq: 4 * (rounds - 1), valueSize: 30}
	sp := f2.produce(topic, 1, makeRecordBatch(t, lastSeq))
	wantBase := ends[1] - 4
	if sp.ErrorCode != 0 || sp.BaseOffset != wantBase {
		t.Fatalf("retry of a restored batch: %v base %d, want duplicate at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, wantBase)
	}
	if e := f2.part(topic, 1).Log().LogEndOffset(); e != ends[1] {
		t.Fatalf("duplicate appended: end %d, want %d", e, ends[1])
	}
	next := batchSpec{n: 1, pid: pid, epoch: 0, seq: 4 * rounds, valueSize: 5}
	if sp := f2.produce(topic, 1, makeRecordBatch(t, next)); sp.ErrorCode != 0 || sp.BaseOffset != ends[1] {
		t.Fatalf("next sequence: %v base %d, want %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset, ends[1])
	}

	// A second crash and reopen replays nothing (the new broker's own WAL
	// rounds, if any, only hold batches already present).
	f2.com.Flush()
	f3 := f2.crashAndReopen(nil)
	if strings.Contains(f3.logs.String(), "batches_restored=") && !strings.Contains(f3.logs.String(), "batches_restored=0") {
		t.Errorf("second reopen restored batches:\n%s", f3.logs)
	}
	for p := range int32(nparts) {
		if p != 1 && !bytes.Equal(f3.logBytes(topic, p), want[p]) {
			t.Errorf("partition %d changed on the second reopen", p)
		}
	}
}

// A clean shutdown leaves nothing to replay; a crash right after it neither.
func TestWALNothingToReplayAfterCleanClose(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	f.createTopic("c", 2, nil)
	f.produceRound("c", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1)), 1: makeRecordBatch(t, plainBatch(1))})
	if walRecords(t, dir) != 2 {
		t.Fatal("round did not go through the WAL")
	}
	f.stopCommitter()
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.Reset(); err != nil { // as server.closeStorage does
		t.Fatal(err)
	}
	f.meta.Close()
	f.closed = true
	f2 := openWALFixture(t, dir)
	if strings.Contains(f2.logs.String(), "WAL replayed") {
		t.Errorf("replay after a clean close:\n%s", f2.logs)
	}
	for p := range int32(2) {
		if e := f2.part("c", p).Log().LogEndOffset(); e != 1 {
			t.Errorf("partition %d end %d, want 1", p, e)
		}
	}
}

func deleteTopic(f *walFixture, name string) {
	f.t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{name}
	resp := f.do(req, 5).(*kmsg.DeleteTopicsResponse)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		f.t.Fatalf("delete %s: %v", name, kerr.ErrorForCode(c))
	}
}

// Records of a deleted topic are skipped at replay; a topic recreated with
// the same name (new topic id) does not receive the old topic's records.
func TestWALReplaySkipsDeletedAndRecreatedTopics(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	f.createTopic("gone", 2, nil)
	f.createTopic("re", 2, nil)
	f.createTopic("kept", 2, nil)
	two := func() map[int32][]byte {
		return map[int32][]byte{0: makeRecordBatch(t, plainBatch(2)), 1: makeRecordBatch(t, plainBatch(3))}
	}
	for range 2 {
		f.produceRound("gone", two())
		f.produceRound("re", two())
		f.produceRound("kept", two())
	}
	if st := f.com.Stats(); st.WALRounds != 6 {
		t.Fatalf("WALRounds = %d, want 6", st.WALRounds)
	}
	oldID := f.meta.Image().Topics["re"].ID
	keptWant := [][]byte{f.logBytes("kept", 0), f.logBytes("kept", 1)}
	deleteTopic(f, "gone")
	deleteTopic(f, "re")
	f.createTopic("re", 2, nil)
	if f.meta.Image().Topics["re"].ID == oldID {
		t.Fatal("recreated topic has the old id")
	}
	f2 := f.crashAndReopen(func() {
		for p := range int32(2) {
			if err := os.Truncate(segmentPath(t, dir, "kept", p), 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	for p := range int32(2) {
		if got := f2.logBytes("kept", p); !bytes.Equal(got, keptWant[p]) {
			t.Errorf("kept-%d not restored: %d bytes, want %d", p, len(got), len(keptWant[p]))
		}
		if e := f2.part("re", p).Log().LogEndOffset(); e != 0 {
			t.Errorf("recreated re-%d got the old topic's records: end %d", p, e)
		}
	}
	if f2.b.topic("gone") != nil {
		t.Error("deleted topic came back")
	}
	if _, err := os.Stat(partitionDir(dir, "gone", 0)); err == nil {
		t.Error("deleted topic's directory came back")
	}
	if walRecords(t, dir) != 0 {
		t.Error("WAL not reset after replay")
	}
}

// Replay is idempotent: after kill -9 with the page cache intact every WAL
// batch is already in its log and nothing is appended twice.
func TestWALReplaySkipsPresentBatches(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	f.createTopic("s", 3, nil)
	for range 3 {
		f.produceRound("s", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1)), 1: makeRecordBatch(t, plainBatch(2)), 2: makeRecordBatch(t, plainBatch(3))})
	}
	var want [][]byte
	for p := range int32(3) {
		want = append(want, f.logBytes("s", p))
	}
	f2 := f.crashAndReopen(nil)
	if !strings.Contains(f2.logs.String(), "batches_restored=0") || !strings.Contains(f2.logs.String(), "batches_already_present=9") {
		t.Errorf("replay counts:\n%s", f2.logs)
	}
	for p := range int32(3) {
		if !bytes.Equal(f2.logBytes("s", p), want[p]) {
			t.Errorf("partition %d changed by replay", p)
		}
	}
}

// After a crash during a background checkpoint both WAL files hold records,
// and a partition can be in both: its earlier batches in the file being
// checkpointed, which may be either. Replay must apply that file first,
// whichever it is, or the later batches would look like a gap.
func TestWALReplayTwoFilesInWrittenOrder(t *testing.T) {
	for _, olderSecond := range []bool{false, true} {
		t.Run(map[bool]string{false: "wal.log older", true: "wal-2.log older"}[olderSecond], func(t *testing.T) {
			dir := t.TempDir()
			f := openWALFixture(t, dir)
			f.createTopic("o", 2, nil)
			var rounds [][]byte // each round's batch of partition 0, offsets assigned
			for range 4 {
				f.produceRound("o", map[int32][]byte{0: makeRecordBatch(t, plainBatch(2)), 1: makeRecordBatch(t, plainBatch(1))})
			}
			if err := storage.SplitBatches(f.logBytes("o", 0), func(b []byte) error {
				rounds = append(rounds, bytes.Clone(b))
				return nil
			}); err != nil || len(rounds) != 4 {
				t.Fatalf("split: %d batches, %v", len(rounds), err)
			}
			want0, want1 := f.logBytes("o", 0), f.logBytes("o", 1)
			key0, key1 := f.part("o", 0).WALKey(), f.part("o", 1).WALKey()
			var batches1 [][]byte
			storage.SplitBatches(want1, func(b []byte) error { batches1 = append(batches1, bytes.Clone(b)); return nil })
			f2 := f.crashAndReopen(func() {
				older, newer := f.wal, f.wal2
				if olderSecond {
					older, newer = newer, older
				}
				for _, w := range []*wal.WAL{older, newer} {
					if err := w.Reset(); err != nil {
						t.Fatal(err)
					}
				}
				// Rounds 0-1 in the older file, 2-3 in the newer; partition 1
				// only in the newer (whole), so it names no order itself.
				older.Append(key0, rounds[0])
				older.Append(key0, rounds[1])
				newer.Append(key1, bytes.Join(batches1, nil))
				newer.Append(key0, rounds[2])
				newer.Append(key0, rounds[3])
				for _, w := range []*wal.WAL{older, newer} {
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
				}
				for p := range int32(2) {
					os.Truncate(segmentPath(t, dir, "o", p), 0)
				}
			})
			if strings.Contains(f2.logs.String(), "gap") {
				t.Fatalf("replay reported a gap:\n%s", f2.logs)
			}
			if !bytes.Equal(f2.logBytes("o", 0), want0) || !bytes.Equal(f2.logBytes("o", 1), want1) {
				t.Fatalf("replayed logs differ from what was acknowledged:\n%s", f2.logs)
			}
			// Both files are one replay: every partition they touch is made
			// durable (its high watermark at its end) before the files are
			// reset, whichever file opened it.
			for p := range int32(2) {
				part := f2.part("o", p)
				if hw, end := part.HighWatermark(), part.Log().LogEndOffset(); hw != end || part.Log().SyncedOffset() != end {
					t.Errorf("o-%d after replay: high watermark %d, synced %d, end %d", p, hw, part.Log().SyncedOffset(), end)
				}
			}
			if n := walRecords(t, dir); n != 0 {
				t.Errorf("wal.log holds %d records after replay", n)
			}
		})
	}
}

// A batch the WAL holds above a log's end (data below it lost: never
// expected) stops that partition's replay without failing the start, and
// other partitions are still restored.
func TestWALReplayGapStopsPartition(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	f.createTopic("g", 2, nil)
	f.produceRound("g", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1)), 1: makeRecordBatch(t, plainBatch(1))})
	// Make round 1 fsynced for partition 0 only, then lose it anyway
	// (as if the disk lied), so the WAL's round 2 starts above its end.
	if _, err := f.part("g", 0).Log().Sync(); err != nil {
		t.Fatal(err)
	}
	f.wal.Reset() // round 1 is no longer in the WAL
	f.produceRound("g", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1)), 1: makeRecordBatch(t, plainBatch(1))})
	f2 := f.crashAndReopen(func() {
		for p := range int32(2) {
			os.Truncate(segmentPath(t, dir, "g", p), 0)
		}
	})
	if n := strings.Count(f2.logs.String(), "WAL replay found a gap"); n != 2 {
		t.Errorf("%d gaps reported, want 2:\n%s", n, f2.logs)
	}
	// Partition 1's round 1 was only in the dropped WAL generation, so its
	// round 2 is a gap as well: both logs stay empty rather than get a hole.
	for p := range int32(2) {
		if e := f2.part("g", p).Log().LogEndOffset(); e != 0 {
			t.Errorf("g-%d end %d after a gap, want 0", p, e)
		}
	}
	// The unreplayable records are kept for an operator, not reset away.
	kept, _ := filepath.Glob(filepath.Join(dir, "__wal", "wal.log.kept-*"))
	if len(kept) != 1 {
		t.Fatalf("kept WAL copies: %v, want one", kept)
	}
	if st, err := os.Stat(kept[0]); err != nil || st.Size() == 0 {
		t.Fatalf("kept WAL copy %v: %v", st, err)
	}
}

// Segments rolled between WAL rounds are sealed without an fsync. After a
// kill -9 their data is still in the page cache, so replay finds it present
// and resets the WAL: the reopened log must have fsynced them by then, or a
// later power loss takes acknowledged data that no WAL holds any more.
func TestWALRolledSegmentsFsyncedBeforeReset(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	f.createTopic("roll", 2, map[string]string{"segment.bytes": "300"})
	for range 6 {
		f.produceRound("roll", map[int32][]byte{0: makeRecordBatch(t, plainBatch(3)), 1: makeRecordBatch(t, plainBatch(3))})
	}
	if st := f.com.Stats(); st.WALRounds != 6 || st.Syncs != 0 {
		t.Fatalf("Stats %+v, want 6 WAL rounds and no fsync", st)
	}
	sealed := map[string]bool{} // sealed segment files with no index files
	for p := range int32(2) {
		logs, _ := filepath.Glob(filepath.Join(partitionDir(dir, "roll", p), "*.log"))
		sort.Strings(logs)
		if len(logs) < 3 {
			t.Fatalf("partition %d: %d segments, want rolls", p, len(logs))
		}
		for _, l := range logs[:len(logs)-1] {
			if _, err := os.Stat(strings.TrimSuffix(l, ".log") + ".index"); err == nil {
				t.Fatalf("%s has index files without an fsync", l)
			}
			sealed[l] = true
		}
	}
	var mu sync.Mutex
	fsynced := map[string]bool{}
	f2 := f.crashAndReopen(nil, func(o *Options) {
		o.Fsync = func(file *os.File) error {
			mu.Lock()
			fsynced[file.Name()] = true
			mu.Unlock()
			return file.Sync()
		}
	})
	// The last rounds' batches may have been only in the logs' write
	// buffers (durable in the WAL alone) at the kill: replay restores them.
	for p := range int32(2) {
		if end := f2.part("roll", p).Log().LogEndOffset(); end != 18 {
			t.Fatalf("partition %d: log end %d after replay, want 18:\n%s", p, end, f2.logs)
		}
	}
	if walRecords(t, dir) != 0 {
		t.Fatal("WAL not reset")
	}
	mu.Lock()
	defer mu.Unlock()
	for l := range sealed {
		if !fsynced[l] {
			t.Errorf("sealed segment %s never fsynced, yet the WAL that held its data was reset", filepath.Base(filepath.Dir(l))+"/"+filepath.Base(l))
		}
	}
}

// After a failed fsync a partition's unsynced tail must not be copied into
// the WAL and reported durable (the page cache may have dropped it). The
// race is an append that lands after a round was cut and before that
// round's fsync fails: the log is then dirty in the next round, a WAL round.
func TestWALSkipsFailedLog(t *testing.T) {
	dir := t.TempDir()
	var failing sync.Map // file paths whose fsync fails
	f := openWALFixture(t, dir, func(o *Options) {
		o.Fsync = func(file *os.File) error {
			if _, ok := failing.Load(filepath.Dir(file.Name())); ok {
				return &os.PathError{Op: "fsync", Path: file.Name(), Err: os.ErrInvalid}
			}
			return file.Sync()
		}
	})
	f.createTopic("f", 2, nil)
	f.produceRound("f", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1)), 1: makeRecordBatch(t, plainBatch(1))})
	p1 := f.part("f", 1)
	failing.Store(partitionDir(dir, "f", 1), true)
	rep := f.handle(produceReq("f", 1, -1, makeRecordBatch(t, plainBatch(2))), 9)
	f.com.Flush() // single-log round: direct fsync, which fails
	sp := resolve(t, rep).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	wantCode(t, "produce with a failing fsync", sp.ErrorCode, kerr.KafkaStorageError)
	durable, end := p1.Log().DurableOffset(), p1.Log().LogEndOffset()
	if durable != 1 || end != 3 {
		t.Fatalf("failed partition: durable %d end %d, want 1 and 3", durable, end)
	}
	before := walRecords(t, dir)

	// Next round: the failed log is dirty again together with a healthy one.
	f.com.Add(p1, 0)
	f.produceRound("f", map[int32][]byte{0: makeRecordBatch(t, plainBatch(1))})
	if d := p1.Log().DurableOffset(); d != durable {
		t.Fatalf("failed partition's durable offset moved from %d to %d through the WAL", durable, d)
	}
	if n := walRecords(t, dir); n > before+1 {
		t.Fatalf("WAL took the failed partition's tail: %d records after %d", n, before)
	}
	f.crash() // a clean Close reports the failed log
}

// TestWALReplayBeyondFileBudget: a WAL naming more partitions than the
// open-file budget replays in several parts, each made durable and its
// descriptors given up before the next; a partition with records in two
// parts (released by the first) is made durable again after the second,
// before the WAL is reset. (bench/scale.sh at 100,000 partitions lost the
// second part's records of 119 partitions when only partitions that were
// closed counted as opened by the replay.)
func TestWALReplayBeyondFileBudget(t *testing.T) {
	const parts, budget = 24, 8
	dir := t.TempDir()
	mod := func(o *Options) { o.MaxOpenFiles = budget }
	f := openWALFixture(t, dir, mod)
	f.createTopic("r", parts, nil)
	for range 2 {
		round := map[int32][]byte{}
		for p := range int32(parts) {
			round[p] = makeRecordBatch(t, plainBatch(2))
		}
		f.produceRound("r", round)
		f.b.files.Evict()
	}
	want := make([][]byte, parts)
	for p := range int32(parts) {
		want[p] = f.logBytes("r", p)
	}
	f2 := f.crashAndReopen(func() {
		for p := range int32(parts) {
			os.Truncate(segmentPath(t, dir, "r", p), 0) // as if the page cache were lost
		}
	}, mod)
	if n := walRecords(t, dir); n != 0 {
		t.Fatalf("wal.log holds %d records after replay", n)
	}
	for p := range int32(parts) {
		part := f2.part("r", p)
		l := part.Log()
		if hw, end := part.HighWatermark(), l.LogEndOffset(); hw != 4 || end != 4 || l.SyncedOffset() != end {
			t.Errorf("r-%d after replay: high watermark %d, synced %d, end %d; want 4 everywhere", p, hw, l.SyncedOffset(), end)
		}
		if got := f2.logBytes("r", p); !bytes.Equal(got, want[p]) {
			t.Errorf("r-%d: replayed log differs from what was acknowledged", p)
		}
	}
}
