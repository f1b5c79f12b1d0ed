package group

// Migration of the offsets log of releases before internal topics.
//
// Those kept committed offsets in <data-dir>/__consumer_offsets/, one
// storage.Log (not a partition directory: partitions are <topic>-<n>) with
// keys 0x00, uint16-length group, uint16-length topic, int32 partition and
// JSON values {"o": offset, "e": leader epoch, "m": metadata, "t": commit
// ms}, null for a deletion; and they compacted it by writing
// __consumer_offsets.compact and swapping it in.
//
// On the first start of this release the coordinator, after replaying
// __consumer_offsets' partitions, migrates it with statelog.Migrate (which
// makes it crash-safe): it reads the old log, last record of a key winning,
// and writes every live offset to its partition in Kafka's format, waiting
// until each partition's batch is durable.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyOffsetsDir is where releases before internal topics kept offsets.
const legacyOffsetsDir = "__consumer_offsets"

// migrateHook, when set by a test, runs at each step of the migration and
// stops it (as a crash would) when it returns an error.
var migrateHook func(step string) error

func (c *Coordinator) migrateLegacy() error {
	n, found, err := statelog.Migrate(statelog.Legacy{DataDir: c.opts.DataDir, Name: legacyOffsetsDir, Copy: c.copyLegacy, Step: migrateHook}, c.lg)
	if found {
		c.lg.Info("migrated committed offsets to the internal topic __consumer_offsets", "offsets", n, "from", filepath.Join(c.opts.DataDir, legacyOffsetsDir))
	}
	return err
}

// copyLegacy writes the live offsets of the old log in dir to their
// partitions.
func (c *Coordinator) copyLegacy(dir string, step func(string) error) (int, error) {
	offsets, err := readLegacyOffsets(dir, c.lg)
	if err != nil {
		return 0, err
	}
	if err := step("read"); err != nil {
		return 0, err
	}
	byPart := map[int][]change{}
	for k, off := range offsets {
		p := c.offsets.partitionOf(k.group)
		byPart[p] = append(byPart[p], change{group: k.group, tp: k.tp, off: off})
	}
	for p := range len(c.offsets.parts) {
		changes := byPart[p]
		for len(changes) > 0 {
			n := min(len(changes), 1000)
			ctx, cancel := context.WithTimeout(context.Background(), writeWait)
			err := c.offsets.write(ctx, changes[:n])
			cancel()
			if err != nil {
				return 0, fmt.Errorf("group: migrate offsets: %w", err)
			}
			changes = changes[n:]
		}
		if len(byPart[p]) > 0 {
			if err := step("partition"); err != nil {
				return 0, err
			}
		}
	}
	return len(offsets), nil
}

type legacyKey struct {
	group string
	tp    TP
}

// readLegacyOffsets replays the old log: the last record of a key wins,
// null values delete.
func readLegacyOffsets(dir string, lg *slog.Logger) (map[legacyKey]Offset, error) {
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("group: open old offsets log: %w", err)
	}
	defer l.Close()
	out := map[legacyKey]Offset{}
	err = storage.ReplayRecords(l, -1, nil, func(off int64, r *kmsg.Record) error {
		g, tp, ok := decodeLegacyKey(r.Key)
		if !ok {
			lg.Warn("skipping unknown record in the old offsets log", "offset", off)
			return nil
		}
		k := legacyKey{g, tp}
		if r.Value == nil {
			delete(out, k)
			return nil
		}
		var v struct {
			O int64  `json:"o"`
			E int32  `json:"e"`
			M string `json:"m"`
			T int64  `json:"t"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return fmt.Errorf("group: old offsets record at %d: %w", off, err)
		}
		out[k] = Offset{Offset: v.O, LeaderEpoch: v.E, Metadata: v.M, CommitMs: v.T}
		return nil
	})
	return out, err
}

func decodeLegacyKey(k []byte) (string, TP, bool) {
	if len(k) < 3 || k[0] != 0 {
		return "", TP{}, false
	}
	k = k[1:]
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n+2 {
		return "", TP{}, false
	}
	g := string(k[2 : 2+n])
	k = k[2+n:]
	n = int(binary.BigEndian.Uint16(k))
	if len(k) != 2+n+4 {
		return "", TP{}, false
	}
	return g, TP{Topic: string(k[2 : 2+n]), Partition: int32(binary.BigEndian.Uint32(k[2+n:]))}, true
}
