package partition

// Leader epochs: every batch appended to a partition is stamped with the
// partition's current leader epoch (the field is outside the CRC), and the
// first offset of each epoch is remembered in the partition's
// leader-epoch-checkpoint file, the same text format Kafka uses:
//
//	0                <- format version
//	2                <- number of entries
//	0 0              <- epoch, start offset
//	3 1200
//
// OffsetForLeaderEpoch answers from it. A single node is always leader at
// epoch 0; clustering bumps the epoch (bump) when leadership changes, which
// adds an entry at the next append. The file is rewritten atomically
// (storage.WriteFileAtomic) only when an epoch starts, so it costs nothing on the
// append path otherwise, and when the log start moves (truncateFromStart).

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/chronik-stream/chronik/internal/storage"
)

// LeaderEpochFile names the leader epoch checkpoint.
const LeaderEpochFile = "leader-epoch-checkpoint"

// EpochEntry is the first offset written at a leader epoch.
type EpochEntry struct {
	Epoch int32
	Start int64
}

// leaderEpochs is a partition's epoch history plus its current epoch.
type leaderEpochs struct {
	path string

	mu      sync.Mutex
	current int32
	// entries: ascending in both epoch and start. Without a file they
	// are derived at open (only "epoch 0 from the log start", which every
	// open derives again); the file is written at the first change
	// (assign, truncateFromStart).
	entries []EpochEntry
}

// newLeaderEpochs is the history of a partition without a checkpoint file
// (a new one): on one node only "epoch 0 from the start", which every open
// without a file derives again, so it is not written until it changes
// (truncateFromStart, bump). Creating and fsyncing it at the first open cost
// the first append to each of thousands of new partitions a file creation
// and two fsyncs.
func newLeaderEpochs(dir string, logStart int64) *leaderEpochs {
	return &leaderEpochs{path: filepath.Join(dir, LeaderEpochFile), entries: []EpochEntry{{Epoch: 0, Start: logStart}}}
}

// loadLeaderEpochs reads dir's checkpoint, dropping entries that start
// beyond the log end (a tail lost in a crash). A log with data but no
// checkpoint (written before epochs were tracked) is treated as epoch 0
// from its start.
func loadLeaderEpochs(dir string, logStart, logEnd int64, lg *slog.Logger) (*leaderEpochs, error) {
	le := &leaderEpochs{path: filepath.Join(dir, LeaderEpochFile)}
	raw, err := storage.ReadFile(le.path)
	switch {
	case os.IsNotExist(err):
		if logEnd > logStart {
			return newLeaderEpochs(dir, logStart), nil
		}
		return le, nil
	case err != nil:
		return nil, fmt.Errorf("partition: read %s: %w", le.path, err)
	}
	entries, err := parseLeaderEpochs(raw)
	if err != nil {
		// Written atomically, so this is outside damage. On one node the
		// history is only "epoch 0 from the start": rebuild it rather than
		// refuse to open the partition.
		lg.Warn("leader epoch checkpoint unreadable; rebuilding it", "path", le.path, "err", err)
		le.entries = []EpochEntry{{Epoch: 0, Start: logStart}}
		return le, le.write()
	}
	n := len(entries)
	for n > 0 && entries[n-1].Start > logEnd {
		n--
	}
	le.entries = entries[:n]
	if n > 0 {
		le.current = le.entries[n-1].Epoch
	}
	if n != len(entries) {
		return le, le.write()
	}
	return le, nil
}

// parseLeaderEpochs decodes and checks the checkpoint format.
func parseLeaderEpochs(raw []byte) ([]EpochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("bad leader epoch checkpoint header")
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count < 0 || count != len(lines)-2 {
		return nil, fmt.Errorf("bad leader epoch checkpoint count %q", lines[1])
	}
	entries := make([]EpochEntry, 0, count)
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("bad leader epoch checkpoint line %q", line)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		s, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || s < 0 {
			return nil, fmt.Errorf("bad leader epoch checkpoint line %q", line)
		}
		if k := len(entries); k > 0 && (int32(e) <= entries[k-1].Epoch || s < entries[k-1].Start) {
			return nil, fmt.Errorf("leader epoch checkpoint not ascending at %q", line)
		}
		entries = append(entries, EpochEntry{Epoch: int32(e), Start: s})
	}
	return entries, nil
}

func formatLeaderEpochs(entries []EpochEntry) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.Start)
	}
	return []byte(b.String())
}

// write persists the entries. Caller holds mu (or owns le).
func (le *leaderEpochs) write() error {
	if err := storage.WriteFileAtomic(le.path, formatLeaderEpochs(le.entries)); err != nil {
		return fmt.Errorf("partition: write %s: %w", le.path, err)
	}
	return nil
}

