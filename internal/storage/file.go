package storage

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// WriteFileAtomic replaces the small file at path with data, for every
// checkpoint kept beside a log (segment indexes, the log start and cleaner
// checkpoints, the clean-shutdown marker, and the partition layer's
// partition.metadata, producers.snapshot and leader-epoch-checkpoint). The
// steps, and what a crash or an error at each leaves:
//
//  1. write data to path+".tmp" (created or truncated), fsync it, close it.
//     A crash leaves the old file and a stray ".tmp", which Open of a log
//     directory deletes; an error removes the ".tmp".
//  2. rename the ".tmp" over path. A crash before the rename reaches the
//     disk leaves the old file, after it the new one: never a torn or empty
//     file. An error removes the ".tmp" and keeps the old file.
//  3. fsync path's directory, so the rename survives a power loss. An error
//     leaves the new file in place but perhaps not durable: the write
//     failed, and the caller must not act as if it was persisted.
//
// A nil error means data is durably at path. Writers of one path must not
// run concurrently (they share the ".tmp").
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: write %s: %w", tmp, werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: rename %s: %w", tmp, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making creations, renames and removals in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: fsync dir %s: %w", dir, err)
	}
	return nil
}

// OverwriteFile writes data over the file at path in place: opened (or
// created) without truncation, written from its first byte, cut to
// len(data), fsynced if sync is set. No new inode and no rename, which on
// ext4 after much file churn cost a scan of recently deleted inodes per
// creation (the clean-shutdown marker and producer snapshot of thousands
// of partitions are rewritten at every stop). Not atomic: a crash may
// leave old and new bytes mixed, so only files that carry their own
// checksum are written this way (the marker, the producer snapshot), and
// only after what they describe is durable; a torn file reads as absent.
func OverwriteFile(path string, data []byte, sync bool) error {
	f, err := openFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", path, err)
	}
	_, werr := f.WriteAt(data, 0)
	if werr == nil {
		werr = f.Truncate(int64(len(data)))
	}
	if werr == nil && sync {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("storage: write %s: %w", path, werr)
	}
	return nil
}

// ReadFile returns the contents of the small file at path, like
// os.ReadFile, in fewer system calls: open, read until end of file, close,
// without the descriptor bookkeeping of an *os.File (which adds an fstat, an
// fcntl and a second fstat). Opening a partition reads up to five such files;
// with 100,000 partitions each opened for its first append, those calls
// were a third of the broker's CPU (bench/RESULTS.md §18). A missing file
// reports an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadFile(path string) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// ignoringEINTR retries f while it fails with EINTR.
func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// openFile is os.OpenFile in one system call: the *os.File comes from
// os.NewFile, which skips the poller registration and the fcntl calls
// os.OpenFile makes for every file (regular files are never pollable).
// Segment files are opened this way at every first use and every reopen
// of a partition, markers and snapshots at every close.
func openFile(path string, flag int, perm uint32) (*os.File, error) {
	fd, err := ignoringEINTR(func() (int, error) { return syscall.Open(path, flag|syscall.O_CLOEXEC, perm) })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
