package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// CloseBatch makes the closing writes of many logs durable together: each
// log's Close flushes its data without an fsync, writes the index files of
// segments sealed since its last sync as ".tmp" files (CloseIn, Write),
// and leaves its clean-shutdown marker (and the partition layer its
// producer snapshot, Overwrite) to Commit, which makes everything durable
// with two or three syncfs(2) calls instead of several fsyncs per log:
//
//  1. syncfs: the logs' data and every ".tmp" file are durable;
//  2. if there are ".tmp" files: rename them into place; syncfs;
//  3. overwrite the markers and snapshots in place; syncfs.
//
// Markers and snapshots are written only after the data they describe is
// durable, and in place (OverwriteFile): no file is created or renamed for
// a log that had one, which is what made closing thousands of partitions
// slow (each creation scanned ext4's recently deleted inodes). A crash at
// any step leaves ".tmp" files (deleted by the next Open), markers that
// are old (naming a smaller tail: validated), torn (failing their CRC:
// validated) or new, never one naming data that is not durable. If a
// syncfs or a rename fails, no marker is written at all: the logs stay
// correct, only their next open validates them. Used at shutdown, when
// thousands of changed partitions close at once, and for the recovery
// points of idle partitions (CheckpointIn).
type CloseBatch struct {
	dir string // on the filesystem SyncFS flushes

	mu    sync.Mutex
	files []string    // final paths whose ".tmp" is written (step 2)
	late  []overwrite // written in place at step 3
}

// overwrite is a file Commit writes in place: data, or marker encoded then
// (so the index is encoded once, off the closing worker).
type overwrite struct {
	path   string
	data   []byte
	marker *cleanMarker
}

// NewCloseBatch returns a batch for logs on the filesystem holding dir.
func NewCloseBatch(dir string) *CloseBatch { return &CloseBatch{dir: dir} }

// Write writes data to path+".tmp" (no fsync); Commit renames it over path
// before the markers are written.
func (b *CloseBatch) Write(path string, data []byte) error {
	if err := os.WriteFile(path+tmpSuffix, data, 0o644); err != nil {
		_ = os.Remove(path + tmpSuffix)
		return fmt.Errorf("storage: write %s: %w", path+tmpSuffix, err)
	}
	b.mu.Lock()
	b.files = append(b.files, path)
	b.mu.Unlock()
	return nil
}

// Overwrite has Commit write data over path in place once the logs are
// durable (step 3). Only for files that carry their own checksum and
// describe data that the batch makes durable (the producer snapshot).
func (b *CloseBatch) Overwrite(path string, data []byte) {
	b.mu.Lock()
	b.late = append(b.late, overwrite{path: path, data: data})
	b.mu.Unlock()
}

func (b *CloseBatch) overwriteMarker(path string, m cleanMarker) {
	b.mu.Lock()
	b.late = append(b.late, overwrite{path: path, marker: &m})
	b.mu.Unlock()
}

// Commit makes the batch durable (see CloseBatch). It returns the first
// failure; the logs are correct either way.
func (b *CloseBatch) Commit() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.files)+len(b.late) == 0 {
		return nil
	}
	err := SyncFS(b.dir)
	if err == nil && len(b.files) > 0 {
		if err = renameAll(b.files); err == nil {
			err = SyncFS(b.dir)
		}
	}
	if err != nil {
		for _, path := range b.files {
			_ = os.Remove(path + tmpSuffix)
		}
	} else {
		if err = overwriteAll(b.late); err == nil {
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
	return inParallel(len(paths), func(i int) error {
		if err := os.Rename(paths[i]+tmpSuffix, paths[i]); err != nil {
			return fmt.Errorf("storage: rename %s: %w", paths[i]+tmpSuffix, err)
		}
		return nil
	})
}

// overwriteAll writes every file in place (no fsync) and returns the first
// failure.
func overwriteAll(files []overwrite) error {
	return inParallel(len(files), func(i int) error {
		f := files[i]
		data := f.data
		if f.marker != nil {
			data = f.marker.encode()
		}
		return OverwriteFile(f.path, data, false)
	})
}

// inParallel runs fn(0..n-1) on up to renameWorkers goroutines and returns
// the first failure.
func inParallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for range min(renameWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// CloseIn closes the log like Close, but leaves its durable writes to b:
// no fsync here; the index files of segments sealed since the last sync
// are written as ".tmp" files and the clean-shutdown marker is left to
// b.Commit.
func (l *Log) CloseIn(b *CloseBatch) error { return l.close(b) }

// persistIndexesIn writes the segment's index files into b.
func (s *segment) persistIndexesIn(b *CloseBatch) error {
	s.mu.RLock()
	idx, tidx := encodeIndex(s.idx), encodeTimeIndex(s.tidx)
	s.mu.RUnlock()
	if err := b.Write(s.path(indexSuffix), idx); err != nil {
		return err
	}
	return b.Write(s.path(timeIndexSuffix), tidx)
}

// persistIn writes into b the index files of the sealed segments not
// persisted yet and the marker for the tail active.
func (l *Log) persistIn(b *CloseBatch, sealed []*segment, active *segment) error {
	for _, s := range sealed {
		if s.persisted {
			continue
		}
		if err := s.persistIndexesIn(b); err != nil {
			// Not fatal: such a segment is validated on open.
			l.logger().Warn("storage: writing segment index failed; it will be rebuilt on open", "path", s.path(indexSuffix), "err", err)
			break
		}
	}
	b.overwriteMarker(filepath.Join(l.dir, cleanMarkerName), l.markerFor(active))
	return nil
}

// CheckpointIn is Checkpoint through b: the log's buffered batches are
// written now, the index files of segments sealed since the last sync go
// into b as ".tmp" files, and the clean-shutdown marker describing the log
// as it is now is written in place by b.Commit once the data is durable
// (the batch's syncfs calls instead of an fsync of data, directory and
// marker per log). done must be called once with Commit's result: it
// records the log as synced up to the state written, and as marked if
// nothing was appended since; an append in between leaves the new marker
// stale (it names a smaller tail: validated on open). The log's sync lock
// is held until done, so no Sync, Truncate or Close runs in between;
// appends go on. A log that is marked, closed or failed is left as it is
// (done is nil, as on error).
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
	var sealed []*segment
	for _, s := range pending {
		if !s.persisted {
			sealed = append(sealed, s)
		}
	}
	written := len(sealed)
	for i, s := range sealed {
		if err := s.persistIndexesIn(b); err != nil {
			written = i
			break
		}
	}
	b.overwriteMarker(filepath.Join(l.dir, cleanMarkerName), l.markerFor(active))
	l.pending, l.dirNeedsSync = nil, false
	l.mu.Unlock()
	return func(commitErr error) {
		defer l.syncMu.Unlock()
		l.mu.Lock()
		defer l.mu.Unlock()
		// The marker may be on disk (written, or torn by a failure
		// after it): unless it describes the log, it is stale.
		if commitErr != nil {
			// Nothing is known durable: the segments and directory
			// entries still need their fsync at the next Sync.
			l.pending = append(pending, l.pending...)
			l.dirNeedsSync = l.dirNeedsSync || dirSync
			l.staleMarker = true
			return
		}
		l.synced.Store(max(l.synced.Load(), end))
		l.MarkDurable(end)
		for _, s := range sealed[:written] {
			s.persisted = true // its index files were in b
		}
		if l.end.Load() == end && l.active == active {
			l.marked, l.staleMarker = true, false
		} else {
			l.staleMarker = true
		}
	}, nil
}
