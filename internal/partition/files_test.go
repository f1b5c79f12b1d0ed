package partition

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFilesEvictsLeastRecentlyUsed: at the bound, an opener frees the
// descriptors of idle partitions in the order they opened: an unchanged one
// is closed, a changed one whose data is not durable yet is skipped (closing
// it would fsync), a changed durable one only releases its files, one in use
// is never touched; everything reopens on use with its data.
func TestFilesEvictsLeastRecentlyUsed(t *testing.T) {
	root := t.TempDir()
	const n = 6
	opts := func(i int) Options { return Options{Topic: "t", Index: int32(i), TopicID: metadata.TopicID{1}} }
	dir := func(i int) string { return filepath.Join(root, fmt.Sprintf("t-%d", i)) }
	// Every partition holds one batch and was closed cleanly.
	for i := range n {
		p := New(dir(i), opts(i), nil)
		if _, err := p.Append(storage.EncodeBatch(time.Now().UnixMilli(), nil)); err == nil {
			t.Fatal("empty batch appended")
		}
		if _, err := p.Append(idemBatch(-1, -1, -1, 1)); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	files := NewFiles(3, nil)
	parts := make([]*Partition, n)
	for i := range n {
		parts[i] = New(dir(i), opts(i), files)
	}
	// p0 is changed (appended to, not durable yet), p1 and p2 only read.
	if _, err := parts[0].Append(idemBatch(-1, -1, -1, 1)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if off, err := parts[i].Offsets(); err != nil || off.LogEnd != 1 {
			t.Fatalf("p%d offsets %+v %v", i, off, err)
		}
	}
	// p1 stays in use while p3 opens: the bound is reached, so the
	// opener closes p2, the oldest idle unchanged partition (p0 is older
	// but not durable, p1 in use).
	release := make(chan struct{})
	inUse := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- parts[1].WithLog(func(*storage.Log) error { close(inUse); <-release; return nil })
	}()
	<-inUse
	if _, err := parts[3].Offsets(); err != nil {
		t.Fatal(err)
	}
	if !parts[0].IsOpen() || !parts[1].IsOpen() || parts[2].IsOpen() || !parts[3].IsOpen() {
		t.Fatalf("open after p3: %v %v %v %v, want p2 closed", parts[0].IsOpen(), parts[1].IsOpen(), parts[2].IsOpen(), parts[3].IsOpen())
	}
	// p4 opens: p3 goes, the next idle one.
	if _, err := parts[4].Offsets(); err != nil {
		t.Fatal(err)
	}
	if !parts[0].IsOpen() || !parts[1].IsOpen() || parts[3].IsOpen() {
		t.Fatalf("open after p4: p0 %v p1 %v p3 %v, want p3 closed", parts[0].IsOpen(), parts[1].IsOpen(), parts[3].IsOpen())
	}
	// p0's data becomes durable (as the committer's WAL round does) and
	// p5 opens: p0, the oldest, releases its files but stays open (and
	// the opener's slack closes p4 too, the next idle one).
	parts[0].MarkDurable(2)
	if _, err := parts[5].Offsets(); err != nil {
		t.Fatal(err)
	}
	if !parts[0].IsOpen() || !parts[0].log.Load().Released() || !parts[1].IsOpen() || parts[4].IsOpen() {
		t.Fatalf("open after p5: p0 %v (released %v) p1 %v p4 %v, want p0 released, p1 open, p4 closed",
			parts[0].IsOpen(), parts[0].log.Load().Released(), parts[1].IsOpen(), parts[4].IsOpen())
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := files.Stats(); st.Open > 3 || st.Evicted != 4 {
		t.Fatalf("files %+v, want at most 3 open and 4 evictions", st)
	}
	// Everything reopens with its data.
	for i, want := range []int64{2, 1, 1, 1, 1, 1} {
		if off, err := parts[i].Offsets(); err != nil || off.LogEnd != want || off.HighWatermark != want {
			t.Fatalf("p%d after eviction: %+v %v, want end %d", i, off, err, want)
		}
	}
	if st := files.Stats(); st.Open > 4 { // the bound is soft by what is in use
		t.Fatalf("files %+v after reopening all", st)
	}
}

// TestSweepsSkipClosedPartitions: the retention sweep opens a closed
// partition not opened since start only within its opens, never one whose
// directory holds no data (no segment, or only the empty one Create makes), and one with a
// summary only when something in it expired.
func TestSweepsSkipClosedPartitions(t *testing.T) {
	root := t.TempDir()
	o := Options{Topic: "t", TopicID: metadata.TopicID{1}}
	empty := New(filepath.Join(root, "t-0"), o, nil)
	if err := empty.Create(); err != nil {
		t.Fatal(err)
	}
	withData := New(filepath.Join(root, "t-1"), o, nil)
	old := time.Now().Add(-time.Hour).UnixMilli()
	if _, err := withData.Append(storage.EncodeBatch(old, []kmsg.Record{{Value: []byte("v")}})); err != nil {
		t.Fatal(err)
	}
	if err := withData.Close(); err != nil {
		t.Fatal(err)
	}
	withData = New(withData.Dir(), o, nil) // as after a restart: no summary
	before, _ := filepath.Glob(filepath.Join(empty.Dir(), "*"))
	now := time.Now().UnixMilli()
	none := NewSweepOpens(0)
	for _, p := range []*Partition{empty, withData} {
		if _, err := p.ApplyRetention(now, time.Minute.Milliseconds(), -1, 10, none); err != nil || p.IsOpen() {
			t.Fatalf("%s: opened without opens left (%v)", p.Dir(), err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(empty.Dir(), "*")); fmt.Sprint(m) != fmt.Sprint(before) {
		t.Fatalf("the sweep changed the files of a partition without data: %v, before %v", m, before)
	}
	// Even with opens left, a partition without data is not opened.
	if opens := NewSweepOpens(5); func() error {
		_, err := empty.ApplyRetention(now, time.Minute.Milliseconds(), -1, 10, opens)
		return err
	}() != nil || opens.n != 5 || empty.IsOpen() {
		t.Fatalf("a partition without data was opened by retention (%d of 5 opens left)", opens.n)
	}
	// With an open allowed, the partition with data is looked at (its
	// record expired: the log start moves) and closed again.
	if _, err := withData.ApplyRetention(now, time.Minute.Milliseconds(), -1, 10, NewSweepOpens(1)); err != nil {
		t.Fatal(err)
	}
	if withData.IsOpen() {
		t.Fatal("left open by the sweep")
	}
	if off, err := withData.Offsets(); err != nil || off.LogStart != 1 {
		t.Fatalf("after retention: %+v %v, want log start 1", off, err)
	}
}

// Creating a partition over a directory an earlier topic of the same name
// left (its removal failed) starts empty: the old data is not adopted.
func TestCreateOverStaleDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	old := New(dir, Options{Topic: "t", TopicID: metadata.TopicID{1}}, nil)
	if _, err := old.Append(storage.EncodeBatch(time.Now().UnixMilli(), []kmsg.Record{{Value: []byte("old")}})); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	p := New(dir, Options{Topic: "t", TopicID: metadata.TopicID{2}}, nil)
	if err := p.Create(); err != nil {
		t.Fatal(err)
	}
	if _, bytes := storage.SegmentBytes(dir); bytes != 0 {
		t.Fatalf("new partition holds %d bytes of the old topic's data", bytes)
	}
	off, err := p.Offsets()
	if err != nil || off.LogEnd != 0 {
		t.Fatalf("new partition: %+v, %v", off, err)
	}
	p.Close()
}

// TestFilesReleasesChangedPartitions: at the bound, an idle partition
// that changed and is durable gives up its descriptors and keeps its state
// (no close, nothing written, still open), reopens its files on the next
// use with its data and producer state, and is checkpointed and closed as
// usual afterwards.
func TestFilesReleasesChangedPartitions(t *testing.T) {
	root := t.TempDir()
	files := NewFiles(2, nil)
	parts := make([]*Partition, 4)
	for i := range parts {
		parts[i] = New(filepath.Join(root, fmt.Sprintf("t-%d", i)), Options{Topic: "t", Index: int32(i), TopicID: metadata.TopicID{2}}, files)
	}
	// Each partition gets a batch of producer 7 (made durable), one after
	// another, against a bound of two descriptors.
	for i, p := range parts {
		if res := appendIdem(t, p, 7, 0, 0, 1); res.Err != nil {
			t.Fatalf("p%d: %v", i, res.Err)
		}
		if _, err := p.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	released := 0
	for _, p := range parts {
		if !p.IsOpen() {
			t.Fatalf("%s closed: a changed partition should only release its files", p.Dir())
		}
		if p.log.Load().Released() { // (Log() would reopen it)
			released++
		}
	}
	if st := files.Stats(); released < 2 || st.Open > 2 || st.Partitions != 4 {
		t.Fatalf("%d released, files %+v; want at least 2 released, at most 2 open, 4 partitions known", released, files.Stats())
	}
	// A released partition reopens with its state: producer 7's next
	// sequence is 1, a duplicate of sequence 0 is recognised.
	p := parts[0]
	if res := appendIdem(t, p, 7, 0, 0, 1); res.Err != nil || res.Records != 0 || res.Base != 0 {
		t.Fatalf("duplicate after release: %+v", res)
	}
	if res := appendIdem(t, p, 7, 0, 1, 1); res.Err != nil || res.Base != 1 {
		t.Fatalf("next sequence after release: %+v", res)
	}
	if p.log.Load().Released() {
		t.Fatal("still released after an append")
	}
	// Checkpoint and close what is left, batched, and reopen everything.
	files.SetDataDir(root)
	files.Checkpoint(context.Background(), 1<<62)
	b := storage.NewCloseBatch(root)
	for _, p := range parts {
		if err := p.CloseIn(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		q := New(p.Dir(), Options{Topic: "t", Index: int32(i), TopicID: metadata.TopicID{2}}, nil)
		want := int64(1)
		if i == 0 {
			want = 2
		}
		if off, err := q.Offsets(); err != nil || off.LogEnd != want || !q.Log().Marked() {
			t.Fatalf("p%d after close: %+v %v, marked %v; want end %d, trusted", i, off, err, q.Log().Marked(), want)
		}
		_ = q.Close()
	}
}

// TestOffsetsWhileClosed: a partition closed since its last use answers
// Offsets from what its close saw, without opening (a consumer's fetch of
// thousands of partitions at their end opens none); one never opened since
// start, or whose close failed, is opened.
func TestOffsetsWhileClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	o := Options{Topic: "t", TopicID: metadata.TopicID{3}}
	p := New(dir, o, nil)
	for seq := range int32(3) {
		if res := appendIdem(t, p, 9, 0, seq, 1); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if _, _, err := p.SetLogStartOffset(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := Offsets{LogStart: 1, LogEnd: 3, HighWatermark: 3, LastStable: 3}
	if off, err := p.Offsets(); err != nil || off != want || p.IsOpen() {
		t.Fatalf("closed: %+v %v, open %v; want %+v without opening", off, err, p.IsOpen(), want)
	}
	p = New(dir, o, nil) // as after a restart: nothing known
	if off, err := p.Offsets(); err != nil || off != want || !p.IsOpen() {
		t.Fatalf("after restart: %+v %v, open %v; want %+v, opened", off, err, p.IsOpen(), want)
	}
	_ = p.Close()
}

// TestCreatedOpensWithoutReading: the first open after Create knows the
// partition empty without reading its files (storage.Options.Created), and
// what it writes reads back like any partition's after a close and after a
// crash; a partition opened before Create finished (a produce racing the
// creation) is read from disk again.
func TestCreatedOpensWithoutReading(t *testing.T) {
	o := Options{Topic: "t", TopicID: metadata.TopicID{4}}
	for _, kill := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "t-0")
		p := New(dir, o, nil)
		if err := p.Create(); err != nil {
			t.Fatal(err)
		}
		if !p.fresh {
			t.Fatal("Create left the partition not fresh")
		}
		for seq := range int32(3) {
			if res := appendIdem(t, p, 7, 0, 2*seq, 2); res.Err != nil || res.Base != int64(2*seq) {
				t.Fatalf("append %d: base %d, %v", seq, res.Base, res.Err)
			}
		}
		if p.fresh {
			t.Fatal("still fresh after its first open")
		}
		if kill {
			crash(t, p)
		} else if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		p = New(dir, o, nil)
		if off, err := p.Offsets(); err != nil || off.LogEnd != 6 {
			t.Fatalf("kill %v: reopened at %+v, %v; want end 6", kill, off, err)
		}
		// The producer state came back: a retry is a duplicate, the next
		// sequence appends.
		if res := appendIdem(t, p, 7, 0, 4, 2); res.Err != nil || res.Base != 4 {
			t.Fatalf("kill %v: retry of the last batch: base %d, %v; want the duplicate at 4", kill, res.Base, res.Err)
		}
		if res := appendIdem(t, p, 7, 0, 6, 1); res.Err != nil || res.Base != 6 {
			t.Fatalf("kill %v: next batch: base %d, %v; want 6", kill, res.Base, res.Err)
		}
		_ = p.Close()
	}

	// Opened, written and closed before Create: not fresh, data kept.
	dir := filepath.Join(t.TempDir(), "t-0")
	p := New(dir, o, nil)
	if res := appendIdem(t, p, 7, 0, 0, 1); res.Err != nil {
		t.Fatal(res.Err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(); err != nil {
		t.Fatal(err)
	}
	if p.fresh {
		t.Fatal("a partition opened before Create is fresh")
	}
	if res := appendIdem(t, p, 7, 0, 1, 1); res.Err != nil || res.Base != 1 {
		t.Fatalf("after Create: base %d, %v; want 1", res.Base, res.Err)
	}
	_ = p.Close()
}

// TestFilesBackgroundHighWater: past 95% of the bound, the background pass
// frees descriptors down to 90% before any opener reaches the bound.
func TestFilesBackgroundHighWater(t *testing.T) {
	root := t.TempDir()
	files := NewFiles(40, nil)
	var parts []*Partition
	for i := range 39 {
		p := New(filepath.Join(root, fmt.Sprintf("t-%d", i)), Options{Topic: "t", Index: int32(i), TopicID: metadata.TopicID{1}}, files)
		if err := p.Create(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Offsets(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if st := files.Stats(); st.Open != 39 || st.Evicted != 0 {
		t.Fatalf("before the pass: %+v, want 39 open, none evicted", st)
	}
	select {
	case <-files.kick:
	default:
		t.Fatal("passing 95% of the bound did not kick the background pass")
	}
	files.Evict()
	if st := files.Stats(); st.Open > 36 {
		t.Fatalf("after the pass: %d open, want at most 36 (90%% of 40)", st.Open)
	}
	for _, p := range parts {
		_ = p.Close()
	}
}

// TestCheckpointClosesIdlePartitions: a recovery checkpoint closes the
// partitions idle for its whole interval once they are marked, freeing
// their memory (one whose files were released too), and leaves a
// partition used since alone; a closed one opens again with its data and
// producer state.
func TestCheckpointClosesIdlePartitions(t *testing.T) {
	root := t.TempDir()
	files := NewFiles(2, nil) // small: some partitions release their files
	files.SetDataDir(root)
	parts := make([]*Partition, 4)
	for i := range parts {
		parts[i] = New(filepath.Join(root, fmt.Sprintf("idle-%d", i)), Options{Topic: "idle", Index: int32(i), TopicID: metadata.TopicID{4}}, files)
		if res := appendIdem(t, parts[i], 7, 0, 0, 1); res.Err != nil {
			t.Fatal(res.Err)
		}
		if _, err := parts[i].Sync(); err != nil {
			t.Fatal(err)
		}
	}
	useClock.Add(1)
	busy := parts[3]
	if res := appendIdem(t, busy, 7, 0, 1, 1); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, err := busy.Sync(); err != nil {
		t.Fatal(err)
	}
	files.Checkpoint(context.Background(), busy.lastUse.Load())
	for i, p := range parts[:3] {
		if p.IsOpen() {
			t.Fatalf("idle partition %d still open after its checkpoint", i)
		}
	}
	if !busy.IsOpen() {
		t.Fatal("the partition used during the interval was closed")
	}
	if st := files.Stats(); st.Open > 2 {
		t.Fatalf("files %+v", st)
	}
	p := parts[0]
	if res := appendIdem(t, p, 7, 0, 0, 1); res.Err != nil || res.Records != 0 || res.Base != 0 {
		t.Fatalf("duplicate after the close: %+v", res)
	}
	if res := appendIdem(t, p, 7, 0, 1, 1); res.Err != nil || res.Base != 1 {
		t.Fatalf("next sequence after the close: %+v", res)
	}
}
