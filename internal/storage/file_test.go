package storage

import (
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
