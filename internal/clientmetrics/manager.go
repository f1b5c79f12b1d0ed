package clientmetrics

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"hash/crc32"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

const (
	// DefaultMaxBytes is Kafka's telemetry.max.bytes default.
	DefaultMaxBytes = 1 << 20
	// maxInstances bounds the client instance cache (Kafka: 16384).
	maxInstances = 16384
	// minExpiry: an instance not heard from for max(minExpiry, 3 push
	// intervals) is forgotten, with its series (Kafka: 60 s).
	minExpiry = time.Minute
	// sweepEvery bounds how often a request or a scrape scans the cache for
	// expired instances.
	sweepEvery = time.Second
	// decompressedFactor bounds a push's decompressed size relative to
	// telemetry.max.bytes (OTLP compresses ~5-10x).
	decompressedFactor = 32
)

// AcceptedCompression are the codecs GetTelemetrySubscriptions offers, in
// Kafka's order of preference (zstd, lz4, gzip, snappy).
var AcceptedCompression = []int8{storage.CodecZstd, storage.CodecLZ4, storage.CodecGzip, storage.CodecSnappy}

// Options configure a Manager.
type Options struct {
	MaxBytes int32 // telemetry.max.bytes; 0 means DefaultMaxBytes
	Logger   *slog.Logger
	Now      func() time.Time // tests
	// MaxSeries and MaxSeriesPerInstance bound the exported series (0:
	// defaults, see series.go).
	MaxSeries, MaxSeriesPerInstance int
}

// Client is what the broker knows of a requesting connection.
type Client struct {
	ClientID, SoftwareName, SoftwareVersion string
	SourceAddress, SourcePort               string
}

// Subscribed is a GetTelemetrySubscriptions answer.
type Subscribed struct {
	InstanceID     [16]byte
	SubscriptionID int32
	IntervalMs     int32
	Metrics        []string // nil: none; [""]: all
	MaxBytes       int32
}

// Push is a PushTelemetry request's content.
type Push struct {
	InstanceID     [16]byte
	SubscriptionID int32
	Terminating    bool
	Compression    int8
	Metrics        []byte
}

// Manager keeps the subscriptions, the client instances and their exported
// series. It is safe for concurrent use; one mutex guards everything (the
// work per request is small and bounded).
type Manager struct {
	maxBytes int32
	log      *slog.Logger
	now      func() time.Time

	mu            sync.Mutex
	subs          map[string]*Subscription
	version       int // bumped on every subscription change
	instances     map[[16]byte]*list.Element
	lru           *list.List // of *instance, most recent at the front
	lastSweep     time.Time
	evictedLogged time.Time
	series        seriesStore
}

type instance struct {
	id          [16]byte
	attrs       map[string]string
	clientID    string
	version     int
	subID       int32
	metrics     []string
	intervalMs  int32
	lastGet     time.Time
	lastPush    time.Time
	lastSeen    time.Time
	terminating bool
	lastErr     int16
}

// New returns a Manager with no subscriptions.
func New(opts Options) *Manager {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Manager{
		maxBytes: opts.MaxBytes, log: opts.Logger, now: opts.Now,
		subs: map[string]*Subscription{}, instances: map[[16]byte]*list.Element{}, lru: list.New(),
	}
	m.series.init(opts.MaxSeries, opts.MaxSeriesPerInstance, opts.Logger)
	return m
}

// SetSubscriptions replaces every subscription (at start, from the
// metadata image). Invalid entries are skipped with a log line.
func (m *Manager) SetSubscriptions(all map[string]map[string]string) {
	subs := make(map[string]*Subscription, len(all))
	for name, cfg := range all {
		s, err := Parse(name, cfg)
		if err != nil {
			m.log.Warn("ignoring invalid client metrics subscription", "name", name, "err", err)
			continue
		}
		subs[name] = s
	}
	m.mu.Lock()
	m.subs = subs
	m.version++
	m.mu.Unlock()
}

// Update sets (or, with empty configs, removes) one subscription; the
// configs must have passed Parse.
func (m *Manager) Update(name string, configs map[string]string) {
	s, err := Parse(name, configs)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || len(configs) == 0 {
		if _, ok := m.subs[name]; !ok {
			return
		}
		delete(m.subs, name)
	} else {
		m.subs[name] = s
	}
	m.version++
}

// Names lists the subscriptions, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.subs))
	for n := range m.subs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get answers GetTelemetrySubscriptions: a zero instance id is assigned a
