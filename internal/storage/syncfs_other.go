//go:build !linux

package storage

import "errors"

// SyncFS is unsupported here: callers fsync file by file.
func SyncFS(dir string) error { return errors.ErrUnsupported }
