package storage

// Whole-log replacement for the broker's internal state logs (committed
// offsets, transaction state), which are compacted by rewriting their live
// records into a fresh log and swapping directories:
//
//  1. the caller writes the live records to a new log in <dir>.compact,
//     fsyncs and closes it, and closes the log in <dir>;
//  2. SwapCompacted renames <dir> to <dir>.old and <dir>.compact to <dir>,
//     fsyncs the parent directory and removes <dir>.old.
//
// FinishSwap, called before opening <dir>, makes every crash point safe: a
// missing <dir> with <dir>.compact present means the crash fell between the
// two renames (the compacted log is complete: it was closed before the first
// rename), so the swap is completed; anything else left in <dir>.compact (a
// partial copy) or <dir>.old (the replaced log) is discarded. Either way
// <dir> then replays to the same state it had before the compaction began.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Suffixes of the directories a compaction swap uses next to the log.
const (
	CompactSuffix = ".compact"
	OldSuffix     = ".old"
)

// SwapStep names the points SwapCompacted passes, for crash-injection tests.
type SwapStep int

// The steps, in order.
const (
	SwapMovedOld   SwapStep = iota + 1 // <dir> renamed to <dir>.old
	SwapMovedNew                       // <dir>.compact renamed to <dir>
	SwapSyncedDir                      // parent directory fsynced
	SwapRemovedOld                     // <dir>.old removed
	swapStepsEnd
)

// SwapSteps is how many SwapSteps there are.
const SwapSteps = int(swapStepsEnd) - 1

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

// SwapCompacted replaces the closed log in dir by the complete, fsynced and
// closed log in dir+CompactSuffix (see the file comment). after, if not
// nil, is called after each step; an error from it stops the swap there (a
// simulated crash; FinishSwap then repairs). A failure to remove the old
// copy is not an error (FinishSwap removes it at the next open).
func SwapCompacted(dir string, after func(SwapStep) error) error {
	tmp, old := dir+CompactSuffix, dir+OldSuffix
	step := func(s SwapStep) error {
		if after == nil {
			return nil
		}
		return after(s)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("storage: swap %s: %w", dir, err)
	}
	if err := step(SwapMovedOld); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("storage: swap %s: %w", dir, err)
	}
	if err := step(SwapMovedNew); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := step(SwapSyncedDir); err != nil {
		return err
	}
	_ = os.RemoveAll(old)
	return step(SwapRemovedOld)
}
