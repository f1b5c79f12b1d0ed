// Package config holds chronik-server's user-facing settings: defaults, the
// TOML config file, CHRONIK_* environment variables and command-line flags,
// applied in that order of precedence (later wins), then validated.
//
// Every setting is declared once in the settings table below; the flag name,
// the environment variable, the file key, the default and the parser all come
// from that one row, so the three ways of setting a value cannot drift apart.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/chronik-stream/chronik/internal/metadata"
)

// Config is every setting of a broker.
type Config struct {
	DataDir  string
	LogLevel slog.Level

	Bind        string
	KafkaPort   int
	Advertise   string // host or host:port clients should dial; default 127.0.0.1 when bound to 0.0.0.0
	MetricsPort int    // -1 disables the HTTP listener
	NodeID      int32

	// Listeners is Kafka's listeners: NAME://HOST:PORT of the Kafka
	// listener to bind (one, PLAINTEXT, for now). Empty: PLAINTEXT on
	// Bind:KafkaPort. See KafkaListener.
	Listeners string
	// AdvertisedListeners is Kafka's advertised.listeners: what the broker
	// registers and tells clients. Empty: the listener, with Advertise or
	// the bind-address rule for its host. See AdvertisedListener.
	AdvertisedListeners string
	// ClusterPeers are the metadata quorum's voters, id@host:port,...
	// (each node's Raft and controller address). Empty: a broker alone.
	ClusterPeers string
	// BrokerRack is broker.rack.
	BrokerRack string

	ProduceProfile Profile

	AutoCreateTopics  bool
	DefaultPartitions int32
	MaxRequestBytes   int32 // socket.request.max.bytes
	MessageMaxBytes   int32 // message.max.bytes (broker default for max.message.bytes)
	SegmentBytes      int64 // log.segment.bytes
	SegmentAge        time.Duration
	RetentionAge      time.Duration // log.retention.ms (topic retention.ms default)
	RetentionBytes    int64         // log.retention.bytes
	RetentionCheck    time.Duration // log.retention.check.interval.ms: retention sweep interval

	ShutdownTimeout time.Duration
	EnablePprof     bool // serve /debug/pprof on the metrics port
	GroupCommitWAL  bool // small multi-partition fsync rounds go through one write-ahead log

	OffsetsRetention time.Duration // offsets.retention.minutes: committed offsets of empty groups expire
	// offsets.topic.num.partitions: partitions of __consumer_offsets when
	// it is created (an existing topic keeps its count).
	OffsetsTopicPartitions int32
	// TransactionStateLogPartitions is transaction.state.log.num.partitions:
	// partitions of __transaction_state, used when it is created.
	TransactionStateLogPartitions int32
	// group.initial.rebalance.delay.ms: the first rebalance of an empty
	// classic group waits this long for more members (0: none).
	GroupInitialRebalanceDelay time.Duration
	// transactional.id.expiration.ms: idle transactional ids are forgotten.
	TransactionalIDExpiration time.Duration
	// producer.id.expiration.ms: a partition forgets an idempotent
	// producer's sequence state after this long without a write from it.
	ProducerIDExpiration time.Duration
	// KIP-848 consumer groups: group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms.
	ConsumerGroupSessionTimeout, ConsumerGroupHeartbeatInterval time.Duration
	// BrokerSessionTimeout (broker.session.timeout.ms): the controller
	// fences a broker whose heartbeats stop this long;
	// BrokerHeartbeatInterval (broker.heartbeat.interval.ms) is how often a
	// broker sends them.
	BrokerSessionTimeout, BrokerHeartbeatInterval time.Duration
	// DefaultReplicationFactor (default.replication.factor): replicas of a
	// topic created without a replication factor (and auto-created ones).
	DefaultReplicationFactor int32
	// ReplicaLagMax (replica.lag.time.max.ms): a follower not caught up
	// with its leader for this long leaves the in-sync set.
	ReplicaLagMax time.Duration
	// TransactionVersion is the transaction.version feature level (1 or 2).
	TransactionVersion int
	// DropBehind: fsynced partition data this far behind the end is
	// dropped from the page cache (0: never).
	DropBehind int64
	// ClientMetrics serves the KIP-714 telemetry APIs
	// (GetTelemetrySubscriptions, PushTelemetry); TelemetryMaxBytes is
	// telemetry.max.bytes, the largest push accepted.
	ClientMetrics     bool
	TelemetryMaxBytes int32
	// MaxConnections (max.connections) and MaxConnectionsPerIP
	// (max.connections.per.ip) bound open Kafka connections; beyond them
	// a new connection is accepted and closed at once. 0 is unlimited.
	MaxConnections, MaxConnectionsPerIP int
	// MaxOpenFiles bounds the files open partitions hold; beyond it the
	// least recently used idle partitions are closed (reopened on use).
	// 0 derives it from the open-file limit, leaving a quarter of it (and
	// at least --max-connections plus 256) for connections, the WAL and
	// the metadata log.
	MaxOpenFiles int
	// RecoveryCheckpointInterval (log.flush.offset.checkpoint.interval.ms):
	// partitions written to and then idle this long get their
	// clean-shutdown state written, so a kill finds them trusted (0: never).
	RecoveryCheckpointInterval time.Duration
	// FetchZeroCopy sends fetched batches from the segment files with
	// sendfile on plain TCP connections; false reads them into memory.
	FetchZeroCopy bool
}

