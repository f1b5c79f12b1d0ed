// Package kafka implements the Kafka request handlers of a single broker, one
// file per API key (00_produce.go, 01_fetch.go, ...). Each file opens with its
// behaviour and version notes. The versions table in api.go is the single
// source for ApiVersions and for the version check in dispatch, so what is
// advertised and what is handled cannot drift apart. Its adapters give each
// handler its typed request: immediate for answers made at once, deferred for
// handlers that may wait (their wait runs in the reply's Later, under a
// context that ends when the connection closes or at EndWaits).
//
// Handlers translate: they decode kmsg requests, call the partition layer
// (internal/partition: appends, producer and transaction state, epochs,
// retention and cleaning of one partition) and map its sentinel errors to
// Kafka codes in one place (partitionErr). The Broker owns what spans
// partitions: the topic map, opening and closing partitions by topic, the
// WAL replay at start, the retention, cleaner and producer-expiry sweeps,
// and the metrics.
//
// Lock order: Broker.mu (topic map) -> partition.Partition.mu (see
// internal/partition for what is below it). Fetch sessions:
// fetchSessions.mu -> fetchSession.mu, neither held while reading logs. The
// committer's lock is never held while taking any of these. A transactional
// id's lock (internal/txn) may be held while taking Partition.mu (marker
// writes) and is taken by produce validation with no partition lock held.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"github.com/chronik-stream/chronik/internal/wal"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/clientmetrics"
	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/partition"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configure a Broker.
type Options struct {
	DataDir           string
	NodeID            int32
	AdvertisedHost    string
	AdvertisedPort    int32
	AutoCreateTopics  bool
	DefaultPartitions int32
	// DefaultReplicationFactor is default.replication.factor: the replicas
	// of a topic created without one (0 counts as 1).
	DefaultReplicationFactor int16
	// ReplicaLagMax is replica.lag.time.max.ms: a follower not caught up
	// with its leader for this long leaves the in-sync set (0: 30 s;
	// replication.go).
	ReplicaLagMax time.Duration
	Defaults      metadata.BrokerDefaults
	Logger        *slog.Logger
	// BrokerConfigs are shown by DescribeConfigs for the broker resource
	// (the static values; dynamic ones from the metadata image override the
	// keys in metadata.BrokerConfigDefs, see broker_configs.go).
	BrokerConfigs []BrokerConfig
	// MaxRequestBytes bounds a dynamic message.max.bytes (0: no bound).
	MaxRequestBytes int32
	// OffsetsRetention is the static offsets.retention.minutes (the group
	// coordinator's), which a dynamic broker config may override.
	OffsetsRetention time.Duration
	// InitialRebalanceDelay is the static group.initial.rebalance.delay.ms
	// (the group coordinator's), which a dynamic broker config may override.
	InitialRebalanceDelay time.Duration
	// WAL is the group committer's write-ahead log, replayed by New;
	// WAL2 its second file (nil if none).
	WAL, WAL2 *wal.WAL
	// MaxFetchSessions bounds the fetch session cache (0: Kafka's 1000).
	MaxFetchSessions int
	// Fsync, if set, replaces the segment-file fsync (fault-injection tests).
	Fsync func(*os.File) error
	// DropBehind: partition data fsynced and this many bytes behind its
	// segment's end is dropped from the page cache (0: never; storage).
	DropBehind int64
	// ProducerIDExpiration (producer.id.expiration.ms): a partition forgets
	// an idempotent producer's state after this long without a write from
	// it (checked with the retention sweep). 0 means 24 hours.
	ProducerIDExpiration time.Duration
	// TransactionVersion is the transaction.version feature level
	// advertised in ApiVersions: 2 (KIP-890 part 2: epoch bump per
	// transaction, implicit partition and group enrolment) or 1.
	TransactionVersion int16
	// NoClientTelemetry stops serving (and advertising)
	// GetTelemetrySubscriptions and PushTelemetry (KIP-714);
	// CLIENT_METRICS subscriptions can still be managed.
	NoClientTelemetry bool
	// TelemetryMaxBytes is telemetry.max.bytes (0: Kafka's 1 MiB).
	TelemetryMaxBytes int32
	// MaxOpenFiles bounds the files held by open partitions (0: no
	// bound): the least recently used idle partitions are closed beyond
	// it (partition.Files).
	MaxOpenFiles int
	// RecoveryCheckpointInterval: partitions written to and then idle this
	// long get their clean-shutdown state written (Kafka's
	// log.flush.offset.checkpoint.interval.ms), so a kill finds them
	// trusted. 0 means never.
	RecoveryCheckpointInterval time.Duration
	// NoFetchZeroCopy makes fetches read their batches into memory on
	// every connection, instead of sending them from the segment files
	// with sendfile on plain TCP connections (fetch_zerocopy.go).
	NoFetchZeroCopy bool
}

