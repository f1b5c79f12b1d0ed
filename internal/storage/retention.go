package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	startCheckpointName = "log-start-offset"
	startMagic          = "CHRNKLS1"
	startCheckpointSize = 8 + 8 + 4
)

// SegmentInfo describes one segment for retention decisions.
type SegmentInfo struct {
	Base         int64 // first offset
	Next         int64 // offset after the last batch
	Size         int64 // bytes of the .log file
	MaxTimestamp int64 // largest batch max timestamp, -1 if none
	// ModTimeMs is the .log file's modification time (Unix ms), filled in
	// only when no batch carries a timestamp (MaxTimestamp -1): Kafka's
	// LogSegment.largestTimestamp falls back to it. 0 if unknown.
	ModTimeMs int64
	Sealed    bool // not the active segment: it will not change
}

// Segments returns the segments in offset order; the last is the active one.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	_ = l.flushLocked() // sizes count every appended batch; a failure fails the log
	segs := *l.segs.Load()
	out := make([]SegmentInfo, 0, len(segs))
	for _, s := range segs {
		ts := s.maxTS.Load()
		if ts == noTimestamp {
			ts = -1
		}
		out = append(out, SegmentInfo{Base: s.base, Next: s.next, Size: s.size.Load(), MaxTimestamp: ts, Sealed: s != l.active})
	}
	l.mu.Unlock()
	for i := range out {
		if out[i].MaxTimestamp < 0 && out[i].Size > 0 {
			// By path, without the lock: a segment deleted meanwhile
			// stays at 0, and retention of it is moot.
			if fi, err := os.Stat(filepath.Join(l.dir, segmentName(out[i].Base, logSuffix))); err == nil {
				out[i].ModTimeMs = fi.ModTime().UnixMilli()
			}
		}
	}
	return out
}

// RollActive seals the active segment and starts an empty one at the log
// end, so that retention can delete the old active segment like any sealed
// one (Kafka rolls an expired active segment before deleting it). It rolls
// only if the active segment holds data, the log end is still end (the
// caller's decision was about exactly that data: a batch appended since
// would land in the rolled segment and be deleted with it) and everything
// below end is durable (the high watermark, so no unacknowledged data is
// deleted). It reports whether it rolled.
func (l *Log) RollActive(end int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return false, err
	}
	size := l.active.size.Load() + int64(len(l.wbuf))
	if size == 0 || l.end.Load() != end || l.durable.Load() < end {
		return false, nil
	}
	if err := l.rollLocked(); err != nil {
		return false, err
	}
	return true, nil
}

// SetLogStartOffset moves the log start offset forward to offset (DeleteRecords,
// retention) and deletes the segments that lie wholly below it. A segment
// only partly below keeps its files, but reads below the start are refused.
// offset must not exceed the durable offset (the high watermark); an offset at
// or below the current start moves nothing but still reclaims segments that
// could not be deleted before. The new start is persisted (fsynced) before
// any file is removed, so it survives a crash and a restart.
//
// Only sealed segments are deleted, never the active one (RollActive seals
// it first when retention deletes it), so the WAL replay, which skips what
// lies below the log end, is unaffected. A sealed segment not
// yet fsynced (its data durable only in the group committer's WAL) is deleted
// too and dropped from the pending list, so no later Sync touches its closed
// file. It returns the number of segments and log bytes deleted.
func (l *Log) SetLogStartOffset(offset int64) (segments int, bytes int64, err error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	err = l.usableLocked()
	l.mu.Unlock()
	if err != nil {
		return 0, 0, err
	}
	if hwm := l.durable.Load(); offset > hwm || offset < 0 {
		return 0, 0, fmt.Errorf("%w: log start %d not in [0, %d]", ErrOffsetOutOfRange, offset, hwm)
	}
	if offset > l.start.Load() {
		if err := l.writeStartCheckpoint(offset); err != nil {
			return 0, 0, err
		}
		l.start.Store(offset)
	}
	victims := l.detachBelow(l.start.Load())
	if len(victims) == 0 {
		return 0, 0, nil
	}
	for _, s := range victims {
		bytes += s.size.Load()
		if err := s.remove(); err != nil {
			// The segment is already out of the log; its leftovers are
			// removed as strays (or as below the start) by the next Open.
			l.logger().Warn("storage: removing deleted segment failed", "path", s.path(logSuffix), "err", err)
		}
	}
	if err := SyncDir(l.dir); err != nil {
		l.logger().Warn("storage: fsync dir after segment deletion failed", "err", err)
	}
	l.logger().Debug("storage: deleted segments below log start", "log_start", l.start.Load(), "segments", len(victims), "bytes", bytes)
	return len(victims), bytes, nil
}

