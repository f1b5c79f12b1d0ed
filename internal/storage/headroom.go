package storage

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

// Headroom is disk space set aside in one ballast file for the first bytes
// of every segment (below reserveAfter): they wait in the write buffer
// without a reservation in their own file, and the ballast stands for them
// instead. A buffered batch must never fail its later write for want of
// space (wbuf.go); with one reservation (fallocate) per segment, the first
// append to each of 100,000 new partitions was a journaled allocation that
// stalled the produce path (p99 763 ms, bench/RESULTS.md §18), and writing
// those appends through instead cost two system calls each (write, and a
// read back for the WAL round).
//
// The bytes held against the ballast never exceed its size: beyond that,
// logs reserve in their own files as before. Should a write of held bytes
// find the disk full, the ballast shrinks by as much (the file is cut) and
// the write is tried again. A nil *Headroom holds nothing.
type Headroom struct {
	path string
	lg   *slog.Logger
	mu   sync.Mutex // serializes cuts of the file
	size atomic.Int64
	held atomic.Int64
}

// HeadroomName is the ballast file in the data directory.
const HeadroomName = "chronik.headroom"

// OpenHeadroom makes the ballast file at path hold up to size bytes, and at
// most 1/64 of the free space, so a nearly full disk is not filled by it.
// It never fails: a filesystem without fallocate, or a full one, leaves a
// smaller (perhaps empty) headroom, and logs then reserve in their own files.
func OpenHeadroom(path string, size int64, lg *slog.Logger) *Headroom {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	h := &Headroom{path: path, lg: lg}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err == nil {
		size = min(size, int64(st.Bavail)*int64(st.Bsize)/64)
	}
	size &^= 4<<10 - 1
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		lg.Warn("storage: no disk headroom file; every segment reserves its own space", "path", path, "err", err)
		return h
	}
	defer f.Close()
	if size > 0 {
		err = allocate(f.Fd(), size)
	}
	if err == nil {
		// A file left larger by an earlier setting gives the rest back.
		err = f.Truncate(size)
	}
	if err != nil {
		lg.Warn("storage: cannot set aside disk headroom; every segment reserves its own space", "path", path, "bytes", size, "err", err)
		_ = f.Truncate(0)
		return h
	}
	h.size.Store(size)
	return h
}

// Size is the bytes the ballast holds now.
func (h *Headroom) Size() int64 {
	if h == nil {
		return 0
	}
	return h.size.Load()
}

// Held is the buffered bytes standing on the ballast now.
func (h *Headroom) Held() int64 {
	if h == nil {
		return 0
	}
	return h.held.Load()
}

// take holds n bytes against the ballast, if it has room for them.
func (h *Headroom) take(n int64) bool {
	if h == nil {
		return false
	}
	for {
		held := h.held.Load()
		if held+n > h.size.Load() {
			return false
		}
		if h.held.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

// give returns n held bytes (written, or dropped with a failed log).
func (h *Headroom) give(n int64) {
	if h != nil && n != 0 {
		h.held.Add(-n)
	}
}

// spend frees n bytes of the ballast for a write of held bytes that found
// the disk full, and stops holding them; false if there was nothing to free.
func (h *Headroom) spend(n int64) bool {
	if h == nil || n <= 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	size := h.size.Load()
	if size == 0 {
		return false
	}
	to := max(0, size-n) &^ (4<<10 - 1)
	if err := os.Truncate(h.path, to); err != nil {
		h.lg.Error("storage: disk full and the headroom file cannot be cut", "path", h.path, "err", err)
		return false
	}
	h.size.Store(to)
	h.held.Add(-n)
	h.lg.Warn("storage: disk full; writing buffered data into the space set aside for it",
		"bytes", n, "headroom_left", to, "path", h.path)
	return true
}
