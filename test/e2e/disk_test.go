package e2e

// Full disk. What "recovers" means here (see docs/DESIGN.md, "A full disk is
// not a failed log"): a write that hits ENOSPC is cut back and answered with
// KAFKA_STORAGE_ERROR, the log stays usable, so
//   - while the disk is full, produce fails fast (no hang, no crash) and
//     everything acknowledged before stays readable;
//   - once space returns, produce to the same partition succeeds again at the
//     next offset without a restart, and new topics can be created and
//     written;
//   - a restart on the data dir (clean, or after kill -9 while the disk was
//     full) succeeds with every acknowledged record intact.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mountSmallFS mounts a filesystem of about sizeMB at a new directory and
// unmounts it at cleanup: tmpfs if allowed, else a loop-mounted ext4 image.
// Cleanups run in reverse order, so a broker started after this is stopped
// before the unmount.
func mountSmallFS(t *testing.T, sizeMB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("full-disk test needs root to mount a small filesystem")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	umount := func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; retrying lazily", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMB), "tmpfs", dir).CombinedOutput()
	if err == nil {
		t.Cleanup(umount)
		return dir
	}
	t.Logf("tmpfs mount failed (%v: %s); trying a loop-mounted ext4 image", err, strings.TrimSpace(string(out)))
	img := filepath.Join(base, "disk.img")
	for _, args := range [][]string{
		{"truncate", "-s", fmt.Sprintf("%dM", sizeMB*2), img},
		{"mkfs.ext4", "-q", "-F", img},
		{"mount", "-o", "loop", img, dir},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a small filesystem (%s: %v: %s)", args[0], err, strings.TrimSpace(string(out)))
		}
	}
	t.Cleanup(umount)
	return dir
}

// fillFile writes n bytes to path and fsyncs it.
func fillFile(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n > 0 {
		k := min(n, len(buf))
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatalf("filler: %v", err)
		}
		n -= k
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// createTopicCode creates a topic and returns its error code.
func createTopicCode(t *testing.T, b *Broker, topic string, partitions int32) int16 {
	t.Helper()
	r := dialRaw(t, b.Addr)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	return r.roundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
}

// appendUntilFull appends to path until the filesystem is full or limit
// bytes were added.
func appendUntilFull(t *testing.T, path string, limit int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for written := 0; written < limit; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("filler: %v", err)
			}
			return
		}
	}
}

// diskProduce sends one acks=all produce of a batch with `records` values
// and returns the partition's error code and base offset, failing the test
// if the answer takes longer than the request timeout allows.
func diskProduce(t *testing.T, r *rawConn, topic string, values [][]byte) (int16, int64) {
	t.Helper()
	start := time.Now()
	resp := r.roundTrip(produceRequest(9, topic, 0, rawBatch(values...))).(*kmsg.ProduceResponse)
	if d := time.Since(start); d > 12*time.Second {
		t.Fatalf("produce took %v (request timeout 10s)", d)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func diskValues(tag string, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		v := fmt.Sprintf("%s-%d-", tag, i)
		out[i] = []byte(v + strings.Repeat("d", size-len(v)))
	}
	return out
}

func checkLog(t *testing.T, got []string, want []string, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: offset %d differs", what, i)
		}
	}
}

