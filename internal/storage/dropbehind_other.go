//go:build !linux

package storage

func fadviseDontNeed(fd uintptr, off, n int64) error { return nil }

func startWriteback(fd uintptr, off, n int64) error { return nil }
