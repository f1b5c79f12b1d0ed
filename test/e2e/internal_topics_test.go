package e2e

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const offsetsTopic = "__consumer_offsets"

// TestInternalTopicsWithClients: __consumer_offsets is in metadata as an
// internal topic; regex subscriptions of franz-go and librdkafka never
// receive its records; kcat reads it; a franz-go consumer decodes every
// record with Kafka's schemas; clients cannot write to it.
func TestInternalTopicsWithClients(t *testing.T) {
	b := StartBroker(t)
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 2*time.Minute)
	clientsCreateTopic(t, adm, "rx-data", 3, nil)
	cl := b.Client(t, kgo.DefaultProduceTopic("rx-data"))
	const n = 60
	for i := range n {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("v", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Commits from a standalone committer and a group consumer.
	if _, err := adm.CommitOffsets(ctx, "standalone", kadm.Offsets{"rx-data": {0: {Topic: "rx-data", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "meta"}}}); err != nil {
		t.Fatal(err)
	}

	// Metadata: listed, internal, 50 partitions.
	tds, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td, ok := tds[offsetsTopic]; !ok || !td.IsInternal || len(td.Partitions) != 50 {
		t.Fatalf("metadata: %s listed=%v internal=%v partitions=%d", offsetsTopic, ok, td.IsInternal, len(td.Partitions))
	}
	if plain, _ := adm.ListTopics(ctx); plain.Has(offsetsTopic) {
		t.Fatal("kadm.ListTopics (which filters internal topics by the flag) listed it")
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(offsetsTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Fatalf("DescribeConfigs of %s: cleanup.policy %q", offsetsTopic, policy)
	}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtpt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	dtpt.Topic = offsetsTopic
	dtp.Topics = append(dtp.Topics, dtpt)
	dresp, err := dtp.RequestWith(ctx, cl)
	if err != nil || len(dresp.Topics) != 1 || !dresp.Topics[0].IsInternal || len(dresp.Topics[0].Partitions) != 50 {
		t.Fatalf("DescribeTopicPartitions of %s: %v %+v", offsetsTopic, err, dresp)
	}

	// franz-go regex consumer in a group: gets every data record, nothing internal.
	gc := b.Client(t, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumerGroup("rx-franz"),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	CheckFor(t, 30*time.Second, func() error {
		fs := gc.PollFetches(Ctx(t, time.Second))
		fs.EachRecord(func(r *kgo.Record) { seen[r.Topic]++ })
		if seen["rx-data"] < n {
			return fmt.Errorf("franz-go regex consumer has %v", seen)
		}
		return nil
	})
	if err := gc.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Fatalf("franz-go regex consumer received %v", seen)
	}

	// librdkafka regex consumer. librdkafka (2.0 here) matches a regex
	// against every topic in metadata without looking at is_internal
	// (librdkafka issue #3458), against Kafka as here, so its users exclude
	// internal topics with topic.blacklist; with it, the consumer gets every
	// data record and nothing internal, as Java's exclude.internal.topics.
	var py struct {
		Counts         map[string]int `json:"counts"`
		MetadataTopics []string       `json:"metadata_topics"`
	}
	clientsRunPython(t, 90*time.Second, false, &py, "regex_consumer.py", "--bootstrap", b.Addr, "--group", "rx-rdkafka",
		"--pattern", "^.*", "--want", strconv.Itoa(n), "--blacklist", "^__.*")
	if len(py.Counts) != 1 || py.Counts["rx-data"] != n {
		t.Fatalf("librdkafka regex consumer received %v", py.Counts)
	}
	if !strings.Contains(strings.Join(py.MetadataTopics, ","), offsetsTopic) {
		t.Fatalf("librdkafka metadata lacks %s: %v", offsetsTopic, py.MetadataTopics)
	}

	// kcat reads it (binary keys and values; count them).
	var kcatN int
	CheckFor(t, 30*time.Second, func() error {
		out := clientsRun(t, 30*time.Second, "", "kcat", "-b", b.Addr, "-C", "-t", offsetsTopic, "-e", "-q", "-f", "%p %o\n")
		kcatN = strings.Count(out, "\n")
		if kcatN < 3 { // standalone + two groups' commits at least
			return fmt.Errorf("kcat read %d records", kcatN)
		}
		return nil
	})

	// franz-go decodes every record with kmsg's schemas.
	rd := b.Client(t, kgo.ConsumeTopics(offsetsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	commits := map[string]map[int32]int64{}
	groupsSeen := map[string]bool{}
	var decoded int
	CheckFor(t, 30*time.Second, func() error {
		fs := rd.PollFetches(Ctx(t, time.Second))
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			decoded++
			if len(r.Key) < 2 {
				bad = fmt.Errorf("short key %x", r.Key)
				return
			}
			switch v := int16(r.Key[0])<<8 | int16(r.Key[1]); v {
			case 0, 1:
				var k kmsg.OffsetCommitKey
				var val kmsg.OffsetCommitValue
				if err := k.ReadFrom(r.Key); err != nil {
					bad = fmt.Errorf("offset key %x: %v", r.Key, err)
					return
				}
				if r.Value == nil {
					return
				}
				if err := val.ReadFrom(r.Value); err != nil {
					bad = fmt.Errorf("offset value %x: %v", r.Value, err)
					return
				}
				if commits[k.Group] == nil {
					commits[k.Group] = map[int32]int64{}
				}
				commits[k.Group][k.Partition] = val.Offset
				if k.Group == "standalone" && val.Metadata != "meta" {
					bad = fmt.Errorf("standalone metadata %q", val.Metadata)
				}
			case 2:
				var k kmsg.GroupMetadataKey
				var val kmsg.GroupMetadataValue
				if err := k.ReadFrom(r.Key); err != nil {
					bad = fmt.Errorf("group key %x: %v", r.Key, err)
					return
				}
				if r.Value != nil {
					if err := val.ReadFrom(r.Value); err != nil {
						bad = fmt.Errorf("group value %x: %v", r.Value, err)
						return
					}
				}
				groupsSeen[k.Group] = true
			default:
				bad = fmt.Errorf("unknown key version %d", v)
			}
		})
		if bad != nil {
			t.Fatal(bad)
		}
		if decoded < kcatN || commits["standalone"][0] != 5 || commits["rx-franz"] == nil || !groupsSeen["rx-franz"] {
			return fmt.Errorf("decoded %d records (kcat read %d): commits %v groups %v", decoded, kcatN, commits, groupsSeen)
		}
		return nil
	})
	var sum int64
	for _, o := range commits["rx-franz"] {
		sum += o
	}
	if sum != n {
		t.Fatalf("rx-franz committed %v (sum %d), want a sum of %d", commits["rx-franz"], sum, n)
	}

	// Produce to it: refused, nothing written.
	ends := func() int64 {
		lo, err := adm.ListEndOffsets(ctx, offsetsTopic)
		if err != nil {
			t.Fatal(err)
		}
		var s int64
		lo.Each(func(o kadm.ListedOffset) { s += o.Offset })
		return s
	}
	before := ends()
	pc := b.Client(t, kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
	err = pc.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Partition: 0, Value: []byte("x")}).FirstErr()
	if err == nil || !strings.Contains(err.Error(), "INVALID_TOPIC_EXCEPTION") {
		t.Fatalf("produce to %s: %v", offsetsTopic, err)
	}
	if _, err := adm.DeleteTopic(ctx, offsetsTopic); err == nil {
		t.Fatal("DeleteTopics of the internal topic succeeded")
	}
	if r, err := adm.CreatePartitions(ctx, 2, offsetsTopic); err == nil && r.Error() == nil {
		t.Fatal("CreatePartitions of the internal topic succeeded")
	}
	if after := ends(); after != before {
		t.Fatalf("internal topic end offsets moved %d -> %d", before, after)
	}
}

// TestGroupSurvivesBrokerRestart: a Stable classic group of 4 librdkafka
// consumers (Python confluent_kafka) rides through a broker restart: no
// assignment or revocation callbacks after the restart, the generation the
// broker persists is unchanged, every record consumed exactly once.
//
// librdkafka keeps its membership while the coordinator is unreachable (it
// reconnects and heartbeats again within the session timeout). franz-go's
// classic consumer does not: when a heartbeat cannot reach the broker for
// about a second it ends its session and rejoins with different
// cooperative-sticky metadata, which rebalances the group, against Kafka as
// here; its KIP-848 consumer retries in place (TestGroups848SurvivesBrokerRestart).
func TestGroupSurvivesBrokerRestart(t *testing.T) {
	b := StartBroker(t)
	_, port, _ := strings.Cut(b.Addr, ":")
	adm := clientsAdmin(t, b)
	ctx := Ctx(t, 3*time.Minute)
	const topic, group, parts, per = "restart-grp", "restart-group", 8, 400
	clientsCreateTopic(t, adm, topic, parts, nil)
	produce := func(b *Broker, tag string) {
		cl := b.Client(t, kgo.DefaultProduceTopic(topic))
		rs := make([]*kgo.Record, per)
		for i := range rs {
			rs[i] = &kgo.Record{Key: []byte(fmt.Sprint(tag, i)), Value: []byte(fmt.Sprint(tag, i))}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	produce(b, "a")

	var mu sync.Mutex
	seen := map[[2]int64]int{} // (partition, offset) -> times consumed
	assignments := make([]int, 4)
	for i := range assignments {
		py := exec.Command(clientsPythonBin, "-u", "-B", filepath.Join("python", "groups_consumer.py"),
			"--bootstrap", b.Addr, "--topic", topic, "--group", group, "--session-ms", "10000")
		stdin, _ := py.StdinPipe()
		stdout, _ := py.StdoutPipe()
		if err := py.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); py.Process.Kill(); py.Wait() })
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var ev struct {
					P        *int64  `json:"p"`
					O        int64   `json:"o"`
					Assigned []int32 `json:"assigned"`
				}
				if json.Unmarshal(sc.Bytes(), &ev) != nil {
					continue
				}
				mu.Lock()
				if ev.P != nil {
					seen[[2]int64{*ev.P, ev.O}]++
				} else if ev.Assigned != nil {
					assignments[i]++
				}
				mu.Unlock()
			}
		}()
	}
	var gen0 int32
	CheckFor(t, 60*time.Second, func() error {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		g := dg[group]
		if n < per || g.State != "Stable" || len(g.Members) != 4 {
			return fmt.Errorf("%d records, group %s with %d members", n, g.State, len(g.Members))
		}
		gen0, err = persistedGeneration(t, b, group)
		return err
	})
	mu.Lock()
	before := slices.Clone(assignments)
	mu.Unlock()
	time.Sleep(time.Second) // every consumer auto-commits (500 ms)

	b.Stop()
	b = StartBrokerIn(t, b.DataDir, "--kafka-port", port)
	if !strings.Contains(b.Logs(), `"groups_restored":1`) {
		t.Fatalf("the broker did not restore the group:\n%s", tail(b.Logs(), 40))
	}
	produce(b, "b")
	adm = clientsAdmin(t, b)
	CheckFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 2*per {
			return fmt.Errorf("%d of %d records after the restart", len(seen), 2*per)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // heartbeats of the restored members
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	gen1, err := persistedGeneration(t, b, group)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gen1 != gen0 || dg[group].State != "Stable" || len(dg[group].Members) != 4 {
		t.Fatalf("after the restart: generation %d (was %d), group %s with %d members", gen1, gen0, dg[group].State, len(dg[group].Members))
	}
	if !slices.Equal(before, assignments) {
		t.Fatalf("assignment callbacks per consumer: %v before the restart, %v after", before, assignments)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("partition %d offset %d consumed %d times", k[0], k[1], c)
		}
	}
}

