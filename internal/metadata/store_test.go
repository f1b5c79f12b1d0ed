package metadata

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestOpenEmptyCreatesStableClusterID(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	id := s.Image().ClusterID
	if len(id) < 16 {
		t.Fatalf("cluster id %q too short", id)
	}
	if len(s.Image().Topics) != 0 || s.Image().NextProducerID != 0 {
		t.Fatalf("new store not empty: %+v", s.Image())
	}
	if _, err := os.Stat(filepath.Join(dir, Dir, "raft.db")); err != nil {
		t.Fatalf("metadata quorum log: %v", err)
	}
	checkGuard(t, dir) // a new data dir has it too
	// Crash: the files as they are while the store is open.
	crashed := crashCopy(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir)
	if got := s2.Image().ClusterID; got != id {
		t.Errorf("cluster id after clean reopen = %q, want %q", got, id)
	}
	s3 := openStore(t, crashed)
	if got := s3.Image().ClusterID; got != id {
		t.Errorf("cluster id after crash reopen = %q, want %q", got, id)
	}
	s2.Close()
	s3.Close()

	// Another data dir is another cluster.
	other := openStore(t, t.TempDir())
	defer other.Close()
	if other.Image().ClusterID == id {
		t.Error("two fresh data dirs got the same cluster id")
	}
}

// TestChangesPersist applies a sequence of changes and checks the image after
// a clean reopen and after a "crash" (the data dir's files copied while the
// store is open: everything each acknowledged change wrote must already be
// on disk).
func TestChangesPersist(t *testing.T) {
	for _, mode := range []string{"close", "crash"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			a, err := s.CreateTopic("alpha", 3, map[string]string{"retention.ms": "1000"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.CreateTopic("beta", 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateTopic("gone", 2, nil); err != nil {
				t.Fatal(err)
			}
			if a.ID == b.ID || a.ID == (TopicID{}) {
				t.Fatalf("topic ids not unique/non-zero: %v %v", a.ID, b.ID)
			}
			mustNil(t, s.SetPartitions("alpha", 5))
			mustNil(t, s.SetTopicConfigs("beta", map[string]string{"cleanup.policy": "compact", "segment.bytes": "1048576"}))
			mustNil(t, s.DeleteTopic("gone"))
			mustNil(t, s.ReserveProducerIDs(1000))
			mustNil(t, s.ReserveProducerIDs(500)) // lower: no-op
			mustNil(t, s.ReserveProducerIDs(2000))
			want := s.Image()
			if mode == "close" {
				mustNil(t, s.Close())
			} else {
				dir = crashCopy(t, dir)
				t.Cleanup(func() { s.Close() })
			}

			r := openStore(t, dir)
			defer r.Close()
			got := r.Image()
			if got.ClusterID != want.ClusterID {
				t.Errorf("cluster id %q, want %q", got.ClusterID, want.ClusterID)
			}
			if got.NextProducerID != 2000 {
				t.Errorf("NextProducerID = %d, want 2000", got.NextProducerID)
			}
			if len(got.Topics) != 2 || len(got.ByID) != 2 {
				t.Fatalf("topics %v, byID %d entries; want alpha and beta", keys(got.Topics), len(got.ByID))
			}
			ga, gb := got.Topics["alpha"], got.Topics["beta"]
			if ga == nil || gb == nil {
				t.Fatalf("topics = %v", keys(got.Topics))
			}
			if ga.ID != a.ID || ga.Partitions != 5 || !maps.Equal(ga.Configs, map[string]string{"retention.ms": "1000"}) {
				t.Errorf("alpha = %+v, want id %v, 5 partitions, retention.ms=1000", ga, a.ID)
			}
			if gb.ID != b.ID || gb.Partitions != 1 || !maps.Equal(gb.Configs, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1048576"}) {
				t.Errorf("beta = %+v", gb)
			}
			if got.ByID[a.ID] != ga || got.ByID[b.ID] != gb {
				t.Error("ByID does not point at the same topics as Topics")
			}
			if _, ok := got.Topics["gone"]; ok {
				t.Error("deleted topic came back")
			}
			// The reopened store keeps working and persisting.
			if _, err := r.CreateTopic("gone", 1, nil); err != nil {
				t.Errorf("recreate deleted topic: %v", err)
			}
		})
	}
}

func TestRecreatedTopicGetsNewID(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	t1, err := s.CreateTopic("t", 1, nil)
	mustNil(t, err)
	mustNil(t, s.DeleteTopic("t"))
	t2, err := s.CreateTopic("t", 2, nil)
	mustNil(t, err)
	if t1.ID == t2.ID {
		t.Fatal("recreated topic reuses the old id")
	}
	if _, ok := s.Image().ByID[t1.ID]; ok {
		t.Error("old id still resolves")
	}
}

func TestStoreErrors(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	_, err := s.CreateTopic("t", 2, nil)
	mustNil(t, err)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"create existing", second(s.CreateTopic("t", 1, nil)), ErrTopicExists},
		{"delete unknown", s.DeleteTopic("nope"), ErrNoTopic},
		{"partitions unknown", s.SetPartitions("nope", 3), ErrNoTopic},
		{"partitions equal", s.SetPartitions("t", 2), ErrPartitionsLE},
		{"partitions fewer", s.SetPartitions("t", 1), ErrPartitionsLE},
		{"configs unknown", s.SetTopicConfigs("nope", nil), ErrNoTopic},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if p := s.Image().Topics["t"].Partitions; p != 2 {
		t.Errorf("failed changes altered the topic: %d partitions", p)
	}
}

