package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kv is a test record; a nil value is a tombstone.
type kv struct {
	key   string
	value *string
}

func val(s string) *string { return &s }

// kvBatch builds a batch of keyed records stamped ts, compressed with codec.
func kvBatch(tb testing.TB, ts int64, codec int8, recs ...kv) []byte {
	tb.Helper()
	var body []byte
	for i, r := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: []byte(r.key)}
		if r.value != nil {
			rec.Value = []byte(*r.value)
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
	}
	body = compress(tb, codec, false, body)
	b := kmsg.RecordBatch{
		Length: int32(BatchHeaderSize - batchLengthOverhead + len(body)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: int16(codec), LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(recs)), Records: body,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// rec is a record read back: offset, key, value ("<nil>" for a tombstone).
type rec struct {
	off      int64
	key, val string
}

// readRecords decodes every record of the log, checking each batch's CRC.
func readRecords(tb testing.TB, l *Log) []rec {
	tb.Helper()
	data, err := l.Read(l.LogStartOffset(), math.MaxInt32, l.LogEndOffset(), nil)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var out []rec
	err = SplitBatches(data, func(b []byte) error {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return err
		}
		if crc32.Checksum(b[offAttributes:], castagnoli) != h.CRC {
			return ErrBatchCRC
		}
		return DecodeRecords(b, Decompress, func(r *kmsg.Record) error {
			v := "<nil>"
			if r.Value != nil {
				v = string(r.Value)
			}
			out = append(out, rec{off: h.BaseOffset + int64(r.OffsetDelta), key: string(r.Key), val: v})
			return nil
		})
	})
	if err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return out
}

