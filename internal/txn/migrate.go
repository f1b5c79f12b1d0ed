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
// __transaction_state's partitions and before recovering any entry,
// migrates it with statelog.Migrate (which makes it crash-safe): it reads
// the old log, the last record of an id winning, writes every live id's
// record to its partition in Kafka's format, waiting until each
// partition's batch is durable, and takes the entries over. Nothing else
// writes transaction state before that (recovery of Prepare* entries runs
// after it), so a crash before the old directory is retired migrates the
// same states again over the partial copy.

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyStateDir is where releases before internal topics kept the state.
const legacyStateDir = "__transaction_state"

// migrateHook, when set by a test, runs at each step of the migration and
// stops it (as a crash would) when it returns an error.
var migrateHook func(step string) error

// migrateBatch bounds the records of one batch of the migration.
const migrateBatch = 500

func (c *Coordinator) migrateLegacy() error {
	if c.opts.DataDir == "" {
		return nil
	}
	n, found, err := statelog.Migrate(statelog.Legacy{DataDir: c.opts.DataDir, Name: legacyStateDir, Copy: c.copyLegacy, Step: migrateHook}, c.lg)
	if found {
		c.lg.Info("migrated transaction state to the internal topic __transaction_state", "transactional_ids", n,
			"from", filepath.Join(c.opts.DataDir, legacyStateDir))
	}
	return err
}

// copyLegacy writes the live ids of the old log in dir to their partitions
// and loads them.
func (c *Coordinator) copyLegacy(dir string, step func(string) error) (int, error) {
	entries, err := readLegacyState(dir)
	if err != nil {
		return 0, err
	}
	if err := step("read"); err != nil {
		return 0, err
	}
	byPart := make([][]kmsg.Record, len(c.parts))
	for _, id := range sortedKeys(entries) {
		e := entries[id]
		v, err := encodeValue(&e)
		if err != nil {
			return 0, err
		}
		p := statelog.PartitionFor(id, len(c.parts))
		byPart[p] = append(byPart[p], kmsg.Record{Key: encodeKey(id), Value: v})
	}
	for p, recs := range byPart {
		if len(recs) == 0 {
			continue
		}
		for rest := recs; len(rest) > 0; {
			n := min(len(rest), migrateBatch)
			if err := c.appendDurable(p, rest[:n]); err != nil {
				return 0, fmt.Errorf("txn: migrate state: %w", err)
			}
			rest = rest[n:]
		}
		for _, r := range recs {
			id, _ := decodeKey(r.Key)
			if err := c.load(id, r.Value); err != nil {
				return 0, err
			}
		}
		if err := step("partition"); err != nil {
			return 0, err
		}
	}
	return len(entries), nil
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