// TestImageImmutable: a snapshot taken before a change is not modified by it.
func TestImageImmutable(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	_, err := s.CreateTopic("t", 1, nil)
	mustNil(t, err)
	before := s.Image()
	mustNil(t, s.SetPartitions("t", 4))
	_, err = s.CreateTopic("u", 1, nil)
	mustNil(t, err)
	if before.Topics["t"].Partitions != 1 || len(before.Topics) != 1 {
		t.Errorf("old image changed: t has %d partitions, %d topics", before.Topics["t"].Partitions, len(before.Topics))
	}
	if names := s.Image().SortedTopics(); len(names) != 2 || names[0].Name != "t" || names[1].Name != "u" {
		t.Errorf("SortedTopics = %v", names)
	}
	// A change that leaves the topics alone shares their maps and order;
	// a topic change gets its own.
	sorted := s.Image().SortedTopics()
	mustNil(t, s.ReserveProducerIDs(100))
	mustNil(t, s.SetBrokerConfigs(nil))
	if im := s.Image(); &im.SortedTopics()[0] != &sorted[0] || im.NextProducerID != 100 {
		t.Error("a producer id or broker config change rebuilt the topic order")
	}
	mustNil(t, s.DeleteTopic("t"))
	if names := s.Image().SortedTopics(); len(names) != 1 || names[0].Name != "u" || len(sorted) != 2 {
		t.Errorf("SortedTopics after delete = %v, before = %v", names, sorted)
	}
}

// TestImageConcurrentReaders: readers walking images while changes swap
// them in (run with -race: a change must never write a map a reader holds).
func TestImageConcurrentReaders(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	done := make(chan struct{})
	readers := make(chan int, 2)
	for range 2 {
		go func() {
			n := 0
			for {
				select {
				case <-done:
					readers <- n
					return
				default:
				}
				im := s.Image()
				for name, tp := range im.Topics {
					if im.ByID[tp.ID] != tp || tp.Name != name {
						t.Errorf("topic %s: maps disagree", name)
					}
				}
				n += len(im.SortedTopics())
			}
		}()
	}
	for i := range 50 {
		_, err := s.CreateTopic(fmt.Sprintf("t%d", i), 1, nil)
		mustNil(t, err)
		mustNil(t, s.ReserveProducerIDs(int64(i+1)))
		if i%5 == 4 {
			mustNil(t, s.SetPartitions(fmt.Sprintf("t%d", i-1), 2))
			mustNil(t, s.DeleteTopic(fmt.Sprintf("t%d", i-2)))
		}
	}
	close(done)
	<-readers
	<-readers
	if got := len(s.Image().SortedTopics()); got != 40 {
		t.Errorf("%d topics, want 40", got)
	}
}