// persistedGeneration reads the group's last GroupMetadata record from
// __consumer_offsets (Kafka's schema) and returns its generation.
func persistedGeneration(t *testing.T, b *Broker, group string) (int32, error) {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(offsetsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(Ctx(t, 10*time.Second), offsetsTopic)
	if err != nil {
		return 0, err
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	gen, got := int32(-1), int64(0)
	deadline := time.Now().Add(10 * time.Second)
	for got < want && time.Now().Before(deadline) {
		fs := cl.PollFetches(Ctx(t, time.Second))
		fs.EachRecord(func(r *kgo.Record) {
			got++
			var k kmsg.GroupMetadataKey
			var v kmsg.GroupMetadataValue
			if len(r.Key) >= 2 && r.Key[1] == 2 && k.ReadFrom(r.Key) == nil && k.Group == group && r.Value != nil && v.ReadFrom(r.Value) == nil {
				gen = v.Generation
			}
		})
	}
	if gen < 0 {
		return 0, fmt.Errorf("no GroupMetadata record for %s (%d of %d records read)", group, got, want)
	}
	return gen, nil
}

// TestMigrateDataDirFromPreviousRelease starts the broker on a data dir
// written by the release before internal topics (testdata/datadir-v1.tar.gz:
// topic "orders" with 30 records; group "billing" committed 7/8/9 with
// metadata "m1", "audit" 1 on partition 0 after an OffsetDelete of partition
// 1, "gone" deleted) and checks the offsets, once after the migration and
// again after a kill -9 and restart.
func TestMigrateDataDirFromPreviousRelease(t *testing.T) {
	dir := t.TempDir()
	untar(t, "testdata/datadir-v1.tar.gz", dir)
	check := func(b *Broker) {
		t.Helper()
		adm := clientsAdmin(t, b)
		ctx := Ctx(t, 30*time.Second)
		want := map[string]map[int32]int64{"billing": {0: 7, 1: 8, 2: 9}, "audit": {0: 1}, "gone": {}}
		for g, w := range want {
			got, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			m := map[int32]int64{}
			got.Each(func(o kadm.OffsetResponse) { m[o.Partition] = o.At })
			if fmt.Sprint(m) != fmt.Sprint(w) {
				t.Fatalf("group %s offsets %v, want %v", g, m, w)
			}
		}
		if got, _ := adm.FetchOffsets(ctx, "billing"); got["orders"][0].Metadata != "m1" {
			t.Fatalf("billing metadata %q", got["orders"][0].Metadata)
		}
		if _, err := os.Stat(filepath.Join(dir, offsetsTopic)); err == nil {
			t.Fatal("the old offsets directory is still there")
		}
		// The data is still served.
		if recs := clientsConsumeKgo(t, b, "orders", 30, 30*time.Second); len(recs) != 30 {
			t.Fatalf("orders: %d records", len(recs))
		}
	}
	migrateAndRestart(t, dir, "migrated committed offsets", check)
}

// migrateAndRestart starts a broker on dir, which must log logged (its
// migration), and checks it; then kills it (-9) and checks a restart.
func migrateAndRestart(t *testing.T, dir, logged string, check func(*Broker)) {
	t.Helper()
	b := StartBrokerIn(t, dir)
	if !strings.Contains(b.Logs(), logged) {
		t.Fatalf("no migration logged:\n%s", tail(b.Logs(), 30))
	}
	check(b)
	b.Kill()
	check(StartBrokerIn(t, dir))
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			raw, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
