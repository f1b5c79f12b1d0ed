package storage

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SyncFS makes everything written to the filesystem holding dir durable
// with one syncfs(2): data, file sizes and directory entries of every file
// there, with one device cache flush instead of one per file. Linux reports
// writeback errors to syncfs since 5.8; callers that cannot rely on that
// (or get an error) fall back to fsyncing each file (SyncPoint.Complete).
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", dir, err)
	}
	defer d.Close()
	raw, err := d.SyscallConn()
	if err != nil {
		return fmt.Errorf("storage: syncfs %s: %w", dir, err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.Syncfs(int(fd))
	}); err != nil {
		return fmt.Errorf("storage: syncfs %s: %w", dir, err)
	}
	if serr != nil {
		return fmt.Errorf("storage: syncfs %s: %w", dir, serr)
	}
	return nil
}
