package storage

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	noTmp := func() {
		t.Helper()
		if _, err := os.Stat(path + tmpSuffix); !os.IsNotExist(err) {
			t.Errorf("%s left behind (stat: %v)", path+tmpSuffix, err)
		}
	}

	if err := WriteFileAtomic(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "one" {
		t.Errorf("after the first write: %q", got)
	}
	noTmp()

	// A .tmp left by a crash is overwritten, not appended to.
	if err := os.WriteFile(path+tmpSuffix, []byte("torn garbage, longer than the data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "two" {
		t.Errorf("after replacing: %q", got)
	}
	noTmp()

	// A failed rename (a directory is in the way) keeps what was there and
	// removes the temporary file.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocked, []byte("x")); err == nil {
		t.Error("rename over a non-empty directory succeeded")
	}
	if _, err := os.Stat(blocked + tmpSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left after a failed rename (stat: %v)", err)
	}
	if fi, err := os.Stat(blocked); err != nil || !fi.IsDir() {
		t.Errorf("the directory in the way was replaced (stat: %v)", err)
	}

	// A missing directory is an error, not a panic or a silent success.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestReadFile: the same bytes as os.ReadFile for empty, small and large
// files, and a missing file reports fs.ErrNotExist.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 100_000} {
		p := filepath.Join(dir, "f")
		want := bytes.Repeat([]byte{byte(n)}, n)
		for i := range want {
			want[i] = byte(i * 7)
		}
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: read %d, %v", n, len(got), err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !os.IsNotExist(err) {
		t.Fatalf("missing file: %v, want not-exist", err)
	}
	if _, err := ReadFile(dir); err == nil {
		t.Fatal("reading a directory succeeded")
	}
}

// TestOpenCreated: a directory CreateFirstSegment made opens with
// Options.Created as an ordinary open would see it, and what is written then
// is recovered by ordinary opens after a close and after a kill.
func TestOpenCreated(t *testing.T) {
	for _, kill := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "p")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := CreateFirstSegment(dir); err != nil {
			t.Fatal(err)
		}
		plain := openLog(t, dir, Options{})
		want := [4]int64{plain.LogStartOffset(), plain.LogEndOffset(), plain.DurableOffset(), int64(len(plain.Segments()))}
		if err := plain.Close(); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, dir, Options{Created: true})
		if got := [4]int64{l.LogStartOffset(), l.LogEndOffset(), l.DurableOffset(), int64(len(l.Segments()))}; got != want {
			t.Fatalf("created open: start, end, durable, segments %v; plain open %v", got, want)
		}
		var all []byte
		for range 5 {
			b := simpleBatch(t, 2, 1000, 100)
			if _, err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if _, err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if kill {
			l.crash()
		} else if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, dir, Options{})
		got, err := l.Read(0, math.MaxInt32, math.MaxInt64, nil)
		if err != nil || !bytes.Equal(got, all) || l.LogEndOffset() != 10 {
			t.Fatalf("kill %v: reopened with %d bytes (want %d), end %d, %v", kill, len(got), len(all), l.LogEndOffset(), err)
		}
		_ = l.Close()
	}
	// Misused on a directory that is not there: an error, nothing created.
	missing := filepath.Join(t.TempDir(), "gone")
	if l, err := Open(missing, Options{Created: true}); err == nil {
		l.Close()
		t.Fatal("Created open of a missing directory succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("Created open of a missing directory made it: %v", err)
	}
}