// new one. The error code is THROTTLING_QUOTA_EXCEEDED when the client asks
// again before its push interval passed (unless its subscription changed or
// its last push failed with UNKNOWN_SUBSCRIPTION_ID or
// UNSUPPORTED_COMPRESSION_TYPE).
func (m *Manager) Get(id [16]byte, c Client) (Subscribed, int16) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	if id == ([16]byte{}) {
		id = m.newIDLocked()
	}
	in := m.instanceLocked(id, c, now)
	lastReq := in.lastGet
	if in.lastPush.After(lastReq) {
		lastReq = in.lastPush
	}
	early := !lastReq.IsZero() && now.Sub(lastReq) < time.Duration(in.intervalMs)*time.Millisecond
	if early && in.lastErr != kerr.UnknownSubscriptionID.Code && in.lastErr != kerr.UnsupportedCompressionType.Code {
		return Subscribed{}, kerr.ThrottlingQuotaExceeded.Code
	}
	in.lastGet = now
	in.lastErr = 0
	s := Subscribed{InstanceID: id, SubscriptionID: in.subID, IntervalMs: in.intervalMs, MaxBytes: m.maxBytes}
	if slices.Contains(in.metrics, AllMetrics) {
		// The message spec's "all metrics" is one empty prefix; Kafka
		// sends "*", which franz-go reads as a literal prefix. An
		// empty prefix also selects everything in the Java client and
		// librdkafka (prefix matching).
		s.Metrics = []string{""}
	} else if len(in.metrics) > 0 {
		s.Metrics = slices.Clone(in.metrics)
	}
	return s, 0
}

// PushResult tells the caller what a push carried, for logging.
type PushResult struct {
	Points int // data points exported
}