// BrokerConfig is one broker-level config as DescribeConfigs shows it.
type BrokerConfig struct {
	Name, Value string
	Default     bool // value is the built-in default
	Sensitive   bool
}

// Broker serves Kafka requests on top of the metadata store and the
// partition logs.
type Broker struct {
	opts      Options
	log       *slog.Logger
	meta      *metadata.Store
	committer *commit.Committer
	// headroom is disk space set aside for the first bytes of every
	// segment, buffered without a reservation of their own (storage.Headroom).
	headroom *storage.Headroom
	// dyn is the effective broker settings (static options plus dynamic
	// broker configs), swapped whole after each change (broker_configs.go).
	dyn atomic.Pointer[brokerSettings]

	mu     sync.RWMutex
	topics map[string]*topicState

	pidMu       sync.Mutex
	nextPID     int64
	reservedPID int64

	stats Stats

	// retention is the retention sweep's state (retention.go).
	retention struct {
		segments, bytes atomic.Int64 // deleted so far
		stop            func()       // set by StartRetention
	}
	// cleaner holds the log cleaner's counters (cleaner.go).
	cleaner cleanerState

	// sessions are the incremental fetch sessions (fetch_session.go).
	sessions *fetchSessions

	// groups is the consumer-group coordinator, installed by SetGroups.
	groups atomic.Pointer[group.Coordinator]
	// txns is the transaction coordinator, installed by SetTxn (txn.go).
	txns atomic.Pointer[txn.Coordinator]

	// waits is cancelled by EndWaits: deferred replies (fetch long polls,
	// group waits; see deferred in api.go) answer at once.
	waits    context.Context
	endWaits context.CancelFunc

	// clientMetrics holds the KIP-714 subscriptions and client instances
	// (client_metrics.go).
	clientMetrics *clientmetrics.Manager

	// files bounds the open partitions' files (nil: no bound); its
	// goroutine runs until Close (stopFiles).
	files     *partition.Files
	stopFiles func()
	// stopFollow ends followImage; synced is the image b.topics last
	// matched and closed is set by Close (both under mu).
	stopFollow func()
	synced     *metadata.Image
	closed     bool
	// peers are the clients to other brokers (interbroker.go).
	peers peers
	// repl is the leader side of replication (replication.go), fetch the
	// follower side (fetcher.go); stopRepl ends repl's in-sync checks.
	repl     replication
	fetch    fetchers
	stopRepl func()
}

// Stats are cumulative data counters (for metrics).
type Stats struct {
	recordsIn, bytesIn, recordsOut, bytesOut atomic.Int64
}

// DataStats returns records and record-batch bytes appended by Produce and
// served by Fetch since start.
func (b *Broker) DataStats() (recordsIn, bytesIn, recordsOut, bytesOut int64) {
	return b.stats.recordsIn.Load(), b.stats.bytesIn.Load(), b.stats.recordsOut.Load(), b.stats.bytesOut.Load()
}

// topicState is immutable once published in Broker.topics: changes build a
// new one under Broker.mu and swap it in.
type topicState struct {
	meta  *metadata.Topic
	parts []*partition.Partition // one per partition, open or not
}

