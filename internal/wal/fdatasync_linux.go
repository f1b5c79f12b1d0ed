package wal

import (
	"os"
	"syscall"
)

// fdatasync flushes the file's data and the metadata needed to read it (its
// size), skipping timestamps: the cheapest call that still makes an append
// durable.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
