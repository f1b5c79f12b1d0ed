package storage

import "syscall"

// fallocKeepSize reserves n bytes of file space at off without changing the
// file size (FALLOC_FL_KEEP_SIZE).
func fallocKeepSize(fd uintptr, off, n int64) error {
	const keepSize = 0x1 // FALLOC_FL_KEEP_SIZE
	for {
		err := syscall.Fallocate(int(fd), keepSize, off, n)
		if err != syscall.EINTR {
			return err
		}
	}
}
