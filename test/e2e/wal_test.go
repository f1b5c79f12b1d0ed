package e2e

// Group-commit WAL: acknowledged records whose segment writes a power loss
// took (simulated by cutting segment files after kill -9) come back from the
// write-ahead log on restart.

import (
	"bufio"
	"context"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// walBatch is one batch a WAL record holds for a partition.
type walBatch struct{ base, next int64 }

// readWAL parses <data>/__wal/wal.log as Replay does (docs in
// internal/wal/wal.go): records from offset 0 while they are whole, pass
// their CRC and carry the first record's generation. It returns, for the
// given topic id, each partition's batches in WAL order.
func readWAL(t testing.TB, dataDir string, topicID [16]byte) map[int32][]walBatch {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "__wal", "wal.log"))
	if err != nil {
		t.Fatal(err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	out := map[int32][]walBatch{}
	var gen uint64
	for off := 0; off+8 <= len(raw); {
		n := int(bin.BigEndian.Uint32(raw[off:]))
		if n < 28 || off+8+n > len(raw) {
			break
		}
		rec := raw[off+8 : off+8+n]
		if crc32.Checksum(rec, table) != bin.BigEndian.Uint32(raw[off+4:]) {
			break
		}
		g := bin.BigEndian.Uint64(rec)
		if off == 0 {
			gen = g
		} else if g != gen {
			break
		}
		var id [16]byte
		copy(id[:], rec[8:24])
		p := int32(bin.BigEndian.Uint32(rec[24:]))
		for b := rec[28:]; len(b) >= 61; {
			size := 12 + int(bin.BigEndian.Uint32(b[8:]))
			base := int64(bin.BigEndian.Uint64(b))
			lastDelta := int64(bin.BigEndian.Uint32(b[23:]))
			if id == topicID {
				out[p] = append(out[p], walBatch{base, base + lastDelta + 1})
			}
			b = b[size:]
		}
		off += 8 + n
	}
	return out
}

// segmentBatches lists (position, base offset) of each batch of a segment
// file, and the file's end offset.
func segmentBatches(t testing.TB, path string) (pos []int64, base []int64, end int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for p := int64(0); p+61 <= int64(len(data)); {
		n := 12 + int64(bin.BigEndian.Uint32(data[p+8:]))
		b := int64(bin.BigEndian.Uint64(data[p:]))
		pos, base = append(pos, p), append(base, b)
		end = b + int64(bin.BigEndian.Uint32(data[p+23:])) + 1
		p += n
	}
	return pos, base, end
}

// safeCut is the smallest file position a power loss may cut a partition's
// segment back to without losing acknowledged data: the WAL must hold every
// batch from there to the end (anything before it may have been fsynced
// directly, and a real power loss cannot take fsynced data).
func safeCut(t testing.TB, path string, wal []walBatch) (cut int64, restorable int) {
	t.Helper()
	pos, base, end := segmentBatches(t, path)
	cover := end
	for i := len(wal) - 1; i >= 0; i-- {
		if wal[i].next == cover {
			cover = wal[i].base
			restorable++
		}
	}
	for i, b := range base {
		if b == cover {
			return pos[i], restorable
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size(), 0
}

func metricValue(t testing.TB, b *Broker, name string) float64 {
	t.Helper()
	_, body := b.Get(t, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

func TestWALRestoresLostSegmentData(t *testing.T) {
	const (
		topic     = "walrestore"
		parts     = 3
		producers = 12
		perProd   = 100
	)
	dir := t.TempDir()
	b := StartBrokerIn(t, dir)
	adm := kadm.NewClient(b.Client(t))
	clientsCreateTopic(t, adm, topic, parts, nil)
	details, err := adm.ListTopics(context.Background(), topic)
	if err != nil || details[topic].Err != nil {
		t.Fatalf("list topics: %v %v", err, details[topic].Err)
	}
	topicID := [16]byte(details[topic].ID)

	// Concurrent acks=all producers on all partitions: rounds span several
	// partitions and go through the WAL.
	acks := newAckLog()
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1000))
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := int32(g % parts)
			for i := range perProd {
				v := fmt.Sprintf("p%d-g%d-%d-%s", p, g, i, strings.Repeat("x", 20+i%50))
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
				res := cl.ProduceSync(Ctx(t, 30*time.Second), r)
				if err := res.FirstErr(); err != nil {
					errc <- err
					return
				}
				if err := acks.add(p, r.Offset, v); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("produce: %v", err)
	}
	// Rounds are cut by timing; end with bursts of one record per
	// partition until each partition's last acknowledged batch is in the
	// WAL (not fsynced directly), so the crash below has a WAL-only tail
	// to lose everywhere.
	walTail := func() bool {
		wal := readWAL(t, dir, topicID)
		acks.mu.Lock()
		defer acks.mu.Unlock()
		for p := range int32(parts) {
			last := int64(len(acks.acks[p])) - 1
			ws := wal[p]
			if len(ws) == 0 || ws[len(ws)-1].next != last+1 {
				return false
			}
		}
		return true
	}
	bursts := 0
	for ; !walTail(); bursts++ {
		if bursts == 200 {
			t.Fatal("no burst of three concurrent produces went through the WAL")
		}
		var bw sync.WaitGroup
		for p := range int32(parts) {
			bw.Add(1)
			go func() {
				defer bw.Done()
				v := fmt.Sprintf("burst-p%d-%d", p, bursts)
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
				if err := cl.ProduceSync(Ctx(t, 30*time.Second), r).FirstErr(); err != nil {
					t.Errorf("burst produce: %v", err)
					return
				}
				if err := acks.add(p, r.Offset, v); err != nil {
					t.Error(err)
				}
			}()
		}
		bw.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d bursts until every partition's tail was in the WAL", bursts)
	if n := metricValue(t, b, "chronik_wal_rounds_total"); n <= 0 {
		t.Fatalf("chronik_wal_rounds_total = %v after concurrent multi-partition produce", n)
	}

	// Power loss after the last acknowledgement: kill -9, then take away
	// segment bytes the page cache held (half of each file, or as much as
	// a power loss could take: what was never fsynced).
	b.Kill()
	wal := readWAL(t, dir, topicID)
	for p := range int32(parts) {
		path := lastSegment(t, partitionDirOf(dir, topic, p))
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		safe, restorable := safeCut(t, path, wal[p])
		cut := max(st.Size()/2, safe)
		t.Logf("partition %d: segment %d bytes, WAL restores %d trailing batches, cutting to %d", p, st.Size(), restorable, cut)
		if cut >= st.Size() {
			t.Fatalf("partition %d: tail not WAL-only at the crash, nothing to restore", p)
		}
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
	}

	b = StartBrokerIn(t, dir)
	verifyAcks(t, acks, readAll(t, b, topic, parts))
	restored := 0
	for _, line := range strings.Split(b.Logs(), "\n") {
		if !strings.Contains(line, "WAL replayed") {
			continue
		}
		var rec struct {
			Restored int `json:"batches_restored"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		restored += rec.Restored
	}
	if restored == 0 {
		t.Fatalf("no \"WAL replayed\" line with restored batches in the broker log:\n%s", tail(b.Logs(), 40))
	}
	for p := range int32(parts) {
		if n := len(acks.acks[p]); n != producers/parts*perProd+bursts {
			t.Errorf("partition %d: %d acknowledged records, want %d", p, n, producers/parts*perProd+bursts)
		}
	}

	// A clean restart now replays nothing.
	b.Stop()
	b = StartBrokerIn(t, dir)
	if strings.Contains(b.Logs(), "WAL replayed") {
		t.Errorf("WAL replayed again after a clean shutdown:\n%s", tail(b.Logs(), 40))
	}
	verifyAcks(t, acks, readAll(t, b, topic, parts))
}
