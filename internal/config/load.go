package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// setting is one row of the settings table: a flag (plus aliases), its
// CHRONIK_* environment variables, the config-file key and how to parse it.
type setting struct {
	flags []string // first is the canonical name; the file key is it with '-' -> '_'
	envs  []string
	usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string
	// isBool lets the flag stand alone (--auto-create-topics means true);
	// a false value must then be written --flag=false.
	isBool bool
}

func (s *setting) key() string { return strings.ReplaceAll(s.flags[0], "-", "_") }

func intSetting(dst func(*Config) *int) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			*dst(c) = n
			return nil
		}, func(c *Config) string {
			return strconv.Itoa(*dst(c))
		}
}

func int64Setting(dst func(*Config) *int64) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			*dst(c) = n
			return nil
		}, func(c *Config) string {
			return strconv.FormatInt(*dst(c), 10)
		}
}

func int32Setting(dst func(*Config) *int32) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil {
				return fmt.Errorf("%q is not a 32-bit integer", v)
			}
			*dst(c) = int32(n)
			return nil
		}, func(c *Config) string {
			return strconv.FormatInt(int64(*dst(c)), 10)
		}
}

// msSetting parses milliseconds (Kafka's unit) or a Go duration ("10s").
func msSetting(dst func(*Config) *time.Duration) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				*dst(c) = time.Duration(n) * time.Millisecond
				return nil
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is neither milliseconds nor a duration like 30s", v)
			}
			*dst(c) = d
			return nil
		}, func(c *Config) string {
			return strconv.FormatInt(dst(c).Milliseconds(), 10)
		}
}

func stringSetting(dst func(*Config) *string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error { *dst(c) = strings.TrimSpace(v); return nil },
		func(c *Config) string { return *dst(c) }
}

func boolSetting(dst func(*Config) *bool) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a boolean (true/false)", v)
			}
			*dst(c) = b
			return nil
		}, func(c *Config) string {
			return strconv.FormatBool(*dst(c))
		}
}

func row(flags []string, envs []string, usage string, set func(*Config, string) error, get func(*Config) string) setting {
	return setting{flags: flags, envs: envs, usage: usage, set: set, get: get}
}

