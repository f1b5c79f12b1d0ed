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

// allocate gives the file n bytes of allocated space from offset 0 (its
// size becomes at least n).
func allocate(fd uintptr, n int64) error {
	for {
		err := syscall.Fallocate(int(fd), 0, 0, n)
		if err != syscall.EINTR {
			return err
		}
	}
}