// Default returns the settings of `chronik-server start` with nothing set.
func Default() Config {
	return Config{
		DataDir:                        "./data",
		LogLevel:                       slog.LevelInfo,
		Bind:                           "0.0.0.0",
		KafkaPort:                      9092,
		MetricsPort:                    9093,
		NodeID:                         1,
		ProduceProfile:                 ProfileHighThroughput,
		AutoCreateTopics:               true,
		DefaultPartitions:              3,
		MaxRequestBytes:                100 << 20,
		MessageMaxBytes:                1048588,
		SegmentBytes:                   1 << 30,
		SegmentAge:                     7 * 24 * time.Hour,
		RetentionAge:                   7 * 24 * time.Hour,
		RetentionBytes:                 -1,
		RetentionCheck:                 30 * time.Second,
		ShutdownTimeout:                30 * time.Second,
		GroupCommitWAL:                 true,
		OffsetsRetention:               7 * 24 * time.Hour,
		OffsetsTopicPartitions:         50,
		TransactionStateLogPartitions:  50,
		GroupInitialRebalanceDelay:     3 * time.Second,
		TransactionalIDExpiration:      7 * 24 * time.Hour,
		ProducerIDExpiration:           24 * time.Hour,
		ConsumerGroupSessionTimeout:    45 * time.Second,
		BrokerSessionTimeout:           9 * time.Second,
		DefaultReplicationFactor:       1,
		ReplicaLagMax:                  30 * time.Second,
		BrokerHeartbeatInterval:        2 * time.Second,
		ConsumerGroupHeartbeatInterval: 5 * time.Second,
		TransactionVersion:             2,
		DropBehind:                     64 << 20,
		ClientMetrics:                  true,
		TelemetryMaxBytes:              1 << 20,
		RecoveryCheckpointInterval:     time.Minute,
		FetchZeroCopy:                  true,
	}
}

// KafkaAddr is the address the Kafka listener binds.
func (c *Config) KafkaAddr() string { return c.KafkaListener().Addr() }

// KafkaListener is the Kafka listener to bind: the one of --listeners, or
// PLAINTEXT on --bind and --kafka-port.
func (c *Config) KafkaListener() Listener {
	if ls, err := ParseListeners(c.Listeners); err == nil && len(ls) > 0 {
		return ls[0]
	}
	return Listener{Name: PlaintextListener, Host: c.Bind, Port: c.KafkaPort}
}

// AdvertisedListener is what the broker registers and Metadata tells
// clients to dial. port is the actual bound port (it differs from the
// listener's when that is 0). Without --advertised-listeners it is the
// listener with --advertise's host (and port), or the listener's host
// (127.0.0.1 for a wildcard); an advertised listener with an empty host
// takes that host, one with port 0 the bound port.
func (c *Config) AdvertisedListener(port int) Listener {
	ln := c.KafkaListener()
	host := ln.Host
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	if ls, err := ParseListeners(c.AdvertisedListeners); err == nil && len(ls) > 0 {
		a := ls[0]
		if a.Host == "" {
			a.Host = host
		}
		if a.Port == 0 {
			a.Port = port
		}
		return a
	}
	adv := Listener{Name: ln.Name, Host: host, Port: port}
	if c.Advertise == "" {
		return adv
	}
	if h, p, err := net.SplitHostPort(c.Advertise); err == nil {
		adv.Host, adv.Port = h, 0
		adv.Port, _ = strconv.Atoi(p) // validated in Validate
		return adv
	}
	adv.Host = c.Advertise
	return adv
}

// AdvertisedHostPort is AdvertisedListener's host and port.
func (c *Config) AdvertisedHostPort(port int) (string, int32) {
	a := c.AdvertisedListener(port)
	return a.Host, int32(a.Port)
}

// Peers are the metadata quorum's voters of --cluster-peers (nil: a broker
// alone). Validate has checked them.
func (c *Config) Peers() []metadata.Peer {
	ps, err := metadata.ParsePeers(c.ClusterPeers)
	if err != nil || len(ps) == 0 {
		return nil
	}
	return ps
}

