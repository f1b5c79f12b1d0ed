package storage

// Leftovers of the whole-log compaction of the internal state logs of
// releases before internal topics (committed offsets, transaction state).
// Those rewrote a log's live records into a fresh log in <dir>.compact,
// fsynced and closed it, renamed <dir> to <dir>.old and <dir>.compact to
// <dir>, fsynced the parent directory and removed <dir>.old. Their logs are
// now migrated into internal topics (group/migrate.go, txn/migrate.go),
// which call FinishSwap first, as those releases did before opening <dir>:
// a missing <dir> with <dir>.compact present means a crash fell between the
// two renames (the compacted log is complete: it was closed before the
// first rename), so the swap is completed; anything else left in
// <dir>.compact (a partial copy) or <dir>.old (the replaced log) is
// discarded. Either way <dir> then replays to the state it had before the
// compaction began.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Suffixes of the directories a compaction swap used next to the log.
const (
	CompactSuffix = ".compact"
	OldSuffix     = ".old"
)

// FinishSwap completes or discards a compaction swap of dir cut by a crash.
// Call it before opening dir.
func FinishSwap(dir string) error {
	tmp, old := dir+CompactSuffix, dir+OldSuffix
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(tmp); err == nil {
			if err := os.Rename(tmp, dir); err != nil {
				return fmt.Errorf("storage: finish swap of %s: %w", dir, err)
			}
			if err := SyncDir(filepath.Dir(dir)); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("storage: remove %s: %w", tmp, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("storage: remove %s: %w", old, err)
	}
	return nil
}
