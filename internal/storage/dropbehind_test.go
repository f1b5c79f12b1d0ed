//go:build linux

package storage

import (
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident reports which of f's pages are in the page cache (mincore).
func resident(t *testing.T, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Skipf("mincore: %v", errno)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// TestDropBehind: once fsynced, data more than DropBehind behind the end of
// its segment leaves the page cache and the last DropBehind stays; reads of
// dropped data still return it (from the disk). Without the option nothing
// is dropped.
func TestDropBehind(t *testing.T) {
	for _, keep := range []int64{0, 2 << 20} {
		dir := t.TempDir()
		l := openLog(t, dir, Options{DropBehind: keep})
		var want []appended
		for range 4 {
			var batches [][]byte
			for range 64 {
				batches = append(batches, simpleBatch(t, 4, 1000, 8000)) // ~32 KiB each
			}
			want = append(want, appendAll(t, l, batches)...)
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		path := l.active.f.Name()
		size := l.active.size.Load()
		res := resident(t, path)
		page := int64(os.Getpagesize())
		cut := (size - keep) / page // pages before it may be dropped
		var droppedBefore, keptAfter, tail int
		for i, r := range res {
			switch {
			case int64(i) < cut-1 && !r:
				droppedBefore++
			case int64(i) >= cut+1:
				tail++
				if r {
					keptAfter++
				}
			}
		}
		if keep == 0 {
			if droppedBefore > len(res)/10 {
				t.Fatalf("without DropBehind %d of %d pages left the cache", droppedBefore, len(res))
			}
		} else {
			if droppedBefore < int(cut)*9/10 {
				t.Fatalf("DropBehind %d: only %d of the first %d pages dropped (file %d bytes)", keep, droppedBefore, cut, size)
			}
			if keptAfter < tail*9/10 {
				t.Fatalf("DropBehind %d: only %d of the last %d pages kept", keep, keptAfter, tail)
			}
		}
		checkLog(t, l, want) // dropped data reads back intact
	}
}