// PlaintextListener is the listener name (and security protocol) of plain
// TCP Kafka connections, the only kind served yet.
const PlaintextListener = "PLAINTEXT"

// Listener is one Kafka listener, NAME://HOST:PORT. An empty host binds
// every interface.
type Listener struct {
	Name string
	Host string
	Port int
}

// Addr is HOST:PORT.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// ParseListeners parses Kafka's listener list, NAME://HOST:PORT[,...]
// (names are upper-cased, as Kafka's listener names are
// case-insensitive). Empty: none.
func ParseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, addr, ok := strings.Cut(f, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("listener %q: want NAME://HOST:PORT, e.g. PLAINTEXT://0.0.0.0:9092", f)
		}
		name = strings.ToUpper(name)
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listener %q: want NAME://HOST:PORT (an empty HOST binds every interface): %v", f, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("listener %q: port %q is not a TCP port (0-65535)", f, p)
		}
		if strings.ContainsAny(host, " /") || strings.ContainsAny(name, " /:") {
			return nil, fmt.Errorf("listener %q: want NAME://HOST:PORT", f)
		}
		if seen[name] {
			return nil, fmt.Errorf("listener %q: name %s given twice", f, name)
		}
		seen[name] = true
		out = append(out, Listener{Name: name, Host: host, Port: port})
	}
	return out, nil
}

// checkListeners validates --listeners or --advertised-listeners: one
// PLAINTEXT listener for now.
func checkListeners(s string) ([]Listener, error) {
	ls, err := ParseListeners(s)
	if err != nil {
		return nil, err
	}
	if len(ls) > 1 {
		return nil, fmt.Errorf("%q names %d listeners; only one (PLAINTEXT) is supported yet", s, len(ls))
	}
	for _, l := range ls {
		if l.Name != PlaintextListener {
			return nil, fmt.Errorf("listener %s: only PLAINTEXT listeners are supported; TLS and SASL listeners (SSL, SASL_PLAINTEXT, SASL_SSL or other names mapped to them) are not supported yet", l)
		}
	}
	return ls, nil
}

