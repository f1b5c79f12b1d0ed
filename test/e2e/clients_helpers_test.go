package e2e

// Helpers shared by clients_test.go, admin_test.go and idempotence_test.go:
// deterministic record content every client can produce and check, runners
// for kcat and the Python scripts, and small kadm/kmsg shortcuts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const clientsPythonBin = "/usr/bin/python3" // Debian's client modules import only here

// clientsKey, clientsValue and clientsHeader define record i of a data set
// tagged tag. The value carries the index and a CRC of "tag/index", so a
// consumer can check each record on its own; the same definitions are
// mirrored in python/clients_common.py.
func clientsKey(tag string, i int) string { return "k-" + tag + "-" + strconv.Itoa(i%97) }

func clientsValue(tag string, i int) string {
	body := tag + "/" + strconv.Itoa(i)
	return fmt.Sprintf("v-%s-%07d-%08x", tag, i, crc32.ChecksumIEEE([]byte(body)))
}

// clientsRecord is a client-independent view of one consumed record.
type clientsRecord struct {
	Partition int32      `json:"p"`
	Offset    int64      `json:"o"`
	Key       string     `json:"k"`
	Value     string     `json:"v"`
	Headers   [][]string `json:"h"` // [name, value] pairs in order
}

func (r clientsRecord) String() string {
	hs := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = h[0] + "=" + h[1]
	}
	return fmt.Sprintf("%d|%d|%s|%s|%s", r.Partition, r.Offset, r.Key, r.Value, strings.Join(hs, ","))
}

func clientsFromKgo(r *kgo.Record) clientsRecord {
	out := clientsRecord{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, []string{h.Key, string(h.Value)})
	}
	return out
}

// clientsSorted orders records by partition and offset.
func clientsSorted(rs []clientsRecord) []clientsRecord {
	out := append([]clientsRecord(nil), rs...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// clientsSame fails the test unless a and b hold the same records.
func clientsSame(t *testing.T, what string, a, b []clientsRecord) {
	t.Helper()
	a, b = clientsSorted(a), clientsSorted(b)
	if len(a) != len(b) {
		t.Fatalf("%s: %d records vs %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			t.Fatalf("%s: record %d differs:\n  %s\n  %s", what, i, a[i], b[i])
		}
	}
}

// clientsConsumeKgo reads every record of topic from the start until n arrived.
func clientsConsumeKgo(t *testing.T, b *Broker, topic string, n int, timeout time.Duration) []clientsRecord {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx := Ctx(t, timeout)
	var out []clientsRecord
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %s before timeout", len(out), n, topic)
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, clientsFromKgo(r)) })
	}
	if len(out) != n {
		t.Fatalf("consumed %d records from %s, want %d", len(out), topic, n)
	}
	cl.Close()
	return out
}

// clientsCreateTopic creates topic with n partitions and fails the test otherwise.
func clientsCreateTopic(t testing.TB, adm *kadm.Client, topic string, n int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(context.Background(), n, -1, configs, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v / %v", topic, err, resp.Err)
	}
}

func clientsAdmin(t testing.TB, b *Broker, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t, opts...))
}

// clientsRun runs a command with stdin, failing the test on a non-zero exit.
func clientsRun(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := clientsTry(timeout, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, tail(out, 20), tail(errOut, 40))
	}
	return out
}

func clientsTry(timeout time.Duration, stdin string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return o.String(), e.String(), err
}

// kcatFormat is the -f format kcatParse reads: fields separated by '|', one
// record per line (keys, values and headers of our data sets hold neither).
const kcatFormat = `%p|%o|%k|%s|%h\n`

