package storage

import "golang.org/x/sys/unix"

func fadviseDontNeed(fd uintptr, off, n int64) error {
	return unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
}

func startWriteback(fd uintptr, off, n int64) error {
	return unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
