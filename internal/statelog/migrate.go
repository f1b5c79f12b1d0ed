package statelog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/chronik-stream/chronik/internal/storage"
)

// Legacy is a coordinator's private state log of a release before internal
// topics: one storage.Log in <data-dir>/<Name>/ (no -N suffix, so it never
// collides with a partition directory), which that release compacted by
// writing <Name>.compact and swapping it in.
type Legacy struct {
	DataDir string
	Name    string
	// Copy reads the old log in dir and writes its live state to the
	// internal topic, returning once that is durable; it returns how
	// many items it moved. It calls step after reading ("read") and
	// after each partition written ("partition").
	Copy func(dir string, step func(string) error) (int, error)
	// Step, if set (tests), runs after each step ("read", "partition",
	// "written", "renamed") and stops the migration there, as a crash
	// would, when it returns an error.
	Step func(step string) error
}

// MigratedSuffix names the old directory once its state is copied.
const MigratedSuffix = ".migrated"

// Migrate moves a legacy log's state into the internal topic, crash-safely:
//  1. finishes or discards a compaction of the old log cut by a crash
//     (storage.FinishSwap, as the old release did at start);
//  2. Copy reads the old log and writes its live state, durably;
//  3. renames the old directory to <Name>.migrated and fsyncs the data
//     dir: from here on the migration is done;
//  4. removes the renamed directory.
//
// A crash anywhere before 3 leaves the old log in place, and the next start
// migrates again: Copy then rewrites the same state over the partial copy
// (the coordinator must write nothing else before Migrate returns, so the
// old log is still the truth). A crash after 3 leaves only a directory to
// remove, which the next start does. It returns the count Copy returned
// and whether there was an old log.
func Migrate(l Legacy, lg *slog.Logger) (int, bool, error) {
	dir := filepath.Join(l.DataDir, l.Name)
	step := func(s string) error {
		if l.Step == nil {
			return nil
		}
		return l.Step(s)
	}
	if err := os.RemoveAll(dir + MigratedSuffix); err != nil {
		return 0, false, fmt.Errorf("statelog: remove migrated %s: %w", l.Name, err)
	}
	if err := storage.FinishSwap(dir); err != nil {
		return 0, false, fmt.Errorf("statelog: finish old compaction of %s: %w", l.Name, err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	n, err := l.Copy(dir, step)
	if err != nil {
		return 0, false, err
	}
	if err := step("written"); err != nil {
		return 0, false, err
	}
	if err := os.Rename(dir, dir+MigratedSuffix); err != nil {
		return 0, false, fmt.Errorf("statelog: retire old %s: %w", l.Name, err)
	}
	if err := storage.SyncDir(l.DataDir); err != nil {
		return 0, false, fmt.Errorf("statelog: retire old %s: %w", l.Name, err)
	}
	if err := step("renamed"); err != nil {
		return 0, false, err
	}
	if err := os.RemoveAll(dir + MigratedSuffix); err != nil {
		lg.Warn("could not remove a migrated state log; the next start retries", "dir", dir+MigratedSuffix, "err", err)
	}
	return n, true, nil
}
