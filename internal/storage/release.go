package storage

import (
	"fmt"
	"os"
)

// Descriptor release: a log can give up its open segment files while
// keeping everything else in memory (segments, indexes, offsets, the
// recovery state), so that a broker with more partitions in use than file
// descriptors closes and reopens only descriptors, not whole logs. A full
// close writes the recovery point and a reopen validates and reloads;
// releasing writes nothing but the write buffer (to the page cache) and
// reopening is one open(2) per segment.
//
// The caller (the partition layer) guarantees that no other call on the
// log runs while it releases or reopens, and that every call needing the
// files comes after ReopenFiles. Calls that need no file work on a
// released log: CheckpointIn (its data is made durable by syncfs), the
// offsets, Marked, Segments. The log's own paths that would write or
// fsync a file reopen it first (ensureFilesLocked), so a missed reopen
// costs an open, never a failed log.

// ReleaseFiles closes the log's segment files, keeping its state. It
// writes the write buffer to the tail first (no fsync: the files' data is
// made durable later by a Sync or syncfs, which reopens what it needs, as
// for any log). It does nothing and reports false if the log is closed,
// failed or released already, or a FileRange (a fetch response being
// sent) still holds one of its files.
func (l *Log) ReleaseFiles() bool {
	defer l.lockAll()()
	// Data not yet durable is the committer's to take (Unsynced may
	// read it from the file); release only when it has.
	if l.closed.Load() || l.failed != nil || l.released.Load() || l.durable.Load() < l.end.Load() {
		return false
	}
	segs := *l.segs.Load()
	for _, s := range segs {
		if s.refs.n.Load() != 1 {
			return false
		}
	}
	if err := l.flushLocked(); err != nil {
		return false
	}
	for _, s := range segs {
		_ = s.f.Close()
		s.f = nil
	}
	l.released.Store(true)
	return true
}

// Released reports whether the log's files are released (ReleaseFiles).
func (l *Log) Released() bool { return l.released.Load() }

// ReopenFiles reopens the files of a released log (nothing otherwise).
func (l *Log) ReopenFiles() error {
	if !l.released.Load() {
		return nil
	}
	defer l.lockAll()()
	return l.reopenLocked()
}

// ensureFilesLocked reopens a released log's files before a write or
// fsync. Caller holds mu (and, by the caller's guarantee above, no reader
// runs).
func (l *Log) ensureFilesLocked() error {
	if !l.released.Load() {
		return nil
	}
	return l.reopenLocked()
}

// reopenLocked opens every segment's file again. On failure (out of
// descriptors) the files opened so far are closed again and the log stays
// released: the caller reports the error and a later call retries. Caller
// holds mu.
func (l *Log) reopenLocked() error {
	if !l.released.Load() {
		return nil
	}
	segs := *l.segs.Load()
	for i, s := range segs {
		f, err := openFile(s.path(logSuffix), os.O_RDWR, 0)
		if err != nil {
			for _, o := range segs[:i] {
				_ = o.f.Close()
				o.f = nil
			}
			return fmt.Errorf("storage: reopen %s: %w", s.path(logSuffix), err)
		}
		s.f = f
	}
	l.released.Store(false)
	return nil
}

// lockAll takes syncMu, readMu (exclusively) and mu, in the lock order, and
// returns the function that releases them: nothing else runs on the log
// meanwhile.
func (l *Log) lockAll() (unlock func()) {
	l.syncMu.Lock()
	l.readMu.Lock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		l.readMu.Unlock()
		l.syncMu.Unlock()
	}
}
