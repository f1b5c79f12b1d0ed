package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Status is a transactional id's state.
type Status string

// The statuses, as Kafka names them.
const (
	Empty          Status = "Empty"
	Ongoing        Status = "Ongoing"
	PrepareCommit  Status = "PrepareCommit"
	PrepareAbort   Status = "PrepareAbort"
	CompleteCommit Status = "CompleteCommit"
	CompleteAbort  Status = "CompleteAbort"
)

// TP is a topic partition.
type TP struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
}

// Offset is one offset committed inside a transaction (TxnOffsetCommit).
type Offset struct {
	TP
	Offset      int64  `json:"o"`
	LeaderEpoch int32  `json:"e"`
	Metadata    string `json:"m,omitempty"`
}

// Entry is the state of one transactional id. __transaction_state holds it
// as record.go describes; the JSON tags are the record format of the state
// log of older releases (migrate.go).
type Entry struct {
	ID         string              `json:"id"`
	PID        int64               `json:"pid"`
	Epoch      int16               `json:"epoch"`
	TimedOut   bool                `json:"timed_out,omitempty"` // Epoch was bumped by a timeout (KIP-588)
	TimeoutMs  int32               `json:"timeout_ms"`
	Status     Status              `json:"status"`
	StartMs    int64               `json:"start_ms,omitempty"`
	Partitions []TP                `json:"partitions,omitempty"`
	Groups     []string            `json:"groups,omitempty"`
	Offsets    map[string][]Offset `json:"offsets,omitempty"` // group -> pending offsets (written with Prepare*)
	// UpdateMs is the time of the last transition (id expiry, expire.go).
	UpdateMs int64 `json:"update_ms,omitempty"`
	// Marker is the producer id and epoch a Prepare* transaction's markers
	// carry when they are not PID/Epoch: the epoch ran out at the bump and
	// a new producer id was issued, so the old id's open transactions are
	// closed with its own id at the last epoch.
	Marker *Producer `json:"marker,omitempty"`
	// Prev is the producer id and epoch before the last KIP-890 (transaction
	// version 2) EndTxn bumped them, so a retried EndTxn is answered.
	Prev *Producer `json:"prev,omitempty"`
	// OffsetsLogged: the record was written by a coordinator that logs
	// every TxnOffsetCommit (CommitOffsets), so Offsets holds everything
	// staged. Only then can a transaction found Ongoing at a restart
	// carry on; older records' staged offsets were only in memory.
	OffsetsLogged bool `json:"offsets_logged,omitempty"`
}

// Producer is a producer id and epoch.
type Producer struct {
	PID   int64 `json:"pid"`
	Epoch int16 `json:"epoch"`
}

// Markers writes transaction markers and group offsets for the coordinator.
type Markers interface {
	// WriteMarkers appends a COMMIT (commit true) or ABORT control batch for
	// pid/epoch to every partition and returns once they are durable.
	WriteMarkers(pid int64, epoch int16, commit bool, parts []TP) error
	// CommitOffsets makes a committed transaction's group offsets visible.
	CommitOffsets(group string, offsets []Offset) error
	// AllocatePID returns a fresh producer id.
	AllocatePID() (int64, error)
}

// Options configure a Coordinator.
type Options struct {
	// State holds the partitions of __transaction_state (statelog); an
	// id's records go to partition statelog.PartitionFor(id, len(State)).
	State []statelog.Partition
	// DataDir is where a state log of an older release may wait to be
	// migrated (migrate.go).
	DataDir string
	Logger  *slog.Logger
	Markers Markers
	// MaxTimeoutMs bounds transaction.timeout.ms (Kafka's
	// transaction.max.timeout.ms, 15 minutes).
	MaxTimeoutMs int32
	// CheckEvery is how often timed-out transactions are looked for
	// (0: 1 s; negative: never, for tests that call AbortExpired).
	CheckEvery time.Duration
	Now        func() time.Time
	// IDExpiration is transactional.id.expiration.ms: an id idle (Empty or
	// Complete*) this long is forgotten (0: 7 days; expire.go).
	IDExpiration time.Duration
	// ExpireEvery is how often idle ids are looked for (0: 1 minute;
	// negative: never, for tests that call ExpireIDs).
	ExpireEvery time.Duration
	// RetryEvery is how often decided transactions whose markers could not
	// all be written are retried (0: 200 ms; negative: never, for tests
	// that call RetryPending; pending_markers.go).
	RetryEvery time.Duration
}

