package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHeadroom: the ballast holds at most what was asked (and what 1/64 of
// the free space allows), bytes are held only up to its size, and a file
// left larger by an earlier start is cut to the new size.
func TestHeadroom(t *testing.T) {
	var none *Headroom
	if none.take(1) || none.Size() != 0 || none.Held() != 0 || none.spend(1) {
		t.Fatal("a nil headroom holds something")
	}
	path := filepath.Join(t.TempDir(), HeadroomName)
	h := OpenHeadroom(path, 1<<20, nil)
	if h.Size() == 0 {
		t.Skip("no fallocate here, or under 64 MiB free")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != h.Size() || h.Size() != 1<<20 {
		t.Fatalf("headroom %d bytes, file %v %v; want 1 MiB both", h.Size(), fi, err)
	}
	if got := allocated(t, path); got < h.Size() {
		t.Fatalf("%d bytes allocated for a %d-byte headroom", got, h.Size())
	}
	if !h.take(600<<10) || h.take(500<<10) || !h.take(424<<10) || h.Held() != 1<<20 {
		t.Fatalf("take: held %d of %d", h.Held(), h.Size())
	}
	h.give(1 << 20)
	if h.Held() != 0 {
		t.Fatalf("held %d after giving everything back", h.Held())
	}
	h = OpenHeadroom(path, 256<<10, nil)
	if fi, _ := os.Stat(path); h.Size() != 256<<10 || fi.Size() != 256<<10 {
		t.Fatalf("reopened smaller: headroom %d, file %d; want 256 KiB", h.Size(), fi.Size())
	}
	if !h.take(8<<10) || !h.spend(8<<10) || h.Size() != 248<<10 || h.Held() != 0 {
		t.Fatalf("spend: headroom %d, held %d; want 248 KiB, 0", h.Size(), h.Held())
	}
}