func TestReopenManyChanges(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i := range 300 {
		mustNil(t, s.ReserveProducerIDs(int64(i+1)*10))
	}
	mustNil(t, s.Close())
	r := openStore(t, dir)
	defer r.Close()
	if got := r.Image().NextProducerID; got != 3000 {
		t.Fatalf("NextProducerID after replaying 300 records = %d, want 3000", got)
	}
}

func TestValidateTopicConfigs(t *testing.T) {
	valid := []map[string]string{
		nil,
		{},
		{"cleanup.policy": "compact"},
		{"cleanup.policy": "compact,delete"},
		{"cleanup.policy": "delete, compact"},
		{"compression.type": "zstd"},
		{"compression.type": "producer"},
		{"retention.ms": "-1", "retention.bytes": "-1"},
		{"retention.ms": "604800000"},
		{"segment.bytes": "14"},
		{"segment.bytes": "1073741824"},
		{"segment.ms": "1"},
		{"max.message.bytes": "0"},
		{"max.message.bytes": "2147483647"},
		{"message.timestamp.type": "LogAppendTime"},
		{"min.cleanable.dirty.ratio": "0"},
		{"min.cleanable.dirty.ratio": "1"},
		{"min.insync.replicas": "1"},
		{"delete.retention.ms": "0", "min.compaction.lag.ms": "0"},
		{"message.timestamp.before.max.ms": "9223372036854775807", "message.timestamp.after.max.ms": "0"},
	}
	for _, cfg := range valid {
		if err := ValidateTopicConfigs(cfg); err != nil {
			t.Errorf("ValidateTopicConfigs(%v) = %v, want nil", cfg, err)
		}
	}
	invalid := []struct {
		cfg map[string]string
		key string
	}{
		{map[string]string{"retention.mss": "1"}, "retention.mss"},
		{map[string]string{"cleanup.policy": "compact", "bogus": "x"}, "bogus"},
		{map[string]string{"cleanup.policy": "archive"}, "cleanup.policy"},
		{map[string]string{"cleanup.policy": "compact,"}, "cleanup.policy"},
		{map[string]string{"compression.type": "brotli"}, "compression.type"},
		{map[string]string{"retention.ms": "-2"}, "retention.ms"},
		{map[string]string{"retention.ms": "1d"}, "retention.ms"},
		{map[string]string{"retention.bytes": ""}, "retention.bytes"},
		{map[string]string{"segment.bytes": "13"}, "segment.bytes"},
		{map[string]string{"segment.bytes": "2147483648"}, "segment.bytes"},
		{map[string]string{"segment.ms": "0"}, "segment.ms"},
		{map[string]string{"max.message.bytes": "-1"}, "max.message.bytes"},
		{map[string]string{"message.timestamp.type": "createtime"}, "message.timestamp.type"},
		{map[string]string{"min.cleanable.dirty.ratio": "1.5"}, "min.cleanable.dirty.ratio"},
		{map[string]string{"min.cleanable.dirty.ratio": "-0.1"}, "min.cleanable.dirty.ratio"},
		{map[string]string{"min.insync.replicas": "0"}, "min.insync.replicas"},
		{map[string]string{"delete.retention.ms": "-1"}, "delete.retention.ms"},
	}
	for _, tt := range invalid {
		err := ValidateTopicConfigs(tt.cfg)
		if err == nil {
			t.Errorf("ValidateTopicConfigs(%v) = nil, want an error naming %s", tt.cfg, tt.key)
			continue
		}
		if !strings.Contains(err.Error(), tt.key) {
			t.Errorf("ValidateTopicConfigs(%v) = %q, does not name %s", tt.cfg, err, tt.key)
		}
	}
}