// Coordinator is the transaction coordinator.
type Coordinator struct {
	opts  Options
	lg    *slog.Logger
	parts []statelog.Partition

	mu      sync.Mutex
	entries map[string]*entry

	// logMu guards latest, the value of each id's last durable record
	// (what the admin reads decode), and closed; appends take it only
	// to be refused after Close and counted in inflight.
	logMu    sync.Mutex
	latest   map[string][]byte
	closed   bool
	inflight sync.WaitGroup // appends waiting to be durable

	ctx    context.Context // cancelled by Close: durability waits give up
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	hkDone chan struct{} // the expiry loop (expire.go) ended

	// pmu guards pending: decided transactions (Prepare*) waiting for
	// their markers, with the attempts so far (pending_markers.go).
	pmu       sync.Mutex
	pending   map[string]int
	retryDone chan struct{} // the retry loop ended
}

type entry struct {
	mu sync.Mutex
	Entry
}

// ErrClosed is returned once the coordinator is closed.
var ErrClosed = errors.New("txn: coordinator closed")

// Open replays __transaction_state, migrates the state log of an older
// release, finishes transactions a crash left in Prepare*, keeps those left
// Ongoing open (their producers carry on, or the timeout aborts them), and
// starts the timeout check.
func Open(opts Options) (*Coordinator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxTimeoutMs <= 0 {
		opts.MaxTimeoutMs = 15 * 60 * 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Markers == nil {
		return nil, errors.New("txn: Options.Markers is required")
	}
	if len(opts.State) == 0 {
		return nil, errors.New("txn: Options.State (the __transaction_state partitions) is required")
	}
	c := &Coordinator{opts: opts, lg: opts.Logger, parts: opts.State, entries: map[string]*entry{}, latest: map[string][]byte{},
		stop: make(chan struct{}), done: make(chan struct{}), hkDone: make(chan struct{}),
		pending: map[string]int{}, retryDone: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Coordinator, error) {
		c.cancel()
		return nil, err
	}
	if err := c.replay(); err != nil {
		return fail(err)
	}
	if err := c.migrateLegacy(); err != nil { // migrate.go
		return fail(err)
	}
	for _, e := range c.entries {
		if err := c.recoverEntry(e); err != nil {
			return fail(err)
		}
	}
	if opts.CheckEvery >= 0 {
		go c.every(opts.CheckEvery, time.Second, c.done, func() { c.AbortExpired() })
	} else {
		close(c.done)
	}
	c.startExpiry()  // expire.go
	c.startRetries() // pending_markers.go
	return c, nil
}

// replay loads every partition, the last record of an id winning.
func (c *Coordinator) replay() error {
	for i, p := range c.parts {
		err := p.Replay(func(off int64, r *kmsg.Record) error {
			id, err := decodeKey(r.Key)
			if err != nil {
				return fmt.Errorf("offset %d: %w", off, err)
			}
			return c.load(id, r.Value)
		})
		if err != nil {
			return fmt.Errorf("txn: replay __transaction_state-%d: %w", i, err)
		}
	}
	return nil
}

// load makes value (nil: a tombstone) id's state. Only Open calls it,
// before the coordinator is shared.
func (c *Coordinator) load(id string, value []byte) error {
	if value == nil { // an expired id (expire.go)
		delete(c.entries, id)
		delete(c.latest, id)
		return nil
	}
	e, err := decodeValue(id, value)
	if err != nil {
		return err
	}
	c.entries[id] = &entry{Entry: e}
	c.latest[id] = slices.Clone(value)
	return nil
}

// recoverEntry completes what a crash interrupted.
func (c *Coordinator) recoverEntry(e *entry) error {
	switch e.Status {
	case Ongoing:
		if e.OffsetsLogged {
			// Everything the transaction holds is in the log: its
			// partitions, groups and staged offsets, and the records
			// in the partitions' logs. The producer carries on as if
			// nothing happened (Kafka keeps it open across a
			// coordinator move too); if it is gone, the transaction
			// times out from its original start.
			c.lg.Info("transaction left open by a restart continues", "transactional_id", e.ID,
				"partitions", len(e.Partitions), "times_out_in", time.Duration(e.StartMs+int64(e.TimeoutMs)-c.opts.Now().UnixMilli())*time.Millisecond)
			return nil
		}
		c.lg.Info("aborting transaction left ongoing by a restart (written by an older version)", "transactional_id", e.ID)
		// Its staged offsets were only in memory. The epoch is bumped
		// (abortFencing): the producer may have lived through the
		// restart and must not carry on as if its transaction were
		// still open, or it would commit half of it.
		if err := c.abortFencing(e); err != nil && !decided(err) {
			return err
		}
	case PrepareCommit, PrepareAbort:
		c.lg.Info("completing transaction interrupted by a restart", "transactional_id", e.ID, "status", e.Status)
		if err := c.complete(e); err != nil && !decided(err) {
			return err
		}
	}
	return nil
}

// Close stops the background checks and waits for appends in flight; a
// transition waiting for durability fails (the partitions belong to the
// broker, which closes them after the coordinator).
func (c *Coordinator) Close() error {
	c.logMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.logMu.Unlock()
	c.cancel()
	<-c.done
	<-c.hkDone
	<-c.retryDone
	c.inflight.Wait()
	return nil
}

// persist makes e's state durable in __transaction_state. Caller holds e.mu.
func (c *Coordinator) persist(e *Entry) error {
	e.OffsetsLogged = true
	v, err := encodeValue(e)
	if err != nil {
		return err
	}
	return c.appendRecord(e.ID, v)
}

// writeWait bounds how long a transition waits for its record to become
// durable.
const writeWait = 30 * time.Second

// appendRecord appends id's record (a nil value is a tombstone: replay
// forgets id) to its partition and waits until it is durable. Caller holds
// id's entry lock, so an id's records are appended and made visible in
// order.
func (c *Coordinator) appendRecord(id string, v []byte) error {
	c.logMu.Lock()
	if c.closed {
		c.logMu.Unlock()
		return ErrClosed
	}
	c.inflight.Add(1)
	c.logMu.Unlock()
	defer c.inflight.Done()
	if err := c.appendDurable(statelog.PartitionFor(id, len(c.parts)), []kmsg.Record{{Key: encodeKey(id), Value: v}}); err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	c.logMu.Lock()
	if v == nil {
		delete(c.latest, id)
	} else {
		c.latest[id] = v
	}
	c.logMu.Unlock()
	return nil
}

// appendDurable appends recs to partition p and waits until they are
// durable.
func (c *Coordinator) appendDurable(p int, recs []kmsg.Record) error {
	_, wait, err := c.parts[p].Append(recs)
	if err != nil {
		return fmt.Errorf("append to __transaction_state-%d: %w", p, err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, writeWait)
	defer cancel()
	if err := wait(ctx); err != nil {
		return fmt.Errorf("__transaction_state-%d: %w", p, err)
	}
	return nil
}

// lookup returns the entry of id, locked, creating it if create is set.
func (c *Coordinator) lookup(id string, create bool) *entry {
	c.mu.Lock()
	e := c.entries[id]
	if e == nil && create {
		e = &entry{Entry: Entry{ID: id, PID: -1, Status: Empty}}
		c.entries[id] = e
	}
	c.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		if e.Status == Dead { // expired while we waited (expire.go)
			e.mu.Unlock()
			return c.lookup(id, create)
		}
	}
	return e
}

// update persists next as e's state and adopts it on success. Caller holds
// e.mu.
func (c *Coordinator) update(e *entry, next Entry) error {
	next.UpdateMs = c.opts.Now().UnixMilli()
	if err := c.persist(&next); err != nil {
		return err
	}
	e.Entry = next
	return nil
}

func clone(e Entry) Entry {
	if e.Marker != nil {
		m := *e.Marker
		e.Marker = &m
	}
	if e.Prev != nil {
		p := *e.Prev
		e.Prev = &p
	}
	e.Partitions = slices.Clone(e.Partitions)
	e.Groups = slices.Clone(e.Groups)
	if e.Offsets != nil {
		m := make(map[string][]Offset, len(e.Offsets))
		for g, o := range e.Offsets {
			m[g] = slices.Clone(o)
		}
		e.Offsets = m
	}
	return e
}

// finish moves an ongoing transaction to Prepare*, writes its markers (and
// offsets on commit), then Complete*. Caller holds e.mu.
func (c *Coordinator) finish(e *entry, commit bool) error {
	next := clone(e.Entry)
	next.Status = PrepareAbort
	if commit {
		next.Status = PrepareCommit
	} else {
		next.Offsets = nil
	}
	if err := c.update(e, next); err != nil {
		return err
	}
	return c.complete(e)
}

// complete writes the markers of a Prepare* transaction and records
// Complete*. Caller holds e.mu. A failure leaves the transaction Prepare*,
// decided: the error is an incompleteError and the id is queued for
// RetryPending (pending_markers.go), unless the coordinator is closing (the
// next Open completes it).
func (c *Coordinator) complete(e *entry) error {
	err := c.writeOutcome(e)
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return c.deferCompletion(e.ID, err)
}

func (c *Coordinator) writeOutcome(e *entry) error {
	commit := e.Status == PrepareCommit
	if len(e.Partitions) > 0 {
		mk := Producer{e.PID, e.Epoch}
		if e.Marker != nil {
			mk = *e.Marker
		}
		if err := c.opts.Markers.WriteMarkers(mk.PID, mk.Epoch, commit, e.Partitions); err != nil {
			return fmt.Errorf("txn: write markers for %q: %w", e.ID, err)
		}
	}
	if commit {
		for _, g := range sortedKeys(e.Offsets) {
			if err := c.opts.Markers.CommitOffsets(g, e.Offsets[g]); err != nil {
				return fmt.Errorf("txn: commit offsets of %q for group %q: %w", e.ID, g, err)
			}
		}
	}
	next := clone(e.Entry)
	next.Status = CompleteAbort
	if commit {
		next.Status = CompleteCommit
	}
	next.Partitions, next.Groups, next.Offsets, next.StartMs, next.Marker = nil, nil, nil, 0, nil
	return c.update(e, next)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// storageErr maps an internal failure to the code clients retry on.
func (c *Coordinator) storageErr(id string, err error) *kerr.Error {
	c.lg.Error("transaction state change failed", "transactional_id", id, "err", err)
	return kerr.CoordinatorNotAvailable
}

// undecidedErr answers a request that found its transaction decided but
// could not finish it now: CONCURRENT_TRANSACTIONS, which clients retry,
// while its markers wait (pending_markers.go); a storage failure otherwise.
func (c *Coordinator) undecidedErr(id string, err error) *kerr.Error {
	if decided(err) {
		return kerr.ConcurrentTransactions
	}
	return c.storageErr(id, err)
}

// every runs f each period (fallback when period is 0) until Close, then
// closes done.
func (c *Coordinator) every(period, fallback time.Duration, done chan struct{}, f func()) {
	defer close(done)
	if period == 0 {
		period = fallback
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			f()
		}
	}
}
