package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// CloseBatch makes the closing writes of many logs durable together: each
// log's Close writes its index files, clean-shutdown marker (and the
// partition layer its producer snapshot) as ".tmp" files without an fsync
// (CloseIn, Write), and Commit then makes everything durable with three
// syncfs(2) calls instead of about nine fsyncs per log:
//
//  1. syncfs: the logs' data and every ".tmp" file are durable;
//  2. rename the phase-0 files (indexes, snapshots) into place; syncfs;
//  3. rename the markers into place; syncfs.
//
// A crash at any step leaves ".tmp" files (deleted by the next Open) and
// no marker that names data or index files that are not durable, so the
// log is validated as after a kill. If a syncfs or a rename fails, no
// marker is renamed at all: the logs stay correct, only their next open
// validates them. Used at shutdown, when thousands of changed partitions
// close at once.
type CloseBatch struct {
	dir string // on the filesystem SyncFS flushes

	mu    sync.Mutex
	files [2][]string // final paths whose ".tmp" is written, by phase
}

// NewCloseBatch returns a batch for logs on the filesystem holding dir.
func NewCloseBatch(dir string) *CloseBatch { return &CloseBatch{dir: dir} }

// Write writes data to path+".tmp" (no fsync); Commit renames it over path
// in phase 0 (before the markers).
func (b *CloseBatch) Write(path string, data []byte) error { return b.write(path, data, 0) }

func (b *CloseBatch) write(path string, data []byte, phase int) error {
	if err := os.WriteFile(path+tmpSuffix, data, 0o644); err != nil {
		_ = os.Remove(path + tmpSuffix)
		return fmt.Errorf("storage: write %s: %w", path+tmpSuffix, err)
	}
	b.mu.Lock()
	b.files[phase] = append(b.files[phase], path)
	b.mu.Unlock()
	return nil
}

// Commit makes the batch durable (see CloseBatch). It returns the first
// failure; the logs are correct either way.
func (b *CloseBatch) Commit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.files[0])+len(b.files[1]) == 0 {
		return nil
	}
	err := SyncFS(b.dir)
	for phase := range 2 {
		if err == nil {
			err = renameAll(b.files[phase])
		} else {
			for _, path := range b.files[phase] {
				_ = os.Remove(path + tmpSuffix)
			}
		}
		if err == nil {
			err = SyncFS(b.dir)
		}
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return nil // no syncfs here: the logs are just validated next time
	}
	return err
}

// renameWorkers: renames in different directories run in parallel.
const renameWorkers = 16

// renameAll renames every path's ".tmp" over it and returns the first
// failure.
func renameAll(paths []string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan string)
	for range min(renameWorkers, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range next {
				if err := os.Rename(path+tmpSuffix, path); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("storage: rename %s: %w", path+tmpSuffix, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	return first
}

// CloseIn closes the log like Close, but leaves its durable writes to b:
// no fsync here, its index files and clean-shutdown marker are written as
// ".tmp" files that b.Commit makes durable and renames in place.
func (l *Log) CloseIn(b *CloseBatch) error { return l.close(b) }

// persistIndexesIn writes the segment's index files into b (phase 0).
func (s *segment) persistIndexesIn(b *CloseBatch) error {
	s.mu.RLock()
	idx, tidx := encodeIndex(s.idx), encodeTimeIndex(s.tidx)
	s.mu.RUnlock()
	if err := b.write(s.path(indexSuffix), idx, 0); err != nil {
		return err
	}
	return b.write(s.path(timeIndexSuffix), tidx, 0)
}

// writeCleanMarkerIn writes the marker into b (phase 1: after the index
// files it names are in place).
func (l *Log) writeCleanMarkerIn(b *CloseBatch, active *segment) error {
	m := cleanMarker{base: active.base, size: active.size.Load(), end: l.end.Load()}
	return b.write(filepath.Join(l.dir, cleanMarkerName), m.encode(), 1)
}

// persistIn writes the index files of segs not persisted yet and then the
// marker into b; without every index file there is no marker.
func (l *Log) persistIn(b *CloseBatch, segs []*segment) error {
	for _, s := range segs {
		if s.persisted {
			continue
		}
		if err := s.persistIndexesIn(b); err != nil {
			l.logger.Warn("storage: writing segment index failed; it will be rebuilt on open", "path", s.path(indexSuffix), "err", err)
			return nil
		}
	}
	return l.writeCleanMarkerIn(b, segs[len(segs)-1])
}

// CheckpointIn is Checkpoint through b: the log's buffered batches are
// written now, its index files and clean-shutdown marker go into b as
// ".tmp" files describing the log as it is now, and b.Commit makes the data
// and those files durable with the batch's syncfs calls instead of about
// seven fsyncs (data, directory, two index files and the marker, each with
// its directory). done must be called once with Commit's result: it records
// the log as synced up to the state written, and as marked if nothing was
// appended since; an append in between leaves the new marker on disk
// stale (it names a smaller tail: validated on open) until the next sync
// removes it. The log's sync lock is held until done, so no Sync, Truncate
// or Close runs in between; appends go on. A log that is marked, closed or
// failed is left as it is (done is nil, as on error).
func (l *Log) CheckpointIn(b *CloseBatch) (done func(commitErr error), err error) {
	l.syncMu.Lock()
	l.mu.Lock()
	if l.marked || l.closed.Load() || l.failed != nil {
		l.mu.Unlock()
		l.syncMu.Unlock()
		return nil, nil
	}
	if err := l.flushLocked(); err != nil {
		l.mu.Unlock()
		l.syncMu.Unlock()
		return nil, err
	}
	active, pending, dirSync := l.active, l.pending, l.dirNeedsSync
	end := l.end.Load()
	var segs []*segment
	for _, s := range pending {
		if !s.persisted {
			segs = append(segs, s)
		}
	}
	segs = append(segs, active)
	written, werr := l.persistCheckpointIn(b, segs, active)
	l.pending, l.dirNeedsSync = nil, false
	l.mu.Unlock()
	return func(commitErr error) {
		defer l.syncMu.Unlock()
		l.mu.Lock()
		defer l.mu.Unlock()
		if commitErr != nil {
			// Nothing is known durable: the segments and directory
			// entries still need their fsync at the next Sync.
			l.pending = append(pending, l.pending...)
			l.dirNeedsSync = l.dirNeedsSync || dirSync
			// The marker may have been renamed into place before the
			// failure: treat it as stale (removed before the next
			// sync, roll or truncate).
			l.staleMarker = l.staleMarker || werr == nil
			return
		}
		l.synced.Store(max(l.synced.Load(), end))
		l.MarkDurable(end)
		for _, s := range segs[:written] {
			if s != active {
				s.persisted = true // its index files were in b
			}
		}
		if werr != nil {
			return // no marker was written
		}
		if l.end.Load() == end && l.active == active {
			active.persisted = true
			l.marked, l.staleMarker = true, false
		} else {
			l.staleMarker = true
		}
	}, nil
}

// persistCheckpointIn writes segs' index files and the marker for the tail
// active into b. Caller holds mu (so the index and marker describe the log
// as it is).
// It returns how many of segs had their index files written.
func (l *Log) persistCheckpointIn(b *CloseBatch, segs []*segment, active *segment) (int, error) {
	for i, s := range segs {
		if err := s.persistIndexesIn(b); err != nil {
			return i, err
		}
	}
	return len(segs), l.writeCleanMarkerIn(b, active)
}
