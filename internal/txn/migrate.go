package txn

// Migration of the state log of releases before __transaction_state was an
// internal topic.
//
// Those kept transaction state in <data-dir>/__transaction_state/, one
// storage.Log (not a partition directory: partitions are <topic>-<n>) whose
// records have the transactional id as key and the JSON of its whole Entry
// as value, null for an expired id; and they compacted it by writing
// __transaction_state.compact and swapping it in.
//
// On the first start of this release the coordinator, after replaying
// __transaction_state's partitions and before recovering any entry:
//  1. finishes or discards a compaction of the old log cut by a crash
//     (storage.FinishSwap, as the old release did at start);
//  2. reads the old log, the last record of an id winning;
//  3. writes every live id's record to its partition in Kafka's format,
//     waiting until each partition's batch is durable, and takes the
//     entries over;
//  4. renames the old directory to __transaction_state.migrated and fsyncs
//     the data dir: from here on the migration is done;
//  5. removes the renamed directory.
//
// A crash anywhere before 4 leaves the old log in place, and the next start
// migrates again: step 3 then rewrites the same states over the partial
// copy (nothing else writes transaction state before the migration
// finishes, so the old log is still the truth; recovery of Prepare*
// entries runs only after it). A crash after 4 leaves only a directory to
// remove, which the next start does.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyStateDir is where releases before internal topics kept the state.
const legacyStateDir = "__transaction_state"

const migratedSuffix = ".migrated"

// migrateHook, when set by a test, runs at each step of the migration and
// stops it (as a crash would) when it returns an error.
var migrateHook func(step string) error

func migrateStep(step string) error {
	if migrateHook == nil {
		return nil
	}
	return migrateHook(step)
}

// migrateBatch bounds the records of one batch of the migration.
const migrateBatch = 500

func (c *Coordinator) migrateLegacy() error {
	if c.opts.DataDir == "" {
		return nil
	}
	dir := filepath.Join(c.opts.DataDir, legacyStateDir)
	if err := os.RemoveAll(dir + migratedSuffix); err != nil {
		return fmt.Errorf("txn: remove migrated state log: %w", err)
	}
	if err := storage.FinishSwap(dir); err != nil {
		return fmt.Errorf("txn: finish old state log compaction: %w", err)
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	entries, err := readLegacyState(dir)
	if err != nil {
		return err
	}
	if err := migrateStep("read"); err != nil {
		return err
	}
	byPart := make([][]kmsg.Record, len(c.parts))
	for _, id := range sortedKeys(entries) {
		e := entries[id]
		v, err := encodeValue(&e)
		if err != nil {
			return err
		}
		p := statelog.PartitionFor(id, len(c.parts))
		byPart[p] = append(byPart[p], kmsg.Record{Key: encodeKey(id), Value: v})
	}
	for p, recs := range byPart {
		if len(recs) == 0 {
			continue
		}
		for len(recs) > 0 {
			n := min(len(recs), migrateBatch)
			if err := c.appendDurable(p, recs[:n]); err != nil {
				return fmt.Errorf("txn: migrate state: %w", err)
			}
			recs = recs[n:]
		}
		if err := migrateStep("partition"); err != nil {
			return err
		}
	}
	for _, recs := range byPart {
		for _, r := range recs {
			id, _ := decodeKey(r.Key)
			if err := c.load(id, r.Value); err != nil {
				return err
			}
		}
	}
	if err := migrateStep("written"); err != nil {
		return err
	}
	if err := os.Rename(dir, dir+migratedSuffix); err != nil {
		return fmt.Errorf("txn: retire old state log: %w", err)
	}
	if err := storage.SyncDir(c.opts.DataDir); err != nil {
		return fmt.Errorf("txn: retire old state log: %w", err)
	}
	if err := migrateStep("renamed"); err != nil {
		return err
	}
	if err := os.RemoveAll(dir + migratedSuffix); err != nil {
		c.lg.Warn("could not remove the migrated transaction state log; the next start retries", "dir", dir+migratedSuffix, "err", err)
	}
	c.lg.Info("migrated transaction state to the internal topic __transaction_state", "transactional_ids", len(entries), "from", dir)
	return nil
}

// readLegacyState replays the old log: the last record of an id wins, null
// values delete.
func readLegacyState(dir string) (map[string]Entry, error) {
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("txn: open old state log: %w", err)
	}
	defer l.Close()
	out := map[string]Entry{}
	err = storage.ReplayRecords(l, -1, nil, func(off int64, r *kmsg.Record) error {
		if r.Value == nil {
			delete(out, string(r.Key))
			return nil
		}
		var e Entry
		if err := json.Unmarshal(r.Value, &e); err != nil || e.ID == "" || e.ID != string(r.Key) {
			return fmt.Errorf("txn: old state log record at offset %d: %v", off, err)
		}
		out[e.ID] = e
		return nil
	})
	return out, err
}