// New knows every partition of every topic in the metadata image without
// opening any: a partition is opened (and recovered) on first use. It
// replays the group committer's WAL into the partitions it names, and
// removes partition directories of deleted topics.
func New(opts Options, meta *metadata.Store, committer *commit.Committer) (*Broker, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		opts: opts, log: lg, meta: meta, committer: committer, topics: map[string]*topicState{},
		sessions: newFetchSessions(opts.MaxFetchSessions),
	}
	b.waits, b.endWaits = context.WithCancel(context.Background())
	b.refreshBrokerSettings()
	b.headroom = storage.OpenHeadroom(filepath.Join(opts.DataDir, storage.HeadroomName), headroomBytes, lg)
	im := meta.Image()
	b.clientMetrics = clientmetrics.New(clientmetrics.Options{MaxBytes: opts.TelemetryMaxBytes, Logger: lg.With("component", "client_metrics")})
	b.clientMetrics.SetSubscriptions(im.ClientMetrics)
	if opts.MaxOpenFiles > 0 {
		b.files = partition.NewFiles(opts.MaxOpenFiles, lg.With("component", "partition_files"))
		b.files.SetDataDir(opts.DataDir)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); b.files.Run(ctx, opts.RecoveryCheckpointInterval) }()
		b.stopFiles = func() { cancel(); <-done }
	}
	start := time.Now()
	var nparts int
	for _, t := range im.SortedTopics() {
		ts := &topicState{meta: t}
		b.addParts(ts)
		nparts += len(ts.parts)
		b.topics[t.Name] = ts
	}
	// The WAL may hold acknowledged batches whose segment writes a power
	// loss took; put them back before anything reads the logs.
	if err := b.replayWALs(opts.WAL, opts.WAL2); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.removeOrphans(im); err != nil {
		lg.Warn("could not remove directories of deleted topics", "err", err)
	}
	b.synced = im
	b.repl.lagMax, b.repl.log = opts.ReplicaLagMax, lg.With("component", "replication")
	if b.repl.lagMax <= 0 {
		b.repl.lagMax = defaultReplicaLagMax
	}
	replDone, replStopped := make(chan struct{}), make(chan struct{})
	go func() { defer close(replStopped); b.repl.run(replDone) }()
	b.stopRepl = func() { close(replDone); <-replStopped }
	b.refreshFetchers()
	followCtx, stopFollow := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); b.followImage(followCtx) }()
	b.stopFollow = func() { stopFollow(); <-followed }
	lg.Info("partitions known; each is opened on first use", "topics", len(b.topics), "partitions", nparts,
		"max_open_files", opts.MaxOpenFiles, "duration", time.Since(start).Round(time.Millisecond))
	return b, nil
}

// EndWaits makes deferred replies, waiting now or later, answer at once:
// fetch long polls with what they have, group waits COORDINATOR_NOT_AVAILABLE.
// A graceful shutdown calls it so consumers waiting up to their max wait
// (franz-go 5 s, some clients more) do not hold it that long.
func (b *Broker) EndWaits() { b.endWaits() }

// Close closes every open partition (syncing what was appended and writing
// its clean-shutdown state; a partition unchanged since it was opened
// costs no write).
func (b *Broker) Close() error {
	if b.stopFollow != nil {
		b.stopFollow()
		b.stopFollow = nil
	}
	b.stopFetchers()
	if b.stopRepl != nil {
		b.stopRepl()
		b.stopRepl = nil
	}
	b.closePeers()
	if b.stopFiles != nil {
		b.stopFiles()
		b.stopFiles = nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var parts []*partition.Partition
	for _, ts := range b.topics {
		for _, p := range ts.parts {
			if p.IsOpen() {
				parts = append(parts, p)
			}
		}
	}
	b.topics = map[string]*topicState{}
	start := time.Now()
	// Closing a changed partition costs a few fsyncs (tail, the
	// clean-shutdown marker, the producer snapshot); closing them in
	// parallel lets the disk overlap them. Measured with the 100 idle
	// partitions of the internal topics: 670-850 ms one by one.
	// With many of them, their durable writes are batched: data written
	// without fsyncs and made durable by one syncfs, then markers and
	// snapshots overwritten in place and one more syncfs
	// (storage.CloseBatch), not several fsyncs each.
	var batch *storage.CloseBatch
	if len(parts) >= closeBatchMin {
		batch = storage.NewCloseBatch(b.opts.DataDir)
	}
	errs := make([]error, len(parts)+1)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(closeWorkers, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if batch != nil {
					errs[i] = parts[i].CloseIn(batch)
				} else {
					errs[i] = parts[i].Close()
				}
			}
		}()
	}
	for i := range parts {
		next <- i
	}
	close(next)
	wg.Wait()
	closed := time.Now()
	if batch != nil {
		if err := batch.Commit(); err != nil {
			b.log.Warn("closing partitions: their clean-shutdown state is not durable; they are validated at next start", "err", err)
		}
	}
	b.log.Info("partitions closed", "open", len(parts), "close", closed.Sub(start).Round(time.Millisecond),
		"commit", time.Since(closed).Round(time.Millisecond))
	return errors.Join(errs...)
}