// Push answers PushTelemetry, exporting the decoded metrics. Checks in
// Kafka's order: reserved instance id (INVALID_REQUEST), a push after a
// terminating one (INVALID_REQUEST), too early unless terminating
// (THROTTLING_QUOTA_EXCEEDED), a stale subscription id
// (UNKNOWN_SUBSCRIPTION_ID), an unknown codec (UNSUPPORTED_COMPRESSION_TYPE),
// a payload above telemetry.max.bytes (TELEMETRY_TOO_LARGE); a payload that
// does not decompress or decode is INVALID_RECORD.
func (m *Manager) Push(p Push, c Client) (PushResult, int16) {
	if p.InstanceID == ([16]byte{}) || p.InstanceID == metadataTopicID {
		return PushResult{}, kerr.InvalidRequest.Code
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	in := m.instanceLocked(p.InstanceID, c, now)
	code := m.checkPushLocked(in, p, now)
	in.terminating = p.Terminating
	if code != 0 {
		in.lastErr = code
		return PushResult{}, code
	}
	var res PushResult
	if len(p.Metrics) > 0 {
		data, err := storage.DecompressLimit(p.Compression, p.Metrics, int(m.maxBytes)*decompressedFactor)
		if err == nil {
			var points []point
			points, err = decode(data)
			if err == nil {
				res.Points = m.series.update(in, points, now)
			}
		}
		if err != nil {
			m.log.Debug("undecodable client telemetry", "client_instance_id", instanceString(in.id), "err", err)
			in.lastErr = kerr.InvalidRecord.Code
			return PushResult{}, kerr.InvalidRecord.Code
		}
	}
	in.lastErr = 0
	return res, 0
}

func (m *Manager) checkPushLocked(in *instance, p Push, now time.Time) int16 {
	if in.terminating {
		return kerr.InvalidRequest.Code
	}
	// A push right after a Get is accepted early: clients jitter their
	// first push between 0.5 and 1.5 intervals.
	ok := in.lastGet.After(in.lastPush) || in.lastPush.IsZero() ||
		now.Sub(in.lastPush) >= time.Duration(in.intervalMs)*time.Millisecond
	if ok {
		in.lastPush = now
	} else if !p.Terminating {
		return kerr.ThrottlingQuotaExceeded.Code
	}
	if p.SubscriptionID != in.subID {
		return kerr.UnknownSubscriptionID.Code
	}
	if p.Compression < storage.CodecNone || p.Compression > storage.CodecZstd {
		return kerr.UnsupportedCompressionType.Code
	}
	if len(p.Metrics) > int(m.maxBytes) {
		return kerr.TelemetryTooLarge.Code
	}
	return 0
}

// metadataTopicID is Kafka's other reserved Uuid (0, 1), never an instance.
var metadataTopicID = [16]byte{15: 1}

// instanceLocked returns the cached instance of id, creating it (or
// recomputing its subscription when the subscriptions changed since), and
// marks it used now.
func (m *Manager) instanceLocked(id [16]byte, c Client, now time.Time) *instance {
	var in *instance
	if e, ok := m.instances[id]; ok {
		in = e.Value.(*instance)
		m.lru.MoveToFront(e)
		if in.version != m.version {
			// Kafka replaces the instance: timestamps and the
			// terminating flag start over with the new subscription.
			fresh := m.newInstanceLocked(id, in.attrs, in.clientID)
			if !slices.Equal(fresh.metrics, in.metrics) {
				// Series of metrics no longer subscribed would
				// stay forever (a client with no metrics still
				// asks every interval, so it never expires).
				m.series.drop(id)
			}
			e.Value = fresh
			in = fresh
		}
	} else {
		attrs := map[string]string{MatchInstanceID: instanceString(id), MatchClientID: c.ClientID}
		for k, v := range map[string]string{MatchSoftwareName: c.SoftwareName, MatchSoftwareVersion: c.SoftwareVersion,
			MatchSourceAddress: c.SourceAddress, MatchSourcePort: c.SourcePort} {
			if v != "" {
				attrs[k] = v
			}
		}
		in = m.newInstanceLocked(id, attrs, c.ClientID)
		m.instances[id] = m.lru.PushFront(in)
		if m.lru.Len() > maxInstances {
			old := m.lru.Remove(m.lru.Back()).(*instance)
			delete(m.instances, old.id)
			m.series.drop(old.id)
			if now.Sub(m.evictedLogged) > 5*time.Minute {
				m.evictedLogged = now
				m.log.Warn("client metrics instance cache full, evicting the least recently seen", "capacity", maxInstances)
			}
		}
	}
	in.lastSeen = now
	return in
}

func (m *Manager) newInstanceLocked(id [16]byte, attrs map[string]string, clientID string) *instance {
	in := &instance{id: id, attrs: attrs, clientID: clientID, version: m.version, intervalMs: DefaultIntervalMs}
	set := map[string]bool{}
	for _, s := range m.subs {
		if !s.Matches(attrs) {
			continue
		}
		for _, name := range s.Metrics {
			set[name] = true
		}
		in.intervalMs = min(in.intervalMs, s.IntervalMs)
	}
	if set[AllMetrics] {
		in.metrics = []string{AllMetrics}
	} else {
		for name := range set {
			in.metrics = append(in.metrics, name)
		}
		sort.Strings(in.metrics)
	}
	in.subID = subscriptionID(in.metrics, in.intervalMs, id)
	return in
}

// subscriptionID identifies an instance's subscription set: a CRC-32C of
// the sorted metric prefixes and the interval, XORed with a hash of the
// instance id (Kafka's scheme). It is deterministic, so a client whose
// instance this broker forgot (a restart, an expiry) keeps pushing with
// the same id as long as its subscriptions did not change.
func subscriptionID(metrics []string, intervalMs int32, id [16]byte) int32 {
	b := []byte(strings.Join(metrics, ",") + "|" + strconv.Itoa(int(intervalMs)))
	crc := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	h := fnv.New32a()
	h.Write(id[:])
	return int32(crc ^ h.Sum32())
}

func (m *Manager) newIDLocked() [16]byte {
	for {
		var id [16]byte
		rand.Read(id[:])
		if _, taken := m.instances[id]; !taken && id != ([16]byte{}) && id != metadataTopicID {
			return id
		}
	}
}

// sweepLocked forgets instances not seen for max(minExpiry, 3 intervals),
// at most once per sweepEvery.
func (m *Manager) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < sweepEvery {
		return
	}
	m.lastSweep = now
	for e := m.lru.Back(); e != nil; {
		prev := e.Prev()
		in := e.Value.(*instance)
		if now.Sub(in.lastSeen) >= max(minExpiry, 3*time.Duration(in.intervalMs)*time.Millisecond) {
			m.lru.Remove(e)
			delete(m.instances, in.id)
			m.series.drop(in.id)
		}
		e = prev
	}
}

// Instances is the number of cached client instances.
func (m *Manager) Instances() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(m.now())
	return m.lru.Len()
}

// instanceString is Kafka's Uuid text form (base64url, no padding).
func instanceString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }
