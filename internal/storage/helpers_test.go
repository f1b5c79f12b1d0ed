package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch: one record per timestamp.
type batchSpec struct {
	ts            []int64
	codec         int8
	xerial        bool // snappy with the Java client's framing
	logAppendTime bool
	valueSize     int
}

// makeBatch builds a valid v2 batch by hand: kmsg encodes the records and the
// header, the CRC is computed here.
func makeBatch(tb testing.TB, spec batchSpec) []byte {
	tb.Helper()
	first, maxTS := spec.ts[0], spec.ts[0]
	for _, ts := range spec.ts {
		maxTS = max(maxTS, ts)
	}
	var recs []byte
	for i, ts := range spec.ts {
		val := bytes.Repeat([]byte{byte('a' + i%26)}, spec.valueSize)
		r := kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Key: []byte{byte(i)}, Value: val}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	recs = compress(tb, spec.codec, spec.xerial, recs)
	attrs := int16(spec.codec)
	if spec.logAppendTime {
		attrs |= AttrTimestampType
	}
	b := kmsg.RecordBatch{
		Length: int32(BatchHeaderSize - batchLengthOverhead + len(recs)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: attrs, LastOffsetDelta: int32(len(spec.ts) - 1), FirstTimestamp: first, MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(spec.ts)), Records: recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	if _, err := ValidateBatch(out); err != nil {
		tb.Fatalf("test batch invalid: %v", err)
	}
	return out
}

func compress(tb testing.TB, codec int8, framed bool, in []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	switch codec {
	case CodecNone:
		return in
	case CodecGzip:
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(in)
		_ = w.Close()
	case CodecSnappy:
		if framed {
			return xerial.Encode(nil, in)
		}
		return s2.EncodeSnappy(nil, in)
	case CodecLZ4:
		w := lz4.NewWriter(&buf)
		_, _ = w.Write(in)
		_ = w.Close()
	case CodecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			tb.Fatal(err)
		}
		return enc.EncodeAll(in, nil)
	default:
		tb.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// simpleBatch builds an uncompressed batch of n records with timestamps
// ts, ts+1, ...
func simpleBatch(tb testing.TB, n int, ts int64, valueSize int) []byte {
	tss := make([]int64, n)
	for i := range tss {
		tss[i] = ts + int64(i)
	}
	return makeBatch(tb, batchSpec{ts: tss, valueSize: valueSize})
}

// tbWriter sends log output to the test log, so failures show recovery
// decisions.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func openLog(tb testing.TB, dir string, opts Options) *Log {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tbWriter{tb}, nil))
	}
	l, err := Open(dir, opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return l
}

// crash drops the log the way kill -9 would: file descriptors go away, nothing
// is synced, no index or marker is written.
func (l *Log) crash() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The write buffer reaches the page cache when the committer syncs the
	// log; these tests model a kill after that (a kill before it loses
	// only batches that were never reported durable).
	_ = l.flushLocked()
	l.closed.Store(true)
	for _, s := range *l.segs.Load() {
		_ = s.f.Close()
	}
}

// reopenChecked kills (crash) or closes l, opens the log in dir again and
// checks that it holds exactly want.
func reopenChecked(tb testing.TB, l *Log, dir string, opts Options, want []appended, crash bool) *Log {
	tb.Helper()
	if crash {
		l.crash()
	} else if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	l = openLog(tb, dir, opts)
	checkLog(tb, l, want)
	return l
}

// appended is what the test expects at an offset range: the batch bytes as
// stored (base offset filled in).
type appended struct {
	base, next int64
	data       []byte
}

func appendAll(tb testing.TB, l *Log, batches [][]byte) []appended {
	tb.Helper()
	var out []appended
	for _, b := range batches {
		base, err := l.Append(b)
		if err != nil {
			tb.Fatalf("append: %v", err)
		}
		h, _ := ParseBatchHeader(b)
		if h.BaseOffset != base {
			tb.Fatalf("append did not write base offset: header %d, returned %d", h.BaseOffset, base)
		}
		out = append(out, appended{base: base, next: h.NextOffset(), data: bytes.Clone(b)})
	}
	return out
}

// checkLog verifies that the log holds exactly want, by reading everything in
// one go and batch by batch from every offset.
func checkLog(tb testing.TB, l *Log, want []appended) {
	tb.Helper()
	start := int64(0)
	if len(want) > 0 {
		start = want[0].base
	}
	end := start
	if len(want) > 0 {
		end = want[len(want)-1].next
	}
	if got := l.LogEndOffset(); got != end {
		tb.Fatalf("log end offset %d, want %d", got, end)
	}
	var all []byte
	for _, a := range want {
		all = append(all, a.data...)
	}
	got, err := l.Read(start, 1<<30, end, nil)
	if err != nil {
		tb.Fatalf("read all: %v", err)
	}
	if !bytes.Equal(got, all) {
		tb.Fatalf("read all: got %d bytes, want %d (or content differs)", len(got), len(all))
	}
	for _, a := range want {
		for off := a.base; off < a.next; off++ {
			got, err := l.Read(off, 1, end, nil)
			if err != nil {
				tb.Fatalf("read %d: %v", off, err)
			}
			if !bytes.Equal(got, a.data) {
				tb.Fatalf("read %d: got %d bytes, want the batch at %d (%d bytes)", off, len(got), a.base, len(a.data))
			}
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