// closeWorkers bounds the partitions closed at once by Close.
const closeWorkers = 16

// closeBatchMin: Close batches the durable writes of at least this many
// open partitions (storage.CloseBatch).
const closeBatchMin = 32

// addParts adds to ts the partitions from len(ts.parts) up to the topic's
// count, without opening them. Caller owns ts.
func (b *Broker) addParts(ts *topicState) {
	t := ts.meta
	for i := int32(len(ts.parts)); i < t.Partitions; i++ {
		ts.parts = append(ts.parts, partition.New(partitionDir(b.opts.DataDir, t.Name, i), b.partitionOptions(t, i), b.files))
	}
}

// partitionOptions are partition i of t's options, with the topic's
// segment configs as they are now (AlterConfigs changes them later through
// Partition.SetSegmentLimits).
func (b *Broker) partitionOptions(t *metadata.Topic, i int32) partition.Options {
	return partition.Options{
		Topic: t.Name, Index: i, TopicID: t.ID,
		Storage: storage.Options{
			SegmentBytes: b.topicInt(t, "segment.bytes"),
			SegmentAge:   time.Duration(b.topicInt(t, "segment.ms")) * time.Millisecond,
			Fsync:        b.opts.Fsync,
			DropBehind:   b.opts.DropBehind,
			Headroom:     b.headroom,
			Logger:       b.log.With("topic", t.Name, "partition", i),
		},
	}
}

// headroomBytes is the most the ballast file holds (storage.OpenHeadroom
// takes at most 1/64 of the free space): 128 MiB stands for the first 1.3
// KiB of each of 100,000 partitions at once; beyond it, segments reserve
// in their own files.
const headroomBytes = 128 << 20

func partitionDir(dataDir, topic string, p int32) string {
	return filepath.Join(dataDir, topic+"-"+strconv.Itoa(int(p)))
}

var partDirRE = regexp.MustCompile(`^(.+)-(\d+)$`)

// removeOrphans deletes partition directories that belong to no topic in the
// image (a DeleteTopics interrupted by a crash, or a partition beyond the
// count).
func (b *Broker) removeOrphans(im *metadata.Image) error {
	entries, err := os.ReadDir(b.opts.DataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		m := partDirRE.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil || strings.HasPrefix(e.Name(), "__cluster_metadata") {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		if t, ok := im.Topics[m[1]]; ok && int32(n) < t.Partitions {
			continue
		}
		if _, err := os.Stat(filepath.Join(b.opts.DataDir, e.Name(), partition.MetaFile)); err != nil {
			continue // not ours
		}
		b.log.Info("removing directory of deleted topic", "dir", e.Name())
		if err := os.RemoveAll(filepath.Join(b.opts.DataDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) topic(name string) *topicState {
	b.mu.RLock()
	ts := b.topics[name]
	b.mu.RUnlock()
	return ts
}

func (b *Broker) topicByID(id metadata.TopicID) *topicState {
	t, ok := b.meta.Image().ByID[id]
	if !ok {
		return nil
	}
	return b.topic(t.Name)
}

// topicName resolves a topic id to the topic's current name.
func (b *Broker) topicName(id [16]byte) (string, bool) {
	t, ok := b.meta.Image().ByID[metadata.TopicID(id)]
	if !ok {
		return "", false
	}
	return t.Name, true
}

// topicFor resolves a request's topic: by id from version 13 of Produce and
// Fetch (topicIDVersion), by name before. nil if unknown.
func (b *Broker) topicFor(version int16, name string, id [16]byte) *topicState {
	if version >= topicIDVersion {
		return b.topicByID(metadata.TopicID(id))
	}
	return b.topic(name)
}

// topicIDVersion is the Produce and Fetch version that names topics by id.
const topicIDVersion = 13

// partition returns partition i of the topic, or nil and the error code to
// answer (UNKNOWN_TOPIC_ID when the request named topics by id). ts may be
// nil.
func (ts *topicState) partition(i int32, version int16) (*partition.Partition, int16) {
	if ts != nil && i >= 0 && int(i) < len(ts.parts) {
		return ts.parts[i], 0
	}
	if version >= topicIDVersion {
		return nil, kerr.UnknownTopicID.Code
	}
	return nil, kerr.UnknownTopicOrPartition.Code
}

func (b *Broker) partition(topic string, p int32) *partition.Partition {
	ts := b.topic(topic)
	if ts == nil || p < 0 || int(p) >= len(ts.parts) {
		return nil
	}
	return ts.parts[p]
}

// Partitions returns the number of partitions this broker leads, open or
// not (for metrics; a broker alone leads all).
func (b *Broker) Partitions() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for _, ts := range b.topics {
		for i := range ts.parts {
			if b.leads(ts.meta, int32(i)) {
				n++
			}
		}
	}
	return n
}

// OpenFiles returns the open-file budget's counts (zero without a budget).
func (b *Broker) OpenFiles() partition.FilesStats {
	if b.files == nil {
		return partition.FilesStats{}
	}
	return b.files.Stats()
}

// TopicSizes returns the on-disk log size per topic.
func (b *Broker) TopicSizes() map[string]int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[string]int64, len(b.topics))
	for name, ts := range b.topics {
		var n int64
		for _, p := range ts.parts {
			n += p.Size()
		}
		out[name] = n
	}
	return out
}

// topicConfig returns the effective value of a topic config.
func (b *Broker) topicConfig(t *metadata.Topic, name string) string {
	if v, ok := t.Configs[name]; ok {
		return v
	}
	return b.settings().defaults[name]
}

// Versions implements wire.Handler.
func (b *Broker) Versions(key int16) (int16, int16, bool) {
	v, ok := versions[key]
	if !ok || !b.serves(key) {
		return 0, 0, false
	}
	return v.min, v.max, ok
}

// serves reports whether a key of the versions table is served with this
// broker's options (the KIP-714 telemetry APIs can be turned off).
func (b *Broker) serves(key int16) bool {
	switch key {
	case kmsg.GetTelemetrySubscriptions.Int16(), kmsg.PushTelemetry.Int16():
		return !b.opts.NoClientTelemetry
	}
	return true
}

// UnsupportedVersion implements wire.Handler: only ApiVersions has an answer.
func (b *Broker) UnsupportedVersion(key, version int16) kmsg.Response {
	if key != kmsg.ApiVersions.Int16() {
		return nil
	}
	resp := b.apiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	return resp
}

// Handle implements wire.Handler.
func (b *Broker) Handle(ctx context.Context, req *wire.Request) (wire.Reply, error) {
	v, ok := versions[req.Key]
	if !ok || !b.serves(req.Key) {
		return wire.Reply{}, fmt.Errorf("kafka: no handler for key %d", req.Key)
	}
	return v.handle(b, ctx, req)
}

// errCode returns the Kafka code of err, for per-partition answers.
func errCode(err *kerr.Error) int16 {
	if err == nil {
		return 0
	}
	return err.Code
}

// topicInt returns an integer topic config (validated when set).
func (b *Broker) topicInt(t *metadata.Topic, name string) int64 {
	n, _ := strconv.ParseInt(b.topicConfig(t, name), 10, 64)
	return n
}

// clientHost is a member's host as Kafka reports it in DescribeGroups
// ("/127.0.0.1"), from the connection the request came on.
func clientHost(req *wire.Request) string {
	if req.Conn == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(req.Conn.Remote)
	if err != nil {
		return ""
	}
	return "/" + host
}