func kcatParse(t *testing.T, out string) []clientsRecord {
	t.Helper()
	var rs []clientsRecord
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 5 {
			t.Fatalf("kcat line %q: want 5 fields", line)
		}
		p, err1 := strconv.Atoi(f[0])
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat line %q: bad partition/offset", line)
		}
		r := clientsRecord{Partition: int32(p), Offset: o, Key: f[2], Value: f[3]}
		if f[4] != "" {
			for _, h := range strings.Split(f[4], ",") {
				k, v, _ := strings.Cut(h, "=")
				r.Headers = append(r.Headers, []string{k, v})
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// kcatConsume reads the whole topic (-e: exit at the end of every partition).
func kcatConsume(t *testing.T, b *Broker, topic string) []clientsRecord {
	t.Helper()
	return kcatParse(t, clientsRun(t, 60*time.Second, "", "kcat", "-b", b.Addr, "-C", "-t", topic,
		"-o", "beginning", "-e", "-q", "-f", kcatFormat))
}

// kcatProduce sends "key:value" lines with the given extra flags.
func kcatProduce(t *testing.T, b *Broker, topic string, lines []string, extra ...string) {
	t.Helper()
	args := append([]string{"-b", b.Addr, "-P", "-t", topic, "-K:"}, extra...)
	clientsRun(t, 60*time.Second, strings.Join(lines, "\n")+"\n", "kcat", args...)
}

// clientsRunPython runs test/e2e/python/<script> and decodes its JSON summary (the
// last line of stdout) into out. A non-zero exit fails the test unless
// allowFail is set; the exit error is returned either way.
func clientsRunPython(t *testing.T, timeout time.Duration, allowFail bool, out any, script string, args ...string) error {
	t.Helper()
	full := append([]string{"-u", "-B", filepath.Join("python", script)}, args...) // -B: no __pycache__ in the tree
	stdout, stderr, err := clientsTry(timeout, "", clientsPythonBin, full...)
	if err != nil && !allowFail {
		t.Fatalf("python %s %v: %v\nstdout:\n%s\nstderr:\n%s", script, args, err, tail(stdout, 20), tail(stderr, 40))
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if jerr := json.Unmarshal([]byte(last), out); jerr != nil {
		t.Fatalf("python %s: summary %q is not JSON: %v (exit: %v)\nstderr:\n%s", script, tail(last, 5), jerr, err, tail(stderr, 40))
	}
	return err
}

// clientsBatchCodecs fetches the raw stored batches of topic/partition from offset 0
// and returns the compression codec (attributes & 7) of each.
func clientsBatchCodecs(t *testing.T, cl *kgo.Client, topic string, partition int32) []int8 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 1<<20
	// The client picks the request version (v13+ names topics by id), so
	// give both.
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("metadata for %s: %v %v", topic, err, td[topic].Err)
	}
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, td[topic].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = partition, 0, 1<<20
	fp.CurrentLeaderEpoch = -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	kresp, err := cl.Broker(1).Request(context.Background(), req)
	if err != nil {
		t.Fatalf("raw fetch: %v", err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("raw fetch: unexpected response shape %+v", resp)
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		t.Fatalf("raw fetch: %v", err)
	}
	var codecs []int8
	raw := rp.RecordBatches
	for len(raw) >= 61 {
		var rb kmsg.RecordBatch
		n := int(int32(raw[8])<<24|int32(raw[9])<<16|int32(raw[10])<<8|int32(raw[11])) + 12
		if n > len(raw) {
			break // partial trailing batch
		}
		if err := rb.ReadFrom(raw[:n]); err != nil {
			t.Fatalf("raw fetch: decoding batch: %v", err)
		}
		codecs = append(codecs, int8(rb.Attributes&7))
		raw = raw[n:]
	}
	if len(codecs) == 0 {
		t.Fatalf("raw fetch of %s-%d returned no batch", topic, partition)
	}
	return codecs
}

// clientsParseValue returns the tag and index of a value made by
// clientsValue, or ok=false when it is malformed or its checksum is wrong.
func clientsParseValue(v string) (tag string, i int, ok bool) {
	rest, found := strings.CutPrefix(v, "v-")
	if !found {
		return "", 0, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) < 3 {
		return "", 0, false
	}
	tag = strings.Join(parts[:len(parts)-2], "-")
	i, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil || clientsValue(tag, i) != v {
		return "", 0, false
	}
	return tag, i, true
}

// clientsCheckDataset fails the test unless recs is exactly records 0..n-1 of tag,
// each once, with the right key and the headers wantHeaders(i), and every
// partition's offsets run 0, 1, 2, ... in record-index order.
func clientsCheckDataset(t *testing.T, what string, recs []clientsRecord, tag string, n int, wantHeaders func(i int) [][]string) {
	t.Helper()
	seen := make([]bool, n)
	nextOff := map[int32]int64{}
	lastIdx := map[int32]int{}
	for _, r := range clientsSorted(recs) {
		rtag, i, ok := clientsParseValue(r.Value)
		if !ok || rtag != tag || i < 0 || i >= n {
			t.Fatalf("%s: unexpected record %s", what, r)
		}
		if seen[i] {
			t.Fatalf("%s: record %d delivered twice (%s)", what, i, r)
		}
		seen[i] = true
		if r.Key != clientsKey(tag, i) {
			t.Fatalf("%s: record %d has key %q, want %q", what, i, r.Key, clientsKey(tag, i))
		}
		if got, want := fmt.Sprint(r.Headers), fmt.Sprint(wantHeaders(i)); got != want {
			t.Fatalf("%s: record %d has headers %s, want %s", what, i, got, want)
		}
		if r.Offset != nextOff[r.Partition] {
			t.Fatalf("%s: partition %d offset %d, want %d (gap or duplicate)", what, r.Partition, r.Offset, nextOff[r.Partition])
		}
		nextOff[r.Partition]++
		if last, ok := lastIdx[r.Partition]; ok && i <= last {
			t.Fatalf("%s: partition %d holds record %d after %d (order broken)", what, r.Partition, i, last)
		}
		lastIdx[r.Partition] = i
	}
	for i, s := range seen {
		if !s {
			t.Fatalf("%s: record %d missing (%d records)", what, i, len(recs))
		}
	}
}

// clientsListOffset sends one ListOffsets for topic/partition at timestamp ts (-1
// latest, -2 earliest, -3 max timestamp) and returns the answer.
func clientsListOffset(t *testing.T, cl *kgo.Client, topic string, partition int32, ts int64) (offset, timestamp int64) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch, rp.MaxNumOffsets = partition, ts, -1, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatalf("ListOffsets %s-%d @%d: %v", topic, partition, ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets: unexpected response shape %+v", resp)
	}
	sp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
		t.Fatalf("ListOffsets %s-%d @%d: %v", topic, partition, ts, err)
	}
	return sp.Offset, sp.Timestamp
}

// expectCode reports (without stopping the test) a Kafka error code other
// than want (nil: no error).
func expectCode(t testing.TB, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}