// epoch is the current leader epoch.
func (le *leaderEpochs) epoch() int32 {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.current
}

// bump moves to a newer leader epoch (clustering calls it on a leader
// change); the entry is added by the next append.
func (le *leaderEpochs) bump(epoch int32) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if epoch > le.current {
		le.current = epoch
	}
}

// assign records that an append at offset base starts the current epoch if
// no entry has it yet, and returns the epoch to stamp. Caller holds
// Partition.mu, so appends (and so starts) are ordered.
func (le *leaderEpochs) assign(base int64) (int32, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if n := len(le.entries); n > 0 && le.entries[n-1].Epoch >= le.current {
		return le.current, nil
	}
	le.entries = append(le.entries, EpochEntry{Epoch: le.current, Start: base})
	if err := le.write(); err != nil {
		le.entries = le.entries[:len(le.entries)-1]
		return 0, err
	}
	return le.current, nil
}

// truncateFromStart drops the history below a new log start, as Kafka's
// LeaderEpochFileCache.truncateFromStart does: entries starting at or below
// start go, except that the latest of them stays with its start moved up to
// start (the epoch of the first remaining record). The checkpoint is
// rewritten atomically when anything changed; if that fails the entries are
// left as they were, so the next call retries. Called after the log start
// moved (retention, DeleteRecords) and on open, which repairs a crash
// between moving the start and rewriting the checkpoint.
func (le *leaderEpochs) truncateFromStart(start int64) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	n := 0
	for n < len(le.entries) && le.entries[n].Start <= start {
		n++
	}
	if n == 0 || (n == 1 && le.entries[0].Start == start) {
		return nil
	}
	kept := make([]EpochEntry, 0, len(le.entries)-n+1)
	kept = append(kept, EpochEntry{Epoch: le.entries[n-1].Epoch, Start: start})
	kept = append(kept, le.entries[n:]...)
	old := le.entries
	le.entries = kept
	if err := le.write(); err != nil {
		le.entries = old
		return err
	}
	return nil
}

// endOffsetFor answers OffsetForLeaderEpoch for a requested epoch, per
// Kafka's LeaderEpochFileCache.endOffsetFor: the current epoch ends at the
// log end; an older epoch ends where the next known epoch starts, answered
// with the largest known epoch <= the requested one; an epoch below the
// first known one (or above the current one) is unknown: -1, -1. Epochs
// wholly before logStart were deleted with their data.
func (le *leaderEpochs) endOffsetFor(requested int32, logStart, logEnd int64) (int32, int64) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if requested == le.current {
		return le.current, logEnd
	}
	if requested < 0 || requested > le.current {
		return -1, -1
	}
	// Drop (logically) entries whose epoch ended at or before the log start.
	entries := le.entries
	for len(entries) > 1 && entries[1].Start <= logStart {
		entries = entries[1:]
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Epoch > requested {
			continue
		}
		if i == len(entries)-1 {
			return entries[i].Epoch, logEnd
		}
		return entries[i].Epoch, entries[i+1].Start
	}
	return -1, -1
}

// snapshot returns a copy of the entries (tests, debugging).
func (le *leaderEpochs) snapshot() []EpochEntry {
	le.mu.Lock()
	defer le.mu.Unlock()
	return append([]EpochEntry(nil), le.entries...)
}

// BumpLeaderEpoch moves to a newer leader epoch (clustering calls it on a
// leader change); the checkpoint entry is added by the next append.
func (p *state) BumpLeaderEpoch(epoch int32) { p.epochs.bump(epoch) }

// LeaderEpochs returns the partition's epoch history (tests, debugging).
func (p *state) LeaderEpochs() []EpochEntry { return p.epochs.snapshot() }

// EndOffsetForEpoch answers OffsetForLeaderEpoch (leaderEpochs.endOffsetFor).
func (p *state) EndOffsetForEpoch(requested int32) (int32, int64) {
	return p.epochs.endOffsetFor(requested, p.log.LogStartOffset(), p.log.LogEndOffset())
}

// SetLogStartOffset moves the log start (retention, DeleteRecords) and trims
// the epoch history to it. A failure to trim only leaves entries below the
// start, which answers ignore and the next move retries.
func (p *state) SetLogStartOffset(offset int64) (deleted int, bytes int64, err error) {
	deleted, bytes, err = p.log.SetLogStartOffset(offset)
	if err != nil {
		return deleted, bytes, err
	}
	if err := p.epochs.truncateFromStart(p.log.LogStartOffset()); err != nil {
		p.lg.Warn("cannot trim leader epoch checkpoint to the log start", "err", err)
	}
	return deleted, bytes, nil
}
