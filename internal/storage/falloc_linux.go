package storage

import "syscall"

// fallocKeepSize reserves n bytes of file space at off without changing the
// file size (FALLOC_FL_KEEP_SIZE).
func fallocKeepSize(fd uintptr, off, n int64) error {
	const keepSize = 0x1 // FALLOC_FL_KEEP_SIZE
	return fallocate(fd, keepSize, off, n)
}

// allocate gives the file n bytes of allocated space from offset 0 (its
// size becomes at least n).
func allocate(fd uintptr, n int64) error { return fallocate(fd, 0, 0, n) }

func fallocate(fd uintptr, mode uint32, off, n int64) error {
	_, err := ignoringEINTR(func() (int, error) { return 0, syscall.Fallocate(int(fd), mode, off, n) })
	return err
}