// Validate checks cross-field rules and ranges; the message names the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.KafkaPort < 0 || c.KafkaPort > 65535 {
		bad("kafka-port", "%d is not a TCP port (0-65535)", c.KafkaPort)
	}
	if c.MetricsPort < -1 || c.MetricsPort > 65535 {
		bad("metrics-port", "%d is not a TCP port (0-65535, or -1 to disable)", c.MetricsPort)
	}
	if c.Listeners != "" {
		if _, err := checkListeners(c.Listeners); err != nil {
			bad("listeners", "%v", err)
		} else if c.KafkaPort != Default().KafkaPort {
			bad("listeners", "cannot be combined with kafka-port (%d): give the port in --listeners (PLAINTEXT://HOST:PORT) and drop --kafka-port", c.KafkaPort)
		}
	}
	if c.AdvertisedListeners != "" {
		if _, err := checkListeners(c.AdvertisedListeners); err != nil {
			bad("advertised-listeners", "%v", err)
		} else if c.Advertise != "" {
			bad("advertised-listeners", "cannot be combined with advertise (%q): give the host and port in --advertised-listeners and drop --advertise", c.Advertise)
		}
	}
	if kp := c.KafkaListener().Port; c.MetricsPort > 0 && c.MetricsPort == kp {
		bad("metrics-port", "must differ from the Kafka port, kafka-port or listeners (%d)", kp)
	}
	if net.ParseIP(c.Bind) == nil && c.Bind != "localhost" {
		bad("bind", "%q is not an IP address", c.Bind)
	}
	if c.Advertise != "" {
		if h, p, err := net.SplitHostPort(c.Advertise); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 || h == "" {
				bad("advertise", "%q: want HOST or HOST:PORT", c.Advertise)
			}
		} else if strings.ContainsAny(c.Advertise, " /") {
			bad("advertise", "%q: want HOST or HOST:PORT", c.Advertise)
		}
	}
	if c.NodeID < 0 {
		bad("node-id", "%d must be >= 0", c.NodeID)
	}
	if peers, err := metadata.ParsePeers(c.ClusterPeers); err != nil {
		bad("cluster-peers", "%v (want id@host:port,... naming every voter of the metadata quorum)", err)
	} else if len(peers) > 0 {
		var self *metadata.Peer
		for i := range peers {
			if peers[i].ID == c.NodeID {
				self = &peers[i]
			}
		}
		if self == nil {
			bad("cluster-peers", "%q does not contain this broker's node-id %d: list every voter, this broker included, and give each broker its own --node-id from the list",
				c.ClusterPeers, c.NodeID)
		} else if _, p, _ := net.SplitHostPort(self.Addr); p != "0" && (p == strconv.Itoa(c.KafkaListener().Port) || p == strconv.Itoa(c.MetricsPort)) {
			bad("cluster-peers", "node %d's cluster address %s must use a port of its own, not the Kafka or metrics port", c.NodeID, self.Addr)
		}
	}
	if c.DefaultReplicationFactor < 1 || c.DefaultReplicationFactor > 32767 {
		bad("default-replication-factor", "%d must be between 1 and 32767", c.DefaultReplicationFactor)
	}
	if c.ReplicaLagMax < 100*time.Millisecond {
		bad("replica-lag-time-max-ms", "%v must be at least 100ms", c.ReplicaLagMax)
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > 100000 {
		bad("num-partitions", "%d must be between 1 and 100000", c.DefaultPartitions)
	}
	if c.MaxRequestBytes < 1024 {
		bad("socket-request-max-bytes", "%d must be at least 1024", c.MaxRequestBytes)
	}
	if c.MessageMaxBytes < 64 || c.MessageMaxBytes > c.MaxRequestBytes {
		bad("message-max-bytes", "%d must be between 64 and socket-request-max-bytes (%d)", c.MessageMaxBytes, c.MaxRequestBytes)
	}
	if c.SegmentBytes < 14 || c.SegmentBytes > 1<<31-1 {
		bad("log-segment-bytes", "%d must be between 14 and 2147483647", c.SegmentBytes)
	}
	if c.SegmentAge < time.Millisecond {
		bad("log-segment-ms", "must be at least 1ms")
	}
	if c.BrokerHeartbeatInterval < 100*time.Millisecond || c.BrokerSessionTimeout <= c.BrokerHeartbeatInterval {
		bad("broker-heartbeat-interval-ms", "%v must be at least 100ms and below broker-session-timeout-ms (%v)",
			c.BrokerHeartbeatInterval, c.BrokerSessionTimeout)
	}
	if c.ConsumerGroupHeartbeatInterval < 100*time.Millisecond || c.ConsumerGroupSessionTimeout <= c.ConsumerGroupHeartbeatInterval {
		bad("group-consumer-heartbeat-interval-ms", "%v must be at least 100ms and below group-consumer-session-timeout-ms (%v)",
			c.ConsumerGroupHeartbeatInterval, c.ConsumerGroupSessionTimeout)
	}
	if c.DropBehind < 0 {
		bad("log-drop-behind-bytes", "must be 0 (off) or a number of bytes")
	}
	if c.TransactionVersion < 1 || c.TransactionVersion > 2 {
		bad("transaction-version", "%d is not 1 or 2", c.TransactionVersion)
	}
	if c.OffsetsTopicPartitions < 1 || c.OffsetsTopicPartitions > 10000 {
		bad("offsets-topic-num-partitions", "%d is not 1-10000", c.OffsetsTopicPartitions)
	}
	if c.TransactionStateLogPartitions < 1 || c.TransactionStateLogPartitions > 10000 {
		bad("transaction-state-log-num-partitions", "%d is not 1-10000", c.TransactionStateLogPartitions)
	}
	if c.OffsetsRetention < time.Minute {
		bad("offsets-retention-minutes", "must be at least 1")
	}
	if c.GroupInitialRebalanceDelay < 0 || c.GroupInitialRebalanceDelay.Milliseconds() > 1<<31-1 {
		bad("group-initial-rebalance-delay-ms", "%v must be between 0 and 2147483647 ms", c.GroupInitialRebalanceDelay)
	}
	if c.ProducerIDExpiration < time.Millisecond {
		bad("producer-id-expiration-ms", "must be at least 1ms")
	}
	if c.TransactionalIDExpiration < time.Millisecond {
		bad("transactional-id-expiration-ms", "must be at least 1ms")
	}
	if c.RetentionCheck < time.Millisecond {
		bad("log-retention-check-interval-ms", "must be at least 1ms")
	}
	if c.TelemetryMaxBytes < 1 {
		bad("telemetry-max-bytes", "%d must be at least 1", c.TelemetryMaxBytes)
	}
	if c.MaxConnections < 0 {
		bad("max-connections", "%d must be 0 (unlimited) or positive", c.MaxConnections)
	}
	if c.MaxOpenFiles < 0 {
		bad("max-open-files", "%d must be 0 (derived from the open-file limit) or positive", c.MaxOpenFiles)
	}
	if c.RecoveryCheckpointInterval < 0 {
		bad("log-flush-offset-checkpoint-interval-ms", "%v must be 0 (never) or positive", c.RecoveryCheckpointInterval)
	}
	if c.MaxConnectionsPerIP < 0 {
		bad("max-connections-per-ip", "%d must be 0 (unlimited) or positive", c.MaxConnectionsPerIP)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive")
	}
	return errors.Join(errs...)
}