// settings is the table of every setting. Keep README's configuration table in
// sync with it (TestREADMEListsEverySetting checks).
var settings = func() []setting {
	var s []setting
	add := func(flags, envs []string, usage string, set func(*Config, string) error, get func(*Config) string) {
		s = append(s, row(flags, envs, usage, set, get))
	}
	addBool := func(flags, envs []string, usage string, set func(*Config, string) error, get func(*Config) string) {
		add(flags, envs, usage, set, get)
		s[len(s)-1].isBool = true
	}
	set, get := stringSetting(func(c *Config) *string { return &c.DataDir })
	add([]string{"data-dir", "d"}, []string{"CHRONIK_DATA_DIR"}, "directory holding all broker data", set, get)
	add([]string{"log-level"}, []string{"CHRONIK_LOG_LEVEL"}, "debug, info, warn or error",
		func(c *Config, v string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
				return fmt.Errorf("%q is not a log level (debug, info, warn, error)", v)
			}
			c.LogLevel = l
			return nil
		}, func(c *Config) string { return strings.ToLower(c.LogLevel.String()) })
	set, get = stringSetting(func(c *Config) *string { return &c.Bind })
	add([]string{"bind"}, []string{"CHRONIK_BIND"}, "IP address the Kafka and metrics listeners bind", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.KafkaPort })
	add([]string{"kafka-port"}, []string{"CHRONIK_KAFKA_PORT"}, "Kafka protocol port (0 picks a free port)", set, get)
	set, get = stringSetting(func(c *Config) *string { return &c.Advertise })
	add([]string{"advertise", "advertised-addr"}, []string{"CHRONIK_ADVERTISE", "CHRONIK_ADVERTISED_ADDR"},
		"HOST or HOST:PORT clients are told to connect to (default: bind address, or 127.0.0.1 for 0.0.0.0)", set, get)
	set, get = stringSetting(func(c *Config) *string { return &c.Listeners })
	add([]string{"listeners"}, []string{"CHRONIK_LISTENERS"},
		"Kafka's listeners: NAME://HOST:PORT the Kafka listener binds (only PLAINTEXT, one listener, for now; empty HOST: every interface); default PLAINTEXT on --bind and --kafka-port, which it cannot be combined with", set, get)
	set, get = stringSetting(func(c *Config) *string { return &c.AdvertisedListeners })
	add([]string{"advertised-listeners"}, []string{"CHRONIK_ADVERTISED_LISTENERS"},
		"Kafka's advertised.listeners: NAME://HOST:PORT the broker registers and tells clients (port 0: the bound port); default the listener with --advertise's or the bind rule's host", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.MetricsPort })
	add([]string{"metrics-port"}, []string{"CHRONIK_METRICS_PORT"}, "HTTP port for /metrics, /health, /ready (-1 disables)", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.NodeID })
	add([]string{"node-id"}, []string{"CHRONIK_NODE_ID"}, "broker id reported to clients", set, get)
	set, get = stringSetting(func(c *Config) *string { return &c.ClusterPeers })
	add([]string{"cluster-peers"}, []string{"CHRONIK_CLUSTER_PEERS"},
		"the metadata quorum's voters, id@host:port,... (each node's Raft and controller address), this broker's --node-id among them; empty: a broker alone", set, get)
	set, get = stringSetting(func(c *Config) *string { return &c.BrokerRack })
	add([]string{"broker-rack"}, []string{"CHRONIK_BROKER_RACK"}, "Kafka's broker.rack: the rack (or zone) this broker registers", set, get)
	add([]string{"produce-profile"}, []string{"CHRONIK_PRODUCE_PROFILE"}, "low-latency, balanced, high-throughput or extreme",
		func(c *Config, v string) error {
			p, err := ParseProfile(v)
			if err != nil {
				return err
			}
			c.ProduceProfile = p
			return nil
		}, func(c *Config) string { return c.ProduceProfile.String() })
	set, get = boolSetting(func(c *Config) *bool { return &c.AutoCreateTopics })
	addBool([]string{"auto-create-topics"}, []string{"CHRONIK_AUTO_CREATE_TOPICS"}, "auto.create.topics.enable: create unknown topics on Metadata/Produce", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.DefaultPartitions })
	add([]string{"num-partitions"}, []string{"CHRONIK_NUM_PARTITIONS", "CHRONIK_DEFAULT_PARTITIONS"}, "num.partitions: partitions of auto-created topics", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.DefaultReplicationFactor })
	add([]string{"default-replication-factor"}, []string{"CHRONIK_DEFAULT_REPLICATION_FACTOR"}, "default.replication.factor: replicas of topics created without a replication factor (and auto-created ones)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.ReplicaLagMax })
	add([]string{"replica-lag-time-max-ms"}, []string{"CHRONIK_REPLICA_LAG_TIME_MAX_MS"}, "replica.lag.time.max.ms: a follower not caught up with its leader this long leaves the in-sync set (ms or duration)", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.MaxRequestBytes })
	add([]string{"socket-request-max-bytes"}, []string{"CHRONIK_SOCKET_REQUEST_MAX_BYTES"}, "largest request frame accepted; larger closes the connection", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.MessageMaxBytes })
	add([]string{"message-max-bytes"}, []string{"CHRONIK_MESSAGE_MAX_BYTES"}, "message.max.bytes: largest record batch (topic max.message.bytes default)", set, get)
	set, get = int64Setting(func(c *Config) *int64 { return &c.SegmentBytes })
	add([]string{"log-segment-bytes"}, []string{"CHRONIK_LOG_SEGMENT_BYTES"}, "log.segment.bytes: roll a segment at this size", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.SegmentAge })
	add([]string{"log-segment-ms"}, []string{"CHRONIK_LOG_SEGMENT_MS"}, "log.roll.ms: roll a segment at this age (ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.RetentionAge })
	add([]string{"log-retention-ms"}, []string{"CHRONIK_LOG_RETENTION_MS"}, "log.retention.ms default for topics (ms or duration)", set, get)
	set, get = int64Setting(func(c *Config) *int64 { return &c.RetentionBytes })
	add([]string{"log-retention-bytes"}, []string{"CHRONIK_LOG_RETENTION_BYTES"}, "log.retention.bytes default for topics (-1 unlimited)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.RetentionCheck })
	add([]string{"log-retention-check-interval-ms"}, []string{"CHRONIK_LOG_RETENTION_CHECK_INTERVAL_MS"}, "log.retention.check.interval.ms: how often the retention sweep runs (ms or duration)", set, get)
	add([]string{"offsets-retention-minutes"}, []string{"CHRONIK_OFFSETS_RETENTION_MINUTES"},
		"offsets.retention.minutes: committed offsets of a group without members expire this long after the later of their commit and the group becoming empty",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n > 1<<31 {
				return fmt.Errorf("%q is not a number of minutes", v)
			}
			c.OffsetsRetention = time.Duration(n) * time.Minute
			return nil
		}, func(c *Config) string { return strconv.FormatInt(int64(c.OffsetsRetention/time.Minute), 10) })
	set, get = int32Setting(func(c *Config) *int32 { return &c.OffsetsTopicPartitions })
	add([]string{"offsets-topic-num-partitions"}, []string{"CHRONIK_OFFSETS_TOPIC_NUM_PARTITIONS"},
		"offsets.topic.num.partitions: partitions of the internal topic __consumer_offsets, used when it is created", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.TransactionStateLogPartitions })
	add([]string{"transaction-state-log-num-partitions"}, []string{"CHRONIK_TRANSACTION_STATE_LOG_NUM_PARTITIONS"},
		"transaction.state.log.num.partitions: partitions of the internal topic __transaction_state, used when it is created", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.GroupInitialRebalanceDelay })
	add([]string{"group-initial-rebalance-delay-ms"}, []string{"CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS"},
		"group.initial.rebalance.delay.ms: the first rebalance of an empty classic group waits this long for more members to join, extended by as much for each that does, up to the largest rebalance timeout (0: none; ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.TransactionalIDExpiration })
	add([]string{"transactional-id-expiration-ms"}, []string{"CHRONIK_TRANSACTIONAL_ID_EXPIRATION_MS"},
		"transactional.id.expiration.ms: a transactional id with no transaction in progress and no request this long is forgotten (ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.ProducerIDExpiration })
	add([]string{"producer-id-expiration-ms"}, []string{"CHRONIK_PRODUCER_ID_EXPIRATION_MS"},
		"producer.id.expiration.ms: a partition forgets an idempotent producer's sequence state after this long without a write from it (ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.ShutdownTimeout })
	add([]string{"shutdown-timeout"}, []string{"CHRONIK_SHUTDOWN_TIMEOUT"}, "how long a clean shutdown waits for in-flight requests", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.ConsumerGroupSessionTimeout })
	add([]string{"group-consumer-session-timeout-ms"}, []string{"CHRONIK_GROUP_CONSUMER_SESSION_TIMEOUT_MS"}, "KIP-848 consumer groups: a member silent this long is removed (ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.ConsumerGroupHeartbeatInterval })
	add([]string{"group-consumer-heartbeat-interval-ms"}, []string{"CHRONIK_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS"}, "KIP-848 consumer groups: heartbeat interval told to members (ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.BrokerSessionTimeout })
	add([]string{"broker-session-timeout-ms"}, []string{"CHRONIK_BROKER_SESSION_TIMEOUT_MS"}, "the controller fences a broker whose heartbeats stop this long (Kafka's broker.session.timeout.ms; ms or duration)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.BrokerHeartbeatInterval })
	add([]string{"broker-heartbeat-interval-ms"}, []string{"CHRONIK_BROKER_HEARTBEAT_INTERVAL_MS"}, "how often a broker heartbeats the controller (Kafka's broker.heartbeat.interval.ms; ms or duration)", set, get)
	set, get = int64Setting(func(c *Config) *int64 { return &c.DropBehind })
	add([]string{"log-drop-behind-bytes"}, []string{"CHRONIK_LOG_DROP_BEHIND_BYTES"},
		"drop partition data from the page cache once fsynced and this many bytes behind its segment's end (0: off); consumers further behind read from disk", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.TransactionVersion })
	add([]string{"transaction-version"}, []string{"CHRONIK_TRANSACTION_VERSION"},
		"transaction.version feature: 2 (KIP-890 part 2: epoch bump per transaction, produce enrols its partition) or 1 (the older protocol for every client)", set, get)
	set, get = boolSetting(func(c *Config) *bool { return &c.GroupCommitWAL })
	addBool([]string{"group-commit-wal"}, []string{"CHRONIK_GROUP_COMMIT_WAL"}, "make small fsync rounds spread over several partitions durable with one write-ahead-log fdatasync", set, get)
	set, get = boolSetting(func(c *Config) *bool { return &c.ClientMetrics })
	addBool([]string{"client-metrics"}, []string{"CHRONIK_CLIENT_METRICS"},
		"serve KIP-714 client metrics (GetTelemetrySubscriptions, PushTelemetry): clients matching a CLIENT_METRICS subscription push metrics, exported on /metrics", set, get)
	set, get = int32Setting(func(c *Config) *int32 { return &c.TelemetryMaxBytes })
	add([]string{"telemetry-max-bytes"}, []string{"CHRONIK_TELEMETRY_MAX_BYTES"}, "telemetry.max.bytes: largest client metrics push accepted (compressed)", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.MaxConnections })
	add([]string{"max-connections"}, []string{"CHRONIK_MAX_CONNECTIONS"},
		"max.connections: open Kafka connections allowed; beyond it a new connection is accepted and closed at once (0: unlimited)", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.MaxConnectionsPerIP })
	add([]string{"max-connections-per-ip"}, []string{"CHRONIK_MAX_CONNECTIONS_PER_IP"},
		"max.connections.per.ip: open Kafka connections allowed from one client IP address; beyond it a new one is accepted and closed at once (0: unlimited)", set, get)
	set, get = intSetting(func(c *Config) *int { return &c.MaxOpenFiles })
	add([]string{"max-open-files"}, []string{"CHRONIK_MAX_OPEN_FILES"},
		"files (one per segment) that open partitions may hold; beyond it the least recently used idle partitions are closed and reopened on use (0: the open-file limit less a quarter of it, or less --max-connections+256 if that is more, for sockets)", set, get)
	set, get = msSetting(func(c *Config) *time.Duration { return &c.RecoveryCheckpointInterval })
	add([]string{"log-flush-offset-checkpoint-interval-ms"}, []string{"CHRONIK_LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS"},
		"log.flush.offset.checkpoint.interval.ms: partitions written to and then idle this long get their recovery point written, so a kill finds them trusted (0: never; ms or duration)", set, get)
	set, get = boolSetting(func(c *Config) *bool { return &c.FetchZeroCopy })
	addBool([]string{"fetch-zero-copy"}, []string{"CHRONIK_FETCH_ZERO_COPY"},
		"send fetched record batches from the segment files with sendfile on plain TCP connections instead of reading them into memory first (--fetch-zero-copy=false: always copy)", set, get)
	set, get = boolSetting(func(c *Config) *bool { return &c.EnablePprof })
	addBool([]string{"enable-pprof"}, []string{"CHRONIK_ENABLE_PPROF"}, "serve Go profiling endpoints at /debug/pprof/ on the metrics port", set, get)
	return s
}()

// Setting describes one setting for documentation and `chronik-server config`.
type Setting struct {
	Flags   []string
	Envs    []string
	FileKey string
	Default string
	Usage   string
}

// Settings lists every setting with its default.
func Settings() []Setting {
	def := Default()
	out := make([]Setting, 0, len(settings))
	for i := range settings {
		s := &settings[i]
		out = append(out, Setting{Flags: s.flags, Envs: s.envs, FileKey: s.key(), Default: s.get(&def), Usage: s.usage})
	}
	return out
}

// Value returns c's value of the setting whose first flag name is flag, in
// the form the flag accepts; ok is false for an unknown name.
func (c *Config) Value(flag string) (v string, ok bool) {
	for i := range settings {
		if settings[i].flags[0] == flag {
			return settings[i].get(c), true
		}
	}
	return "", false
}

// Load builds a Config from defaults, then the file named by --config (or
// CHRONIK_CONFIG), then the environment, then args. args are the flags after
// the subcommand (and any global flags before it). It returns the remaining
// positional arguments.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, []string, error) {
	cfg := Default()
	fs := flag.NewFlagSet("chronik-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := getenv("CHRONIK_CONFIG")
	fs.StringVar(&configFile, "config", configFile, "TOML config file (CHRONIK_CONFIG)")
	flagValues := map[*setting]string{}
	var order []*setting
	for i := range settings {
		s := &settings[i]
		for _, name := range s.flags {
			fs.Var(&flagValue{isBool: s.isBool, set: func(v string) error {
				if _, seen := flagValues[s]; !seen {
					order = append(order, s)
				}
				flagValues[s] = v
				return nil
			}}, name, s.usage+" ("+strings.Join(s.envs, ", ")+")")
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	// Flags may come before and after positional words
	// (chronik-server -d x start --kafka-port 1), so parse around them.
	var rest []string
	for remaining := fs.Args(); len(remaining) > 0; remaining = fs.Args() {
		rest = append(rest, remaining[0])
		if err := fs.Parse(remaining[1:]); err != nil {
			return cfg, nil, err
		}
	}
	given := map[string]bool{} // settings set by the file, environment or flags, by first flag name
	if configFile != "" {
		if err := loadFile(&cfg, configFile, given); err != nil {
			return cfg, nil, err
		}
	}
	for i := range settings {
		s := &settings[i]
		for _, env := range s.envs {
			if v := getenv(env); v != "" {
				if err := s.set(&cfg, v); err != nil {
					return cfg, nil, fmt.Errorf("config: %s: %w", env, err)
				}
				given[s.flags[0]] = true
				break
			}
		}
	}
	for _, s := range order {
		if err := s.set(&cfg, flagValues[s]); err != nil {
			return cfg, nil, fmt.Errorf("config: --%s: %w", s.flags[0], err)
		}
		given[s.flags[0]] = true
	}
	err := cfg.Validate()
	// Validate sees a kafka-port other than the default; one set to the
	// default is refused here.
	if given["kafka-port"] && cfg.Listeners != "" && cfg.KafkaPort == Default().KafkaPort {
		err = errors.Join(err, fmt.Errorf("config: listeners: cannot be combined with kafka-port (%d): give the port in --listeners (PLAINTEXT://HOST:PORT) and drop --kafka-port", cfg.KafkaPort))
	}
	return cfg, rest, err
}

func loadFile(cfg *Config, path string, given map[string]bool) error {
	raw := map[string]any{}
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return fmt.Errorf("config: file %s: %w", path, err)
	}
	byKey := map[string]*setting{}
	for i := range settings {
		byKey[settings[i].key()] = &settings[i]
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := byKey[strings.ReplaceAll(k, "-", "_")]
		if !ok {
			return fmt.Errorf("config: file %s: unknown key %q", path, k)
		}
		if err := s.set(cfg, fmt.Sprint(raw[k])); err != nil {
			return fmt.Errorf("config: file %s: %s: %w", path, k, err)
		}
		given[s.flags[0]] = true
	}
	return nil
}

// flagValue records a flag's raw text; parsing happens after the file and
// environment are applied, so errors name the flag and precedence holds.
type flagValue struct {
	isBool bool
	set    func(string) error
}

func (f *flagValue) String() string     { return "" }
func (f *flagValue) Set(v string) error { return f.set(v) }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// Environ is os.Getenv, for callers that do not inject an environment.
func Environ(k string) string { return os.Getenv(k) }
