package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDiskFullAppend fills a 2 MiB tmpfs with a log, with file space
// reserved up front (Linux) and without (other systems, or a filesystem
// without fallocate): either way a full disk fails the append that does not
// fit with ErrDiskFull, nothing acknowledged is damaged, the log stays
// usable, and appends resume at the next offset once space returns.
func TestDiskFullAppend(t *testing.T) {
	for _, reserve := range []bool{true, false} {
		name := map[bool]string{true: "reserved", false: "unreserved"}[reserve]
		t.Run(name, func(t *testing.T) {
			if !reserve {
				reserveSpace = func(uintptr, int64, int64) error { return errors.ErrUnsupported }
				t.Cleanup(func() { reserveSpace = fallocKeepSize })
			}
			mnt := t.TempDir()
			if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
				t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(mnt, 0) })
			filler := filepath.Join(mnt, "filler")
			if err := os.WriteFile(filler, bytes.Repeat([]byte{1}, 512<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, filepath.Join(mnt, "p0"), Options{SegmentBytes: 64 << 20})
			defer l.Close()
			var want []appended
			var full error
			for i := 0; full == nil; i++ {
				if i == 1000 {
					t.Fatal("the disk never filled")
				}
				b := simpleBatch(t, 4, 1000, 1000) // ~4 KiB: buffered when reserving
				if i%3 == 0 {
					b = simpleBatch(t, 10, 1000, 10000) // ~100 KiB: written through
				}
				base, err := l.Append(b)
				if err != nil {
					full = err
					break
				}
				h, _ := ParseBatchHeader(b)
				want = append(want, appended{base: base, next: h.NextOffset(), data: bytes.Clone(b)})
				if i%8 == 7 {
					if _, err := l.Sync(); err != nil {
						full = err
					}
				}
			}
			if !errors.Is(full, ErrDiskFull) {
				t.Fatalf("append on a full disk: %v, want ErrDiskFull", full)
			}
			if _, err := l.Sync(); err != nil && !errors.Is(err, ErrDiskFull) {
				t.Fatalf("sync after a full disk: %v", err)
			}
			checkLog(t, l, want)
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			more := appendAll(t, l, [][]byte{simpleBatch(t, 10, 1000, 10000), simpleBatch(t, 4, 1000, 1000)})
			if more[0].base != want[len(want)-1].next {
				t.Fatalf("after space returned: base %d, want %d", more[0].base, want[len(want)-1].next)
			}
			if _, err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			checkLog(t, l, append(want, more...))
		})
	}
}

// TestDiskFullHeadroom: batches buffered against the headroom file (a
// segment's first bytes, no reservation of their own) are written when the
// disk has filled meanwhile: the write finds no space, the headroom gives
// its space up, and the write succeeds. Every acknowledged batch survives a
// close and a reopen, the log is not failed, and appends once nothing is
// left fail cleanly with ErrDiskFull.
func TestDiskFullHeadroom(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	h := OpenHeadroom(filepath.Join(mnt, HeadroomName), 1<<20, nil)
	if h.Size() < 16<<10 || h.Size() > 2<<20/64 {
		t.Fatalf("headroom of %d bytes on a 2 MiB disk, want 16 KiB to 1/64 of it", h.Size())
	}
	initial := h.Size()
	dir := filepath.Join(mnt, "p0")
	l := openLog(t, dir, Options{SegmentBytes: 64 << 20, Headroom: h})
	// Fill what is left.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for chunk := bytes.Repeat([]byte{1}, 4<<10); ; {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()

	var want []appended
	var full error
	for i := 0; full == nil; i++ {
		if i == 10000 {
			t.Fatal("appends never failed")
		}
		b := simpleBatch(t, 2, 1000, 100)
		base, err := l.Append(b)
		if err != nil {
			full = err
			break
		}
		hd, _ := ParseBatchHeader(b)
		want = append(want, appended{base: base, next: hd.NextOffset(), data: bytes.Clone(b)})
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", full)
	}
	if len(want) == 0 {
		t.Fatal("nothing was buffered against the headroom")
	}
	if h.Size() >= initial {
		t.Fatalf("headroom still %d bytes: the full disk never drew on it", h.Size())
	}
	if _, err := l.Sync(); err != nil {
		t.Fatalf("sync after the disk filled: %v", err)
	}
	if l.Failed() {
		t.Fatal("log failed")
	}
	checkLog(t, l, want)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Held() != 0 {
		t.Fatalf("%d bytes still held against the headroom after close", h.Held())
	}
	l = openLog(t, dir, Options{SegmentBytes: 64 << 20})
	defer l.Close()
	checkLog(t, l, want)
}