func TestTopicDefaults(t *testing.T) {
	b := BrokerDefaults{MessageMaxBytes: 1048588, SegmentBytes: 1 << 30, SegmentMs: 604800000, RetentionMs: 86400000, RetentionBytes: -1}
	d := TopicDefaults(b)
	want := map[string]string{
		"max.message.bytes": "1048588", "segment.bytes": "1073741824", "segment.ms": "604800000",
		"retention.ms": "86400000", "retention.bytes": "-1", "cleanup.policy": "delete",
		"compression.type": "producer", "message.timestamp.type": "CreateTime", "min.insync.replicas": "1",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("default %s = %q, want %q", k, d[k], v)
		}
	}
	// Every known config has a default, every default is a known config, and
	// every default passes its own validation.
	if len(d) != len(TopicConfigDefs) {
		t.Errorf("%d defaults for %d config definitions", len(d), len(TopicConfigDefs))
	}
	for _, def := range TopicConfigDefs {
		v, ok := d[def.Name]
		if !ok {
			t.Errorf("no default for %s", def.Name)
			continue
		}
		if err := def.Validate(v); err != nil {
			t.Errorf("default of %s does not validate: %v", def.Name, err)
		}
		if def.Doc == "" || def.Type == 0 {
			t.Errorf("%s lacks documentation or type", def.Name)
		}
	}
	if _, ok := TopicConfigDef("retention.ms"); !ok {
		t.Error("TopicConfigDef(retention.ms) not found")
	}
	if _, ok := TopicConfigDef("nope"); ok {
		t.Error("TopicConfigDef(nope) found")
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTornTail: a crash in the middle of writing a change leaves a partial
// batch at the end of the metadata log; Open drops it and keeps every
// complete change.
// TestLegacyImport: a data dir from a release before the metadata quorum
// (a segment log of JSON records, here ending in a torn batch) is imported
// once, with its cluster id, topics and their ids, and then removed.
func TestLegacyImport(t *testing.T) {
	dir := t.TempDir()
	alpha, beta, gone := TopicID{1}, TopicID{2}, TopicID{3}
	writeLegacyLog(t, dir, []*record{
		{Type: "cluster", ClusterID: "legacy-cluster-id"},
		{Type: "topic", Name: "alpha", ID: &alpha, Partitions: 3},
		{Type: "topic", Name: "beta", ID: &beta, Partitions: 1, Internal: true},
		{Type: "topic", Name: "gone", ID: &gone, Partitions: 1},
		{Type: "partitions", Name: "alpha", Partitions: 6},
		{Type: "topic", Name: "beta", ID: &beta, Partitions: 1, Internal: true, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Type: "delete_topic", Name: "gone"},
		{Type: "producer_ids", NextPID: 5000},
		{Type: "broker_configs", Configs: map[string]string{"log.retention.ms": "60000"}},
		{Type: "client_metrics", Name: "sub", Configs: map[string]string{"interval.ms": "1000"}},
	})
	segs, err := filepath.Glob(filepath.Join(dir, LegacyDir, "*.log"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	mustNil(t, err)
	torn := make([]byte, 30) // the first 30 bytes of a batch header claiming 500 bytes
	torn[11], torn[10], torn[16] = 0xf4, 0x01, 2
	_, err = f.Write(torn)
	mustNil(t, err)
	mustNil(t, f.Close())

	check := func(s *Store, topics int) {
		t.Helper()
		im := s.Image()
		if im.ClusterID != "legacy-cluster-id" || im.NextProducerID != 5000 || len(im.Topics) != topics {
			t.Fatalf("imported image: cluster %q, next pid %d, topics %v", im.ClusterID, im.NextProducerID, keys(im.Topics))
		}
		a, b := im.Topics["alpha"], im.Topics["beta"]
		if a == nil || a.ID != alpha || a.Partitions != 6 || im.ByID[alpha] != a {
			t.Errorf("alpha = %+v", a)
		}
		if b == nil || b.ID != beta || !b.Internal || b.Configs["cleanup.policy"] != "compact" || im.ByID[beta] != b {
			t.Errorf("beta = %+v", b)
		}
		if im.BrokerConfigs["log.retention.ms"] != "60000" || im.ClientMetrics["sub"]["interval.ms"] != "1000" {
			t.Errorf("configs %v, client metrics %v", im.BrokerConfigs, im.ClientMetrics)
		}
	}
	s := openStore(t, dir)
	check(s, 2)
	checkGuard(t, dir)
	if _, err := s.CreateTopic("gamma", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("alpha", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Errorf("create imported topic again: %v, want ErrTopicExists", err)
	}
	mustNil(t, s.Close())

	// A crash between the import and the removal leaves the old log
	// behind: the next start removes it without importing it again.
	mustNil(t, os.Remove(filepath.Join(dir, LegacyDir)))
	writeLegacyLog(t, dir, []*record{{Type: "cluster", ClusterID: "other"}, {Type: "producer_ids", NextPID: 1}})
	r := openStore(t, dir)
	defer r.Close()
	if r.Image().Topics["gamma"] == nil {
		t.Fatal("a change made after the import was lost")
	}
	check(r, 3)
	checkGuard(t, dir)
}

// checkGuard: where releases before the quorum look for their metadata log
// directory there is a file, so that they fail to start instead of starting
// an empty cluster that removes every partition as an orphan.
func checkGuard(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, LegacyDir))
	if err != nil || !strings.Contains(string(b), Dir) {
		t.Fatalf("%s should be a file naming %s: %q, %v", LegacyDir, Dir, b, err)
	}
}

func TestBrokerConfigsPersist(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.SetBrokerConfigs(map[string]string{"num.partitions": "0"}); err == nil || !strings.Contains(err.Error(), "num.partitions") {
		t.Fatalf("bad value accepted: %v", err)
	}
	if err := s.SetBrokerConfigs(map[string]string{"log.dirs": "/x"}); err == nil || !strings.Contains(err.Error(), "log.dirs") {
		t.Fatalf("static key accepted: %v", err)
	}
	want := map[string]string{"num.partitions": "7", "log.retention.ms": "1000", "auto.create.topics.enable": "false"}
	if err := s.SetBrokerConfigs(want); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBrokerConfigs(map[string]string{"num.partitions": "8"}); err != nil { // full replace
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if got := s.Image().BrokerConfigs; !maps.Equal(got, map[string]string{"num.partitions": "8"}) {
		t.Fatalf("after reopen: %v", got)
	}
	d := BrokerDefaults{MessageMaxBytes: 100, SegmentBytes: 200, RetentionMs: 5}.Apply(map[string]string{"log.retention.ms": "9", "log.segment.bytes": "300"})
	if d.RetentionMs != 9 || d.SegmentBytes != 300 || d.MessageMaxBytes != 100 {
		t.Fatalf("Apply: %+v", d)
	}
}

func TestClientMetricsPersist(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.SetClientMetrics("", map[string]string{"metrics": "*"}); err == nil {
		t.Fatal("empty name accepted")
	}
	if err := s.SetClientMetrics("gone", nil); err != nil { // deleting an unknown one: no record
		t.Fatal(err)
	}
	a := map[string]string{"metrics": "org.apache.kafka.producer.", "interval.ms": "1000"}
	if err := s.SetClientMetrics("a", a); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClientMetrics("b", map[string]string{"metrics": "*"}); err != nil {
		t.Fatal(err)
	}
	im := s.Image()
	if err := s.SetClientMetrics("b", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := im.ClientMetrics["b"]; !ok {
		t.Fatal("an older image changed")
	}
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	got := s.Image().ClientMetrics
	if len(got) != 1 || !maps.Equal(got["a"], a) {
		t.Fatalf("after reopen: %v", got)
	}
}

// crashCopy copies dir as it is on disk now, with its stores still open (what
// kill -9 leaves), and returns the copy.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