// fillKeyed appends n records over keys k0..k(nkeys-1), 4 per batch, value
// "v<offset>", and syncs so that the sealed segments become cleanable.
func fillKeyed(tb testing.TB, l *Log, n, nkeys int, ts int64, codec int8) {
	tb.Helper()
	for i := 0; i < n; i += 4 {
		var recs []kv
		for j := i; j < i+4 && j < n; j++ {
			recs = append(recs, kv{key: fmt.Sprintf("k%d", j%nkeys), value: val(fmt.Sprintf("v%d", j))})
		}
		if _, err := l.Append(kvBatch(tb, ts, codec, recs...)); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := l.Sync(); err != nil {
		tb.Fatal(err)
	}
}

// expectCompacted computes the survivors of a full clean of the records
// below cleanEnd: the latest per key, plus everything at or after cleanEnd.
func expectCompacted(all []rec, cleanEnd int64) []rec {
	latest := map[string]int64{}
	for _, r := range all {
		if r.off < cleanEnd {
			latest[r.key] = r.off
		}
	}
	var out []rec
	for _, r := range all {
		if r.off >= cleanEnd || latest[r.key] == r.off {
			out = append(out, r)
		}
	}
	return out
}

func sameRecs(tb testing.TB, what string, got, want []rec) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d records, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("%s: record %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

func cleanableEnd(l *Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].Base
}

func cleanOpts(l *Log) CleanOptions {
	return CleanOptions{Now: time.Now(), UpTo: l.DurableOffset(), DeleteRetentionMs: math.MaxInt32}
}

func TestCleanKeepsLatestPerKeyWithOffsets(t *testing.T) {
	for _, codec := range []int8{CodecNone, CodecGzip, CodecZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Options{SegmentBytes: 600, IndexIntervalBytes: 1})
			defer l.Close()
			now := time.Now().UnixMilli()
			fillKeyed(t, l, 200, 7, now, codec)
			all := readRecords(t, l)
			activeBefore := l.Segments()[len(l.Segments())-1]
			end := cleanableEnd(l)
			res, err := l.Clean(cleanOpts(l))
			if err != nil {
				t.Fatal(err)
			}
			want := expectCompacted(all, end)
			if !res.Ran || res.RecordsRemoved != int64(len(all)-len(want)) || res.BytesReclaimed <= 0 {
				t.Fatalf("result %+v, want %d records removed", res, len(all)-len(want))
			}
			sameRecs(t, "after clean", readRecords(t, l), want)
			if a := l.Segments()[len(l.Segments())-1]; a != activeBefore {
				t.Fatalf("active segment changed: %+v -> %+v", activeBefore, a)
			}
			if l.CleanedOffset() != end {
				t.Fatalf("cleaned offset %d, want %d", l.CleanedOffset(), end)
			}
			// Reads at every offset, removed ones included, start at the
			// next surviving record (index lookups land in gaps).
			for off := int64(0); off < l.LogEndOffset(); off++ {
				data, err := l.Read(off, 1, l.LogEndOffset(), nil)
				if err != nil {
					t.Fatalf("read %d: %v", off, err)
				}
				h, _ := ParseBatchHeader(data)
				if h.NextOffset() <= off {
					t.Fatalf("read %d returned batch [%d, %d)", off, h.BaseOffset, h.NextOffset())
				}
				for _, w := range want {
					if w.off >= off {
						if w.off < h.BaseOffset || w.off >= h.NextOffset() {
							t.Fatalf("read %d returned batch [%d, %d), next survivor is %d", off, h.BaseOffset, h.NextOffset(), w.off)
						}
						break
					}
				}
			}
			// A second pass finds nothing dirty.
			if res, err := l.Clean(cleanOpts(l)); err != nil || res.Ran {
				t.Fatalf("second clean: %+v %v", res, err)
			}
			// Reopen, clean and unclean (indexes gone: full scan with gaps).
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, Options{SegmentBytes: 600, IndexIntervalBytes: 1})
			sameRecs(t, "after reopen", readRecords(t, l), want)
			if l.LogStartOffset() != 0 {
				t.Fatalf("log start %d after reopen: emptied segments must keep their base", l.LogStartOffset())
			}
			l.crash()
			matches, _ := filepath.Glob(filepath.Join(dir, "*.index"))
			for _, m := range matches {
				_ = os.Remove(m)
			}
			l = openLog(t, dir, Options{SegmentBytes: 600, IndexIntervalBytes: 1})
			sameRecs(t, "after unclean reopen without indexes", readRecords(t, l), want)
			// Appends continue contiguously at the log end.
			fillKeyed(t, l, 8, 7, now, CodecNone)
		})
	}
}