// detachBelow takes the leading segments wholly below start out of the
// segment snapshot and returns them. It holds readMu exclusively while it
// swaps the snapshot, so once it returns no reader uses them any more and
// their files may be closed. Called with syncMu held, so no Sync is between
// taking the pending list and fsyncing it.
func (l *Log) detachBelow(start int64) []*segment {
	l.readMu.Lock()
	defer l.readMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := *l.segs.Load()
	n := 0
	for n < len(segs)-1 && segs[n] != l.active && segs[n].next <= start {
		n++
	}
	if n == 0 {
		return nil
	}
	victims := segs[:n]
	l.pending = slices.DeleteFunc(l.pending, func(p *segment) bool { return slices.Contains(victims, p) })
	kept := slices.Clone(segs[n:])
	l.segs.Store(&kept)
	return victims
}

func encodeStartCheckpoint(offset int64) []byte {
	b := make([]byte, 0, startCheckpointSize)
	b = append(b, startMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeStartCheckpoint checks what it reads: a torn or foreign file is
// rejected rather than trusted.
func decodeStartCheckpoint(b []byte) (int64, bool) {
	if len(b) != startCheckpointSize || string(b[:8]) != startMagic ||
		crc32.Checksum(b[:startCheckpointSize-4], castagnoli) != binary.BigEndian.Uint32(b[startCheckpointSize-4:]) {
		return 0, false
	}
	off := int64(binary.BigEndian.Uint64(b[8:]))
	return off, off >= 0
}

func (l *Log) writeStartCheckpoint(offset int64) error {
	return WriteFileAtomic(filepath.Join(l.dir, startCheckpointName), encodeStartCheckpoint(offset))
}

// readStartCheckpoint returns the persisted log start offset, or -1 if there
// is none or it is unreadable (the segments' first base then stands).
func (l *Log) readStartCheckpoint() int64 {
	p := filepath.Join(l.dir, startCheckpointName)
	b, err := ReadFile(p)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger().Warn("storage: cannot read log start checkpoint", "path", p, "err", err)
		}
		return -1
	}
	off, ok := decodeStartCheckpoint(b)
	if !ok {
		l.logger().Warn("storage: ignoring corrupt log start checkpoint", "path", p)
		return -1
	}
	return off
}

// loadStart sets the log start after recovery: the checkpointed start if it
// is above the first segment's base, and removes sealed segments a crash
// left behind wholly below it.
func (l *Log) loadStart() {
	segs := *l.segs.Load()
	start := segs[0].base
	if l.opts.Created {
		l.start.Store(start) // no checkpoint: nothing was ever deleted
		return
	}
	if ck := l.readStartCheckpoint(); ck > start {
		start = ck
	}
	l.start.Store(start)
	n := 0
	for n < len(segs)-1 && segs[n].next <= start {
		n++
	}
	if n == 0 {
		return
	}
	for _, s := range segs[:n] {
		if err := s.remove(); err != nil {
			l.logger().Warn("storage: cannot remove segment below log start", "path", s.path(logSuffix), "err", err)
		}
	}
	kept := slices.Clone(segs[n:])
	l.segs.Store(&kept)
	if err := SyncDir(l.dir); err != nil {
		l.logger().Warn("storage: fsync dir after segment deletion failed", "err", err)
	}
}

// SetSegmentLimits changes when the active segment rolls (dynamic topic
// configs segment.bytes and segment.ms); the next append applies them.
// Values outside what Options.Validate accepts are ignored.
func (l *Log) SetSegmentLimits(segmentBytes int64, age time.Duration) {
	o := Options{SegmentBytes: segmentBytes, SegmentAge: age}
	if o.Validate() != nil || segmentBytes == 0 || age == 0 {
		return
	}
	l.mu.Lock()
	l.opts.SegmentBytes, l.opts.SegmentAge = segmentBytes, age
	l.mu.Unlock()
}
