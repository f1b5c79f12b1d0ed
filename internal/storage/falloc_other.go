//go:build !linux

package storage

import "errors"

// fallocKeepSize: no KEEP_SIZE reservation outside Linux, so the log writes
// every batch through (see wbuf.go) and a full disk fails the write itself.
func fallocKeepSize(fd uintptr, off, n int64) error { return errors.ErrUnsupported }

// allocate: no fallocate outside Linux, so no headroom either.
func allocate(fd uintptr, n int64) error { return errors.ErrUnsupported }