func TestCleanTombstonesAndLag(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 400})
	defer l.Close()
	old := time.Now().Add(-time.Hour).UnixMilli()
	for i := 0; i < 12; i++ {
		if _, err := l.Append(kvBatch(t, old, CodecNone, kv{"a", val(fmt.Sprint("a", i))}, kv{"b", val(fmt.Sprint("b", i))}, kv{"c", val("c")})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(kvBatch(t, old, CodecNone, kv{"b", nil}, kv{"c", nil})); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ { // old filler: the tombstones' segment is sealed before the young data
		if _, err := l.Append(kvBatch(t, old, CodecNone, kv{"f", val("f")}, kv{"f", val("f")}, kv{"f", val("f")})); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ { // young data, and a new active segment
		if _, err := l.Append(kvBatch(t, time.Now().UnixMilli(), CodecNone, kv{"z", val("z")}, kv{"y", val("y")}, kv{"x", val("x")})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	all := readRecords(t, l)

	// A lag longer than the old data's age: nothing is cleanable.
	o := cleanOpts(l)
	o.MinLagMs = 2 * time.Hour.Milliseconds()
	if res, err := l.Clean(o); err != nil || res.Ran {
		t.Fatalf("clean with long lag: %+v %v", res, err)
	}
	sameRecs(t, "lag respected", readRecords(t, l), all)

	// Lag of 10 minutes: the young segments stay. The tombstones are an
	// hour old, but delete.retention.ms (1 minute) counts from the pass
	// that first keeps them (Kafka's rule): they stay, and their batch is
	// stamped with the delete horizon.
	o.MinLagMs = 10 * time.Minute.Milliseconds()
	o.DeleteRetentionMs = time.Minute.Milliseconds()
	if _, err := l.Clean(o); err != nil {
		t.Fatal(err)
	}
	got := readRecords(t, l)
	has := func(rs []rec, key, v string) bool {
		for _, r := range rs {
			if r.key == key && r.val == v {
				return true
			}
		}
		return false
	}
	if !has(got, "b", "<nil>") || !has(got, "c", "<nil>") || !has(got, "a", "a11") || has(got, "a", "a10") || has(got, "b", "b11") {
		t.Fatalf("after the first clean: %v", got)
	}
	// Every young record is still there.
	for _, r := range all {
		if (r.key == "x" || r.key == "y" || r.key == "z") && !has(got, r.key, r.val) {
			t.Fatalf("young record %v removed", r)
		}
	}
	horizon := o.Now.UnixMilli() + o.DeleteRetentionMs
	stamped := 0
	eachLogBatch(t, l, func(b []byte, h *BatchHeader) {
		hz, ok := h.DeleteHorizon()
		var tombstones int
		if err := DecodeRecords(b, Decompress, func(r *kmsg.Record) error {
			if r.Value == nil {
				tombstones++
			}
			if ts := h.BaseTimestamp + r.TimestampDelta64; ts != old && ts < time.Now().Add(-time.Minute).UnixMilli() {
				t.Errorf("record at %d: timestamp %d, want %d", h.BaseOffset+int64(r.OffsetDelta), ts, old)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		switch {
		case tombstones > 0 && (!ok || hz != horizon || h.Attributes&AttrDeleteHorizon == 0):
			t.Errorf("batch at %d keeps %d tombstones without the horizon %d: %+v", h.BaseOffset, tombstones, horizon, h)
		case tombstones == 0 && ok:
			t.Errorf("batch at %d without tombstones has a delete horizon", h.BaseOffset)
		case ok:
			stamped++
		}
	})
	if stamped != 1 {
		t.Fatalf("%d batches stamped, want 1", stamped)
	}

	// Before the horizon a pass keeps them (and the stamp: no rewrite).
	l.cleanedTo.Store(0) // force the already clean part to be dirty again
	o.Now = o.Now.Add(30 * time.Second)
	o.DeleteRetentionMs = 0 // would stamp a new horizon of "now"; the old one stands
	if _, err := l.Clean(o); err != nil {
		t.Fatal(err)
	}
	if got = readRecords(t, l); !has(got, "b", "<nil>") || !has(got, "c", "<nil>") {
		t.Fatalf("tombstones removed before their horizon: %v", got)
	}
	// At the horizon they go; the rest of the log is untouched.
	l.cleanedTo.Store(0)
	o.Now = time.UnixMilli(horizon)
	if _, err := l.Clean(o); err != nil {
		t.Fatal(err)
	}
	got = readRecords(t, l)
	if has(got, "b", "<nil>") || has(got, "c", "<nil>") || !has(got, "a", "a11") || !has(got, "f", "f") || !has(got, "x", "x") {
		t.Fatalf("tombstones not removed at their horizon: %v", got)
	}
}

// eachLogBatch calls fn with every batch of the log and its header.
func eachLogBatch(tb testing.TB, l *Log, fn func(b []byte, h *BatchHeader)) {
	tb.Helper()
	data, err := l.Read(l.LogStartOffset(), math.MaxInt32, l.LogEndOffset(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := SplitBatches(data, func(b []byte) error {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return err
		}
		fn(b, &h)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
}

func TestCleanDirtyRatio(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 600})
	defer l.Close()
	fillKeyed(t, l, 100, 3, time.Now().UnixMilli(), CodecNone)
	o := cleanOpts(l)
	o.MinDirtyRatio = 0.5
	if r, _ := l.DirtyRatio(o.Now, o.UpTo, 0); r != 1 {
		t.Fatalf("dirty ratio %v before any clean, want 1", r)
	}
	if res, err := l.Clean(o); err != nil || !res.Ran {
		t.Fatalf("first clean: %+v %v", res, err)
	}
	if r, _ := l.DirtyRatio(o.Now, o.UpTo, 0); r != 0 {
		t.Fatalf("dirty ratio %v after clean, want 0", r)
	}
	if res, err := l.Clean(o); err != nil || res.Ran {
		t.Fatalf("clean with nothing dirty ran: %+v %v", res, err)
	}
	fillKeyed(t, l, 8, 3, time.Now().UnixMilli(), CodecNone) // some dirt
	o.UpTo = l.DurableOffset()
	r, _ := l.DirtyRatio(o.Now, o.UpTo, 0)
	if r <= 0 || r >= 1 {
		t.Fatalf("dirty ratio %v after appends", r)
	}
	o.MinDirtyRatio = r + 0.01
	if res, err := l.Clean(o); err != nil || res.Ran {
		t.Fatalf("clean below the ratio ran: %+v %v", res, err)
	}
}

func TestCleanCopiesTransactionalBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 300})
	defer l.Close()
	now := time.Now().UnixMilli()
	txn := kvBatch(t, now, CodecNone, kv{"k", val("txn")})
	binary.BigEndian.PutUint16(txn[offAttributes:], AttrTransactional)
	binary.BigEndian.PutUint64(txn[offProducerID:], 7)
	binary.BigEndian.PutUint32(txn[offCRC:], crc32.Checksum(txn[offAttributes:], castagnoli))
	if _, err := l.Append(txn); err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, 40, 1, now, CodecNone)
	if _, err := l.Clean(cleanOpts(l)); err != nil {
		t.Fatal(err)
	}
	got := readRecords(t, l)
	if got[0] != (rec{0, "k", "txn"}) {
		t.Fatalf("transactional record not kept: %v", got)
	}
	data, _ := l.Read(0, 1, 1, nil)
	if h, _ := ParseBatchHeader(data); !h.IsTransactional() || h.ProducerID != 7 {
		t.Fatalf("transactional batch changed: %+v", h)
	}
}

// TestCleanCrashAtEachStep kills the clean after each step of the swap and
// reopens: the log must read either the old or the cleaned data, with every
// latest value, and a later clean must finish the job.
func TestCleanCrashAtEachStep(t *testing.T) {
	for _, step := range []string{"cleaned", "checkpoint", "swap", "indexes", "renamed"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 600, IndexIntervalBytes: 100}
			l := openLog(t, dir, opts)
			fillKeyed(t, l, 120, 5, time.Now().UnixMilli(), CodecGzip)
			all := readRecords(t, l)
			end := cleanableEnd(l)
			want := expectCompacted(all, end)
			errCrash := errors.New("crash")
			cleanHook = func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			}
			_, err := l.Clean(cleanOpts(l))
			cleanHook = nil
			// Past the first rename an error fails the log (reopen recovers).
			if !errors.Is(err, errCrash) && !errors.Is(err, ErrLogFailed) {
				t.Fatalf("clean: %v, want the injected crash", err)
			}
			l.crash()
			l = openLog(t, dir, opts)
			defer l.Close()
			got := readRecords(t, l)
			latest := map[string]rec{}
			for _, r := range all {
				latest[r.key] = r
			}
			for _, w := range latest {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Fatalf("latest value %v lost after crash at %s: %v", w, step, got)
				}
			}
			if l.LogEndOffset() != all[len(all)-1].off+1 {
				t.Fatalf("log end %d after crash", l.LogEndOffset())
			}
			l.cleanedTo.Store(0) // whatever was done, clean all again
			if _, err := l.Clean(cleanOpts(l)); err != nil {
				t.Fatal(err)
			}
			sameRecs(t, "clean after crash", readRecords(t, l), want)
			if left, _ := filepath.Glob(filepath.Join(dir, "*.log.*")); len(left) > 0 {
				t.Fatalf("cleaner files left: %v", left)
			}
		})
	}
}