func TestDiskFull(t *testing.T) {
	mnt := mountSmallFS(t, 8)
	filler := filepath.Join(mnt, "filler")
	fillFile(t, filler, 4<<20)
	dataDir := filepath.Join(mnt, "data")
	b := StartBrokerIn(t, dataDir)
	const topic = "full"
	createTopicKmsg(t, b.Client(t), topic, 1)

	// Produce 64 KiB requests until the disk is full.
	r := dialRaw(t, b.Addr)
	var acked []string // value per offset, everything acknowledged
	code := int16(0)
	for i := 0; code == 0; i++ {
		if i == 500 {
			t.Fatalf("disk never filled after %d records", len(acked))
		}
		vals := diskValues(fmt.Sprintf("a%d", i), 16, 4096)
		var base int64
		code, base = diskProduce(t, r, topic, vals)
		if code != 0 {
			break
		}
		if base != int64(len(acked)) {
			t.Fatalf("produce %d: base offset %d, want %d", i, base, len(acked))
		}
		for _, v := range vals {
			acked = append(acked, string(v))
		}
	}
	if code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: %v (%d), want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code), code)
	}
	t.Logf("disk full after %d acknowledged records", len(acked))
	CheckFor(t, 5*time.Second, func() error {
		if !strings.Contains(b.Logs(), `"msg":"storage: disk full`) {
			return fmt.Errorf("no disk-full warning in the log")
		}
		return nil
	})
	// Still full: the same produce fails fast again, and the broker is alive
	// and serving reads of everything acknowledged.
	if code, _ := diskProduce(t, r, topic, diskValues("again", 16, 4096)); code != kerr.KafkaStorageError.Code {
		t.Fatalf("second produce on a full disk: %v", kerr.ErrorForCode(code))
	}
	if b.Exited() {
		t.Fatalf("broker exited on a full disk:\n%s", tail(b.Logs(), 30))
	}
	checkLog(t, readAll(t, b, topic, 1)[0], acked, "read back on a full disk")
	if n := strings.Count(b.Logs(), `"msg":"storage: disk full`); n != 1 {
		t.Fatalf("%d disk-full warnings, want 1 (rate-limited)", n)
	}

	// Creating a topic on a completely full disk fails cleanly, and once
	// space returns the topic is usable without a restart (regression: it
	// used to be answered as created with partitions that stayed unopened
	// until a restart).
	appendUntilFull(t, filler, 1<<30)
	if code := createTopicCode(t, b, "during", 2); code != kerr.KafkaStorageError.Code {
		t.Fatalf("CreateTopics on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}

	// Space returns: the same partition takes writes again at the next
	// offset, and a new topic can be created and written, without a
	// restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code := createTopicCode(t, b, "during", 2); code != 0 && code != kerr.TopicAlreadyExists.Code {
		t.Fatalf("CreateTopics again after freeing space: %v", kerr.ErrorForCode(code))
	}
	for p := range int32(2) {
		CheckFor(t, 5*time.Second, func() error {
			resp := r.roundTrip(produceRequest(9, "during", p, rawBatch([]byte("x")))).(*kmsg.ProduceResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				return fmt.Errorf("produce to during-%d after freeing space: %v", p, kerr.ErrorForCode(code))
			}
			return nil
		})
	}
	vals := diskValues("after-free", 8, 1024)
	code, base := diskProduce(t, r, topic, vals)
	if code != 0 || base != int64(len(acked)) {
		t.Fatalf("produce after freeing space: %v base %d, want base %d", kerr.ErrorForCode(code), base, len(acked))
	}
	for _, v := range vals {
		acked = append(acked, string(v))
	}
	cl := b.Client(t)
	createTopicKmsg(t, cl, "fresh", 1)
	if code, base := diskProduce(t, r, "fresh", diskValues("fresh", 4, 100)); code != 0 || base != 0 {
		t.Fatalf("produce to a new topic after freeing space: %v base %d", kerr.ErrorForCode(code), base)
	}
	checkLog(t, readAll(t, b, topic, 1)[0], acked, "read back after freeing space")

	// Clean restart keeps everything.
	b.Stop()
	b = StartBrokerIn(t, dataDir)
	checkLog(t, readAll(t, b, topic, 1)[0], acked, "after a clean restart")
	if got := readAll(t, b, "fresh", 1)[0]; len(got) != 4 {
		t.Fatalf("new topic has %d records after restart, want 4", len(got))
	}

	// Fill the disk again and crash while it is full; the broker must come
	// back once space returns, with all acknowledged data.
	appendUntilFull(t, filler, 3<<20)
	r = dialRaw(t, b.Addr)
	for i := 0; ; i++ {
		if i == 500 {
			t.Fatal("disk never filled the second time")
		}
		vals := diskValues(fmt.Sprintf("b%d", i), 16, 4096)
		code, base := diskProduce(t, r, topic, vals)
		if code != 0 {
			if code != kerr.KafkaStorageError.Code {
				t.Fatalf("produce on a full disk: %v", kerr.ErrorForCode(code))
			}
			break
		}
		if base != int64(len(acked)) {
			t.Fatalf("base offset %d, want %d", base, len(acked))
		}
		for _, v := range vals {
			acked = append(acked, string(v))
		}
	}
	b.Kill()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	b = StartBrokerIn(t, dataDir)
	checkLog(t, readAll(t, b, topic, 1)[0], acked, "after kill -9 on a full disk")
	r = dialRaw(t, b.Addr)
	if code, base := diskProduce(t, r, topic, diskValues("end", 2, 100)); code != 0 || base != int64(len(acked)) {
		t.Fatalf("produce after restart: %v base %d, want base %d", kerr.ErrorForCode(code), base, len(acked))
	}
}

// TestDiskFullRestartWhileFull: a broker killed on a full disk must start
// again even before space returns (recovery itself needs no new space), and
// serve what it has.
func TestDiskFullRestartWhileFull(t *testing.T) {
	mnt := mountSmallFS(t, 8)
	filler := filepath.Join(mnt, "filler")
	fillFile(t, filler, 4<<20)
	dataDir := filepath.Join(mnt, "data")
	b := StartBrokerIn(t, dataDir)
	const topic = "full"
	createTopicKmsg(t, b.Client(t), topic, 1)
	r := dialRaw(t, b.Addr)
	var acked []string
	for i := 0; ; i++ {
		if i == 500 {
			t.Fatal("disk never filled")
		}
		vals := diskValues(fmt.Sprintf("a%d", i), 16, 4096)
		code, _ := diskProduce(t, r, topic, vals)
		if code != 0 {
			break
		}
		for _, v := range vals {
			acked = append(acked, string(v))
		}
	}
	b.Kill()
	// Top the disk up completely: whatever the killed broker left free is
	// taken too.
	appendUntilFull(t, filler, 1<<30)
	b = StartBrokerIn(t, dataDir)
	checkLog(t, readAll(t, b, topic, 1)[0], acked, "restart on a full disk")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r = dialRaw(t, b.Addr)
	if code, base := diskProduce(t, r, topic, diskValues("end", 2, 100)); code != 0 || base != int64(len(acked)) {
		t.Fatalf("produce after space returned: %v base %d, want base %d", kerr.ErrorForCode(code), base, len(acked))
	}
}