func TestCleanConcurrentReadsAndAppends(t *testing.T) {
	l := openLog(t, t.TempDir(), Options{SegmentBytes: 600})
	defer l.Close()
	fillKeyed(t, l, 400, 5, time.Now().UnixMilli(), CodecNone)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := l.Read(0, math.MaxInt32, l.LogEndOffset(), nil)
			if err == nil {
				err = SplitBatches(data, func(b []byte) error { _, err := ValidateBatch(b); return ignoreSpan(err) })
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	appended := make(chan error, 1)
	go func() { // appends and syncs (new segments) meanwhile
		defer close(appended)
		for i := 0; i < 50; i++ {
			if _, err := l.Append(kvBatch(t, time.Now().UnixMilli(), CodecNone, kv{"n", val("n")})); err != nil {
				appended <- err
				return
			}
			if _, err := l.Sync(); err != nil {
				appended <- err
				return
			}
		}
	}()
	if _, err := l.Clean(cleanOpts(l)); err != nil {
		t.Fatal(err)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatalf("concurrent read: %v", err)
	}
}

func ignoreSpan(err error) error {
	if errors.Is(err, ErrBatchRecordSpan) {
		return nil
	}
	return err
}

// BenchmarkClean compacts ~16 MiB of 1 KiB records over 1,000 keys in 4 MiB
// segments (fsyncs included) and reports MB/s of log compacted.
func BenchmarkClean(b *testing.B) {
	const records, keys = 16384, 1000
	value := string(make([]byte, 1000))
	var total int64
	for b.Loop() {
		b.StopTimer()
		l := openLog(b, b.TempDir(), Options{SegmentBytes: 4 << 20, Logger: discardLogger()})
		for i := 0; i < records; i += 16 {
			recs := make([]kv, 16)
			for j := range recs {
				recs[j] = kv{key: fmt.Sprintf("key-%d", (i+j)%keys), value: &value}
			}
			if _, err := l.Append(kvBatch(b, time.Now().UnixMilli(), CodecNone, recs...)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Sync(); err != nil {
			b.Fatal(err)
		}
		size := l.Size()
		b.StartTimer()
		if _, err := l.Clean(cleanOpts(l)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		total += size
		_ = l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/(1<<20)/b.Elapsed().Seconds(), "MB/s")
}

// FuzzFilterBatch feeds arbitrary bytes to the cleaner's batch filter: it
// must not panic, and what it writes must be a valid batch again (its record
// count may be below its offset span) with offsets inside the original's.
func FuzzFilterBatch(f *testing.F) {
	f.Add(kvBatch(f, 1, CodecNone, kv{"a", val("1")}, kv{"b", nil}, kv{"a", val("2")}))
	f.Add(kvBatch(f, 1, CodecGzip, kv{"a", val("1")}, kv{"a", nil}))
	f.Add(make([]byte, BatchHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		keys := map[string]int64{}
		_ = eachRecord(b, &h, func(_ []byte, r *kmsg.Record) error {
			keys[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
			return nil
		})
		o := CleanOptions{Now: time.Now(), ProducerLastOffsets: map[int64]int64{h.ProducerID: h.LastOffset()}}
		out, _, _, err := filterBatch(nil, b, &h, keys, o)
		if err != nil || len(out) == 0 {
			return
		}
		nh, err := ValidateBatch(out)
		if ignoreSpan(err) != nil || nh.BaseOffset != h.BaseOffset || nh.LastOffsetDelta != h.LastOffsetDelta || nh.RecordCount > h.RecordCount {
			t.Fatalf("filtered batch %+v from %+v: %v", nh, h, err)
		}
		// Record timestamps survive a new delete horizon.
		var before, after []int64
		_ = eachRecord(b, &h, func(_ []byte, r *kmsg.Record) error {
			before = append(before, h.BaseTimestamp+r.TimestampDelta64)
			return nil
		})
		if err := eachRecord(out, &nh, func(_ []byte, r *kmsg.Record) error {
			after = append(after, nh.BaseTimestamp+r.TimestampDelta64)
			return nil
		}); err != nil {
			t.Fatalf("filtered records do not decode: %v", err)
		}
		if h.Attributes&AttrTimestampType == 0 && nh.RecordCount == h.RecordCount && !slices.Equal(before, after) {
			t.Fatalf("timestamps %v became %v", before, after)
		}
	})
}

// TestCleanThenTruncate truncates into the compacted part: the cleaned
// offset comes down with the log end, and appends after it reopen fine.
func TestCleanThenTruncate(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 600}
	l := openLog(t, dir, opts)
	fillKeyed(t, l, 200, 7, time.Now().UnixMilli(), CodecNone)
	if _, err := l.Clean(cleanOpts(l)); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, l)
	cut := recs[3].off
	if cut >= l.CleanedOffset() {
		t.Fatalf("cut %d not below cleaned offset %d", cut, l.CleanedOffset())
	}
	if err := l.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	if l.CleanedOffset() != l.LogEndOffset() {
		t.Fatalf("cleaned offset %d, log end %d after truncate", l.CleanedOffset(), l.LogEndOffset())
	}
	fillKeyed(t, l, 12, 7, time.Now().UnixMilli(), CodecNone)
	want := readRecords(t, l)
	l.crash()
	l = openLog(t, dir, opts)
	defer l.Close()
	sameRecs(t, "after truncate and crash", readRecords(t, l), want)
}

// TestCleanCorruptCheckpoint: a damaged cleaner-offset file must not make
// recovery cut compacted segments.
func TestCleanCorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 600}
	l := openLog(t, dir, opts)
	fillKeyed(t, l, 200, 7, time.Now().UnixMilli(), CodecNone)
	if _, err := l.Clean(cleanOpts(l)); err != nil {
		t.Fatal(err)
	}
	want := readRecords(t, l)
	l.crash()
	if err := os.WriteFile(filepath.Join(dir, cleanCheckpointName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.index"))
	for _, m := range matches { // force full scans
		_ = os.Remove(m)
	}
	l = openLog(t, dir, opts)
	defer l.Close()
	sameRecs(t, "after reopen with corrupt checkpoint", readRecords(t, l), want)
}

// producerBatch is kvBatch written by an idempotent producer.
func producerBatch(tb testing.TB, ts, pid int64, epoch int16, seq int32, recs ...kv) []byte {
	b := kvBatch(tb, ts, CodecNone, recs...)
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// producerLog appends, in sealed segments: producer 7's batches at 0-1 and
// 3-4 (seq 0 and 2), producer 8's at 2, plain batches superseding all their
// keys at 5-7, a tombstone batch at 8-9 and filler.
func producerLog(tb testing.TB, dir string, opts Options) *Log {
	l := openLog(tb, dir, opts)
	ts := time.Now().UnixMilli()
	for _, b := range [][]byte{
		producerBatch(tb, ts, 7, 3, 0, kv{"p1", val("a1")}, kv{"p2", val("a2")}),
		producerBatch(tb, ts, 8, 0, 0, kv{"p3", val("b")}),
		producerBatch(tb, ts, 7, 3, 2, kv{"p1", val("c1")}, kv{"p2", val("c2")}),
		kvBatch(tb, ts, CodecNone, kv{"p1", val("d1")}, kv{"p2", val("d2")}),
		kvBatch(tb, ts, CodecNone, kv{"p3", val("e")}),
		kvBatch(tb, ts, CodecNone, kv{"t", val("x")}, kv{"u", nil}),
	} {
		if _, err := l.Append(b); err != nil {
			tb.Fatal(err)
		}
	}
	fillKeyed(tb, l, 40, 3, ts, CodecNone)
	return l
}

// checkProducerClean checks the state after cleaning producerLog with
// producer 7 active (last batch at 3-4) and 8 forgotten.
func checkProducerClean(tb testing.TB, l *Log, horizon int64) {
	tb.Helper()
	var hs []BatchHeader
	eachLogBatch(tb, l, func(_ []byte, h *BatchHeader) {
		if h.BaseOffset < 10 {
			hs = append(hs, *h)
		}
	})
	if len(hs) != 4 || hs[0].BaseOffset != 3 || hs[1].BaseOffset != 5 || hs[2].BaseOffset != 7 || hs[3].BaseOffset != 8 {
		tb.Fatalf("batches below 10: %+v, want the emptied one at 3, then 5, 7, 8", hs)
	}
	e := hs[0]
	if e.RecordCount != 0 || e.LastOffsetDelta != 1 || e.ProducerID != 7 || e.ProducerEpoch != 3 || e.BaseSequence != 2 ||
		e.BaseTimestamp != -1 || e.Size() != BatchHeaderSize || e.Attributes != 0 {
		tb.Fatalf("producer 7's last batch: %+v, want an empty header with its offsets and sequence", e)
	}
	if hz, ok := hs[3].DeleteHorizon(); !ok || hz != horizon {
		tb.Fatalf("tombstone batch horizon %d %v, want %d", hz, ok, horizon)
	}
	// A producer-state rebuild reads the header like any other.
	found := false
	if err := l.ScanBatches(0, func(h BatchHeader) error {
		found = found || (h.ProducerID == 7 && h.BaseOffset == 3 && h.BaseSequence == 2)
		return nil
	}); err != nil || !found {
		tb.Fatalf("ScanBatches: found %v, err %v", found, err)
	}
}

// An emptied batch that is its producer's last keeps its header (Kafka's
// RETAIN_EMPTY); other emptied batches go. The result survives a crash at
// every step of the swap and a full validation on open, and the empty batch
// goes once the producer has a later batch.
func TestCleanKeepsProducersLastBatch(t *testing.T) {
	for _, step := range []string{"", "cleaned", "checkpoint", "swap", "indexes", "renamed"} {
		t.Run("crash="+step, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 400}
			l := producerLog(t, dir, opts)
			o := cleanOpts(l)
			o.DeleteRetentionMs = time.Hour.Milliseconds()
			o.ProducerLastOffsets = map[int64]int64{7: 4}
			horizon := o.Now.UnixMilli() + o.DeleteRetentionMs
			errCrash := errors.New("crash")
			cleanHook = func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			}
			_, err := l.Clean(o)
			cleanHook = nil
			if step == "" && err != nil {
				t.Fatal(err)
			}
			l.crash()
			// Without index files every segment is validated from its
			// first byte, as after a crash in the middle of writing them.
			idx, _ := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
			for _, p := range idx {
				_ = os.Remove(p)
			}
			l = openLog(t, dir, opts)
			defer l.Close()
			if step != "" {
				l.cleanedTo.Store(0)
				if _, err := l.Clean(o); err != nil {
					t.Fatal(err)
				}
			}
			checkProducerClean(t, l, horizon)

			// Producer 7 wrote again later: its empty batch goes.
			l.cleanedTo.Store(0)
			o.ProducerLastOffsets = map[int64]int64{7: 1000}
			if _, err := l.Clean(o); err != nil {
				t.Fatal(err)
			}
			eachLogBatch(t, l, func(_ []byte, h *BatchHeader) {
				if h.RecordCount == 0 {
					t.Fatalf("empty batch %+v kept after its producer moved on", h)
				}
			})
		})
	}
}
