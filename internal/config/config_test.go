package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a fixed map (never the process environment, so
// a developer's CHRONIK_* variables cannot change test results).
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// writeTOML writes a config file into a temp dir and returns its path.
func writeTOML(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chronik.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, args []string, kv map[string]string) (Config, []string, error) {
	t.Helper()
	return Load(args, env(kv), io.Discard)
}

func mustLoad(t *testing.T, args []string, kv map[string]string) (Config, []string) {
	t.Helper()
	cfg, rest, err := load(t, args, kv)
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return cfg, rest
}

func TestDefaults(t *testing.T) {
	for name, cfg := range map[string]Config{
		"Default()":       Default(),
		"Load(no inputs)": func() Config { c, _ := mustLoad(t, nil, nil); return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			checks := []struct {
				key       string
				got, want any
			}{
				{"data-dir", cfg.DataDir, "./data"},
				{"kafka-port", cfg.KafkaPort, 9092},
				{"metrics-port", cfg.MetricsPort, 9093},
				{"bind", cfg.Bind, "0.0.0.0"},
				{"advertise", cfg.Advertise, ""},
				{"produce-profile", cfg.ProduceProfile, ProfileHighThroughput},
				{"auto-create-topics", cfg.AutoCreateTopics, true},
				{"num-partitions", cfg.DefaultPartitions, int32(3)},
				{"log-level", cfg.LogLevel, slog.LevelInfo},
				{"node-id", cfg.NodeID, int32(1)},
				{"socket-request-max-bytes", cfg.MaxRequestBytes, int32(100 << 20)},
				{"group-initial-rebalance-delay-ms", cfg.GroupInitialRebalanceDelay, 3 * time.Second},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
		})
	}
}

// TestPrecedence sets several keys at several layers: defaults < file < env <
// flags, with the file named by --config or by CHRONIK_CONFIG.
func TestPrecedence(t *testing.T) {
	file := writeTOML(t, `
data_dir = "/from/file"
kafka_port = 1111
metrics_port = 2222
produce_profile = "balanced"
num_partitions = 7
log-level = "warn"
auto_create_topics = false
group_initial_rebalance_delay_ms = 250
`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "file via --config",
			args: []string{"--config", file},
			check: func(t *testing.T, c Config) {
				want := Config{DataDir: "/from/file", KafkaPort: 1111, MetricsPort: 2222, ProduceProfile: ProfileBalanced, DefaultPartitions: 7, LogLevel: slog.LevelWarn}
				checkCore(t, c, want)
				if c.AutoCreateTopics {
					t.Error("auto-create-topics: file said false")
				}
				if c.GroupInitialRebalanceDelay != 250*time.Millisecond {
					t.Errorf("group-initial-rebalance-delay-ms = %v: file said 250", c.GroupInitialRebalanceDelay)
				}
			},
		},
		{
			name: "file via CHRONIK_CONFIG",
			env:  map[string]string{"CHRONIK_CONFIG": file},
			check: func(t *testing.T, c Config) {
				checkCore(t, c, Config{DataDir: "/from/file", KafkaPort: 1111, MetricsPort: 2222, ProduceProfile: ProfileBalanced, DefaultPartitions: 7, LogLevel: slog.LevelWarn})
			},
		},
		{
			name: "--config beats CHRONIK_CONFIG",
			args: []string{"--config", file},
			env:  map[string]string{"CHRONIK_CONFIG": filepath.Join(t.TempDir(), "missing.toml")},
			check: func(t *testing.T, c Config) {
				if c.KafkaPort != 1111 {
					t.Errorf("kafka-port = %d, want 1111 from --config file", c.KafkaPort)
				}
			},
		},
		{
			name: "env beats file",
			args: []string{"--config", file},
			env: map[string]string{
				"CHRONIK_KAFKA_PORT": "3333", "CHRONIK_PRODUCE_PROFILE": "extreme", "CHRONIK_DATA_DIR": "/from/env",
				"CHRONIK_AUTO_CREATE_TOPICS": "true",
			},
			check: func(t *testing.T, c Config) {
				// metrics-port, num-partitions, log-level untouched by env: file values stay.
				checkCore(t, c, Config{DataDir: "/from/env", KafkaPort: 3333, MetricsPort: 2222, ProduceProfile: ProfileExtreme, DefaultPartitions: 7, LogLevel: slog.LevelWarn})
				if !c.AutoCreateTopics {
					t.Error("auto-create-topics: env said true")
				}
			},
		},
		{
			name: "flag beats env and file",
			args: []string{"--config", file, "--kafka-port", "4444", "--data-dir=/from/flag", "--num-partitions", "9", "--produce-profile", "low-latency"},
			env:  map[string]string{"CHRONIK_KAFKA_PORT": "3333", "CHRONIK_DATA_DIR": "/from/env", "CHRONIK_NUM_PARTITIONS": "8"},
			check: func(t *testing.T, c Config) {
				checkCore(t, c, Config{DataDir: "/from/flag", KafkaPort: 4444, MetricsPort: 2222, ProduceProfile: ProfileLowLatency, DefaultPartitions: 9, LogLevel: slog.LevelWarn})
			},
		},
		{
			name: "flag beats env without a file",
			args: []string{"--metrics-port", "-1"},
			env:  map[string]string{"CHRONIK_METRICS_PORT": "5555", "CHRONIK_LOG_LEVEL": "debug"},
			check: func(t *testing.T, c Config) {
				checkCore(t, c, Config{DataDir: "./data", KafkaPort: 9092, MetricsPort: -1, ProduceProfile: ProfileHighThroughput, DefaultPartitions: 3, LogLevel: slog.LevelDebug})
			},
		},
		{
			name: "last of a repeated flag wins",
			args: []string{"--kafka-port", "1", "--kafka-port", "2"},
			check: func(t *testing.T, c Config) {
				if c.KafkaPort != 2 {
					t.Errorf("kafka-port = %d, want 2", c.KafkaPort)
				}
			},
		},
		{
			name: "durations in ms or Go syntax",
			args: []string{"--shutdown-timeout", "1500", "--log-segment-ms", "2m", "--group-initial-rebalance-delay-ms", "0"},
			check: func(t *testing.T, c Config) {
				if c.ShutdownTimeout != 1500*time.Millisecond || c.SegmentAge != 2*time.Minute || c.GroupInitialRebalanceDelay != 0 {
					t.Errorf("shutdown-timeout %v, log-segment-ms %v, group-initial-rebalance-delay-ms %v", c.ShutdownTimeout, c.SegmentAge, c.GroupInitialRebalanceDelay)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, tt.args, tt.env)
			tt.check(t, c)
		})
	}
}

func checkCore(t *testing.T, got, want Config) {
	t.Helper()
	if got.DataDir != want.DataDir {
		t.Errorf("data-dir = %q, want %q", got.DataDir, want.DataDir)
	}
	if got.KafkaPort != want.KafkaPort {
		t.Errorf("kafka-port = %d, want %d", got.KafkaPort, want.KafkaPort)
	}
	if got.MetricsPort != want.MetricsPort {
		t.Errorf("metrics-port = %d, want %d", got.MetricsPort, want.MetricsPort)
	}
	if got.ProduceProfile != want.ProduceProfile {
		t.Errorf("produce-profile = %v, want %v", got.ProduceProfile, want.ProduceProfile)
	}
	if got.DefaultPartitions != want.DefaultPartitions {
		t.Errorf("num-partitions = %d, want %d", got.DefaultPartitions, want.DefaultPartitions)
	}
	if got.LogLevel != want.LogLevel {
		t.Errorf("log-level = %v, want %v", got.LogLevel, want.LogLevel)
	}
}

func TestAliases(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		advertise string
		dataDir   string
	}{
		{name: "--advertise", args: []string{"--advertise", "a.example:19092"}, advertise: "a.example:19092"},
		{name: "--advertised-addr", args: []string{"--advertised-addr", "b.example"}, advertise: "b.example"},
		{name: "CHRONIK_ADVERTISE", env: map[string]string{"CHRONIK_ADVERTISE": "c.example"}, advertise: "c.example"},
		{name: "CHRONIK_ADVERTISED_ADDR", env: map[string]string{"CHRONIK_ADVERTISED_ADDR": "d.example"}, advertise: "d.example"},
		{name: "CHRONIK_ADVERTISE wins over its alias", env: map[string]string{"CHRONIK_ADVERTISE": "e1", "CHRONIK_ADVERTISED_ADDR": "e2"}, advertise: "e1"},
		{name: "alias flag beats env", args: []string{"--advertised-addr", "f.flag"}, env: map[string]string{"CHRONIK_ADVERTISE": "f.env"}, advertise: "f.flag"},
		{name: "later alias flag wins", args: []string{"--advertise", "g1", "--advertised-addr", "g2"}, advertise: "g2"},
		{name: "-d", args: []string{"-d", "/short"}, dataDir: "/short"},
		{name: "--data-dir", args: []string{"--data-dir", "/long"}, dataDir: "/long"},
		{name: "-d=", args: []string{"-d=/eq"}, dataDir: "/eq"},
		{name: "CHRONIK_DEFAULT_PARTITIONS alias", env: map[string]string{"CHRONIK_DEFAULT_PARTITIONS": "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, tt.args, tt.env)
			if tt.advertise != "" && c.Advertise != tt.advertise {
				t.Errorf("advertise = %q, want %q", c.Advertise, tt.advertise)
			}
			if tt.dataDir != "" && c.DataDir != tt.dataDir {
				t.Errorf("data-dir = %q, want %q", c.DataDir, tt.dataDir)
			}
			if tt.env["CHRONIK_DEFAULT_PARTITIONS"] != "" && c.DefaultPartitions != 5 {
				t.Errorf("num-partitions = %d, want 5", c.DefaultPartitions)
			}
		})
	}
}

func TestFlagsAroundSubcommand(t *testing.T) {
	tests := []struct {
		args     []string
		rest     []string
		dataDir  string
		port     int
		logLevel slog.Level
	}{
		{[]string{"-d", "x", "start", "--kafka-port", "1"}, []string{"start"}, "x", 1, slog.LevelInfo},
		{[]string{"start"}, []string{"start"}, "./data", 9092, slog.LevelInfo},
		{[]string{"--log-level", "debug", "standalone", "-d", "y"}, []string{"standalone"}, "y", 9092, slog.LevelDebug},
		{[]string{"start", "--kafka-port=7", "extra", "--data-dir", "z"}, []string{"start", "extra"}, "z", 7, slog.LevelInfo},
		{[]string{"version"}, []string{"version"}, "./data", 9092, slog.LevelInfo},
		{nil, nil, "./data", 9092, slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, rest := mustLoad(t, tt.args, nil)
			if strings.Join(rest, "|") != strings.Join(tt.rest, "|") || len(rest) != len(tt.rest) {
				t.Errorf("positional = %q, want %q", rest, tt.rest)
			}
			if c.DataDir != tt.dataDir || c.KafkaPort != tt.port || c.LogLevel != tt.logLevel {
				t.Errorf("got data-dir %q port %d log-level %v, want %q %d %v", c.DataDir, c.KafkaPort, c.LogLevel, tt.dataDir, tt.port, tt.logLevel)
			}
		})
	}
}

// TestInvalidValues: every bad value fails Load with a message naming the
// offending key (flag, env var or file key), plus a hint where useful.
func TestInvalidValues(t *testing.T) {
	unknownKeyFile := writeTOML(t, "kafka_port = 9092\nkafak_port = 1\n")
	badBoolFile := writeTOML(t, "auto_create_topics = \"maybe\"\n")
	badSyntaxFile := writeTOML(t, "kafka_port = = 1\n")
	kafkaPortFile := writeTOML(t, "kafka_port = 9092\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{name: "port not a number (flag)", args: []string{"--kafka-port", "abc"}, want: []string{"kafka-port", `"abc"`}},
		{name: "port not a number (env)", env: map[string]string{"CHRONIK_KAFKA_PORT": "abc"}, want: []string{"CHRONIK_KAFKA_PORT", `"abc"`}},
		{name: "port out of range", args: []string{"--kafka-port", "70000"}, want: []string{"kafka-port", "70000"}},
		{name: "metrics port out of range (env)", env: map[string]string{"CHRONIK_METRICS_PORT": "65536"}, want: []string{"metrics-port", "65536"}},
		{name: "metrics port equals kafka port", args: []string{"--kafka-port", "9000", "--metrics-port", "9000"}, want: []string{"metrics-port", "kafka-port"}},
		{name: "unknown profile lists the valid ones", env: map[string]string{"CHRONIK_PRODUCE_PROFILE": "turbo"},
			want: []string{"CHRONIK_PRODUCE_PROFILE", "turbo", "low-latency", "balanced", "high-throughput", "extreme"}},
		{name: "unknown profile (flag)", args: []string{"--produce-profile", "fast"}, want: []string{"produce-profile", "fast", "low-latency"}},
		{name: "unknown file key", args: []string{"--config", unknownKeyFile}, want: []string{"kafak_port", "unknown key"}},
		{name: "bad bool (env)", env: map[string]string{"CHRONIK_AUTO_CREATE_TOPICS": "maybe"}, want: []string{"CHRONIK_AUTO_CREATE_TOPICS", "maybe", "boolean"}},
		{name: "bad bool (flag)", args: []string{"--auto-create-topics=yes please"}, want: []string{"auto-create-topics", "boolean"}},
		{name: "bad bool (file)", args: []string{"--config", badBoolFile}, want: []string{"auto_create_topics", "maybe"}},
		{name: "negative partitions", args: []string{"--num-partitions", "-1"}, want: []string{"num-partitions", "-1"}},
		{name: "broker heartbeat not below the session", args: []string{"--broker-session-timeout-ms", "2000"},
			want: []string{"broker-heartbeat-interval-ms", "broker-session-timeout-ms"}},
		{name: "broker heartbeat too often (env)", env: map[string]string{"CHRONIK_BROKER_HEARTBEAT_INTERVAL_MS": "10"},
			want: []string{"broker-heartbeat-interval-ms", "100ms"}},
		{name: "zero partitions (env)", env: map[string]string{"CHRONIK_NUM_PARTITIONS": "0"}, want: []string{"num-partitions"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"log-level", "loud"}},
		{name: "bad bind", args: []string{"--bind", "not-an-ip"}, want: []string{"bind", "not-an-ip"}},
		{name: "bad advertise port", args: []string{"--advertise", "host:0"}, want: []string{"advertise", "host:0"}},
		{name: "negative node id", args: []string{"--node-id", "-3"}, want: []string{"node-id"}},
		{name: "negative initial rebalance delay", env: map[string]string{"CHRONIK_GROUP_INITIAL_REBALANCE_DELAY_MS": "-1"}, want: []string{"group-initial-rebalance-delay-ms"}},
		{name: "bad duration", args: []string{"--shutdown-timeout", "soon"}, want: []string{"shutdown-timeout", "soon"}},
		{name: "empty data dir", args: []string{"--data-dir", ""}, want: []string{"data-dir"}},
		{name: "missing config file", args: []string{"--config", filepath.Join(t.TempDir(), "nope.toml")}, want: []string{"nope.toml"}},
		{name: "config file syntax error", args: []string{"--config", badSyntaxFile}, want: []string{badSyntaxFile}},
		{name: "unknown flag", args: []string{"--kafka-prot", "1"}, want: []string{"kafka-prot"}},
		{name: "cluster peers unparsable", args: []string{"--cluster-peers", "1@127.0.0.1:9301,x@h:1"}, want: []string{"cluster-peers", "x@h:1"}},
		{name: "cluster peers without a port (env)", env: map[string]string{"CHRONIK_CLUSTER_PEERS": "1@127.0.0.1"}, want: []string{"cluster-peers", "1@127.0.0.1"}},
		{name: "cluster peers twice the same id", args: []string{"--cluster-peers", "1@h:1,1@h:2"}, want: []string{"cluster-peers", "twice"}},
		{name: "cluster peers without this node id", args: []string{"--cluster-peers", "2@h:9301,3@h:9302"},
			want: []string{"cluster-peers", "node-id 1", "--node-id"}},
		{name: "cluster peers without this node id (explicit)", args: []string{"--node-id", "4", "--cluster-peers", "1@h:9301,2@h:9302"},
			want: []string{"cluster-peers", "node-id 4"}},
		{name: "cluster port is the Kafka port", args: []string{"--cluster-peers", "1@127.0.0.1:9092"}, want: []string{"cluster-peers", "port of its own"}},
		{name: "listener not NAME://HOST:PORT", args: []string{"--listeners", "127.0.0.1:9092"}, want: []string{"listeners", "NAME://HOST:PORT"}},
		{name: "listener without a port", args: []string{"--listeners", "PLAINTEXT://127.0.0.1"}, want: []string{"listeners", "PLAINTEXT://127.0.0.1"}},
		{name: "listener port out of range", args: []string{"--listeners", "PLAINTEXT://:70000"}, want: []string{"listeners", "70000"}},
		{name: "SSL listener", args: []string{"--listeners", "SSL://:9093"}, want: []string{"listeners", "SSL://:9093", "TLS and SASL", "not supported yet"}},
		{name: "SASL listener (env)", env: map[string]string{"CHRONIK_LISTENERS": "SASL_PLAINTEXT://:9093"}, want: []string{"listeners", "not supported yet"}},
		{name: "custom listener name", args: []string{"--listeners", "INTERNAL://:9093"}, want: []string{"listeners", "INTERNAL", "only PLAINTEXT"}},
		{name: "two listeners", args: []string{"--listeners", "PLAINTEXT://:9092,CLIENT://:9094"}, want: []string{"listeners", "only one"}},
		{name: "listeners and kafka-port", args: []string{"--listeners", "PLAINTEXT://:9094", "--kafka-port", "9095"}, want: []string{"listeners", "kafka-port"}},
		{name: "listeners and kafka-port at its default", args: []string{"--listeners", "PLAINTEXT://:9094", "--kafka-port", "9092"}, want: []string{"listeners", "kafka-port"}},
		{name: "listeners (env) and kafka-port (env)", env: map[string]string{"CHRONIK_LISTENERS": "PLAINTEXT://:9094", "CHRONIK_KAFKA_PORT": "9092"}, want: []string{"listeners", "kafka-port"}},
		{name: "listeners (flag) and kafka_port (file)", args: []string{"--config", kafkaPortFile, "--listeners", "PLAINTEXT://:9094"}, want: []string{"listeners", "kafka-port"}},
		{name: "listener port is the metrics port", args: []string{"--listeners", "PLAINTEXT://:9093"}, want: []string{"metrics-port", "9093"}},
		{name: "advertised listener SSL", args: []string{"--advertised-listeners", "SSL://h:9093"}, want: []string{"advertised-listeners", "not supported yet"}},
		{name: "advertised listener malformed (env)", env: map[string]string{"CHRONIK_ADVERTISED_LISTENERS": "h:9093"}, want: []string{"advertised-listeners", "NAME://HOST:PORT"}},
		{name: "two advertised listeners", args: []string{"--advertised-listeners", "PLAINTEXT://a:1,OTHER://b:2"}, want: []string{"advertised-listeners", "only one"}},
		{name: "advertised listeners and advertise", args: []string{"--advertised-listeners", "PLAINTEXT://a:1", "--advertise", "b"}, want: []string{"advertised-listeners", "advertise"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.args, tt.env)
			if err == nil {
				t.Fatalf("Load(%q, %v) succeeded, want an error naming %q", tt.args, tt.env, tt.want[0])
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestValidateReportsEveryProblem: Validate joins all problems, so an operator
// fixes them in one go.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.KafkaPort = -5
	c.DefaultPartitions = 0
	c.ShutdownTimeout = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted three bad values")
	}
	for _, key := range []string{"kafka-port", "num-partitions", "shutdown-timeout"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func TestAdvertisedHostPort(t *testing.T) {
	tests := []struct {
		bind, advertise string
		actualPort      int
		host            string
		port            int32
	}{
		{"0.0.0.0", "", 40123, "127.0.0.1", 40123},
		{"::", "", 9092, "127.0.0.1", 9092},
		{"10.1.2.3", "", 9092, "10.1.2.3", 9092},
		{"0.0.0.0", "broker.example", 40123, "broker.example", 40123},
		{"0.0.0.0", "host:1234", 40123, "host", 1234},
		{"127.0.0.1", "[::1]:19092", 9092, "::1", 19092},
	}
	for _, tt := range tests {
		t.Run(tt.bind+"/"+tt.advertise, func(t *testing.T) {
			c := Default()
			c.Bind, c.Advertise = tt.bind, tt.advertise
			h, p := c.AdvertisedHostPort(tt.actualPort)
			if h != tt.host || p != tt.port {
				t.Errorf("AdvertisedHostPort(%d) = %s:%d, want %s:%d", tt.actualPort, h, p, tt.host, tt.port)
			}
		})
	}
}

func TestParseProfile(t *testing.T) {
	tests := []struct {
		in   string
		want Profile
	}{
		{"low-latency", ProfileLowLatency}, {"BALANCED", ProfileBalanced}, {"high_throughput", ProfileHighThroughput},
		{" extreme ", ProfileExtreme},
	}
	for _, tt := range tests {
		got, err := ParseProfile(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseProfile(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if got.String() != profileNames[tt.want] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	// Each profile allows more batching than the one before it.
	prev := ProfileBounds{}
	for p := ProfileLowLatency; p <= ProfileExtreme; p++ {
		b := p.Bounds()
		if b.MaxBatchesPerFlush <= prev.MaxBatchesPerFlush || b.MaxBufferBytes <= prev.MaxBufferBytes {
			t.Errorf("%v bounds %+v not above %+v", p, b, prev)
		}
		prev = b
	}
}

// TestSettingsTable: every row round-trips its default through set/get, and
// no flag or env var is declared twice.
func TestSettingsTable(t *testing.T) {
	flags, envs := map[string]bool{"config": true}, map[string]bool{"CHRONIK_CONFIG": true}
	for _, s := range Settings() {
		if len(s.Flags) == 0 || len(s.Envs) == 0 {
			t.Fatalf("setting %+v lacks a flag or env var", s)
		}
		for _, f := range s.Flags {
			if flags[f] {
				t.Errorf("flag --%s declared twice", f)
			}
			flags[f] = true
		}
		for _, e := range s.Envs {
			if envs[e] || !strings.HasPrefix(e, "CHRONIK_") {
				t.Errorf("env %s declared twice or not CHRONIK_*", e)
			}
			envs[e] = true
		}
		// Setting the default explicitly must validate and yield the same value.
		c, _, err := load(t, []string{"--" + s.Flags[0] + "=" + s.Default}, nil)
		if err != nil {
			t.Errorf("--%s=%q (its default): %v", s.Flags[0], s.Default, err)
			continue
		}
		def := Default()
		if c != def {
			t.Errorf("--%s=%q changed the config: %+v", s.Flags[0], s.Default, c)
		}
	}
}

// TestREADMEListsEverySetting keeps README's configuration table in sync with
// the settings table.
func TestREADMEListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if errors.Is(err, os.ErrNotExist) {
		t.Fatal("README.md is missing at the repository root; it must document every setting (flag and CHRONIK_* variable)")
	}
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, s := range Settings() {
		if !strings.Contains(readme, "--"+s.Flags[0]) {
			t.Errorf("README.md does not mention --%s", s.Flags[0])
		}
		if !strings.Contains(readme, s.Envs[0]) {
			t.Errorf("README.md does not mention %s", s.Envs[0])
		}
	}
	for _, extra := range []string{"--config", "CHRONIK_CONFIG"} {
		if !strings.Contains(readme, extra) {
			t.Errorf("README.md does not mention %s", extra)
		}
	}
}

func TestValue(t *testing.T) {
	c, _ := mustLoad(t, []string{"--kafka-port", "1234", "--advertised-addr", "h:1", "--log-segment-ms", "1m"}, map[string]string{"CHRONIK_AUTO_CREATE_TOPICS": "false"})
	for flag, want := range map[string]string{
		"kafka-port": "1234", "advertise": "h:1", "auto-create-topics": "false", "log-segment-ms": "60000",
		"data-dir": "./data", "produce-profile": "high-throughput", "log-level": "info",
	} {
		if got, ok := c.Value(flag); !ok || got != want {
			t.Errorf("Value(%q) = %q, %v; want %q", flag, got, ok, want)
		}
	}
	if _, ok := c.Value("advertised-addr"); ok {
		t.Error("Value accepts an alias; it is keyed by the first flag name")
	}
	if _, ok := c.Value("nope"); ok {
		t.Error("Value(nope) ok")
	}
}

func TestBoolFlagsStandAlone(t *testing.T) {
	env := func(string) string { return "" }
	cfg, pos, err := Load([]string{"start", "--enable-pprof", "--auto-create-topics=false"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.EnablePprof || cfg.AutoCreateTopics || len(pos) != 1 || pos[0] != "start" {
		t.Fatalf("pprof=%v autocreate=%v pos=%v", cfg.EnablePprof, cfg.AutoCreateTopics, pos)
	}
	cfg, _, err = Load([]string{"--auto-create-topics", "start"}, env, io.Discard)
	if err != nil || !cfg.AutoCreateTopics {
		t.Fatalf("bare --auto-create-topics: %v %v", cfg.AutoCreateTopics, err)
	}
}

// TestClusterSettings: --cluster-peers, --listeners, --advertised-listeners
// and --broker-rack from flags, the environment and the file, and what the
// server binds and advertises with them.
func TestClusterSettings(t *testing.T) {
	file := writeTOML(t, `
cluster_peers = "1@127.0.0.1:9301,2@127.0.0.1:9302,3@127.0.0.1:9303"
listeners = "PLAINTEXT://127.0.0.1:19092"
advertised_listeners = "PLAINTEXT://broker-1.example:29092"
broker_rack = "rack-a"
`)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		peers   string // "id@addr id@addr", "" for none
		bind    string // KafkaAddr()
		adv     string // AdvertisedListener(40000)
		rack    string
		nodeID  int32
		cfgPeer string
	}{
		{name: "defaults: alone, PLAINTEXT on bind and kafka-port", bind: "0.0.0.0:9092", adv: "PLAINTEXT://127.0.0.1:40000"},
		{name: "kafka-port and bind still work", args: []string{"--kafka-port", "0", "--bind", "127.0.0.2"}, bind: "127.0.0.2:0", adv: "PLAINTEXT://127.0.0.2:40000"},
		{name: "advertise still works", args: []string{"--advertise", "h.example:1234"}, bind: "0.0.0.0:9092", adv: "PLAINTEXT://h.example:1234"},
		{name: "flags", args: []string{"--node-id", "2", "--cluster-peers", "1@127.0.0.1:9301, 2@127.0.0.1:9302,3@[::1]:9303",
			"--listeners", "PLAINTEXT://127.0.0.1:19092", "--advertised-listeners", "PLAINTEXT://b.example:29092", "--broker-rack", "r1"},
			peers: "1@127.0.0.1:9301 2@127.0.0.1:9302 3@[::1]:9303", bind: "127.0.0.1:19092", adv: "PLAINTEXT://b.example:29092", rack: "r1", nodeID: 2},
		{name: "env", env: map[string]string{"CHRONIK_NODE_ID": "3", "CHRONIK_CLUSTER_PEERS": "3@10.0.0.3:9094", "CHRONIK_LISTENERS": "plaintext://:0",
			"CHRONIK_ADVERTISED_LISTENERS": "PLAINTEXT://:0", "CHRONIK_BROKER_RACK": "zone-b"},
			peers: "3@10.0.0.3:9094", bind: ":0", adv: "PLAINTEXT://127.0.0.1:40000", rack: "zone-b", nodeID: 3},
		{name: "file", args: []string{"--config", file}, peers: "1@127.0.0.1:9301 2@127.0.0.1:9302 3@127.0.0.1:9303",
			bind: "127.0.0.1:19092", adv: "PLAINTEXT://broker-1.example:29092", rack: "rack-a", nodeID: 1},
		{name: "flag beats file", args: []string{"--config", file, "--broker-rack", "rack-b", "--listeners", "PLAINTEXT://0.0.0.0:0", "--advertised-listeners="},
			peers: "1@127.0.0.1:9301 2@127.0.0.1:9302 3@127.0.0.1:9303", bind: "0.0.0.0:0", adv: "PLAINTEXT://127.0.0.1:40000", rack: "rack-b", nodeID: 1},
		{name: "listener host as advertised default", args: []string{"--listeners", "PLAINTEXT://10.1.2.3:9092"}, bind: "10.1.2.3:9092", adv: "PLAINTEXT://10.1.2.3:40000"},
		{name: "listener with advertise host", args: []string{"--listeners", "PLAINTEXT://:9092", "--advertise", "pub.example"}, bind: ":9092", adv: "PLAINTEXT://pub.example:40000"},
		{name: "advertised empty host takes the listener's", args: []string{"--listeners", "PLAINTEXT://10.1.2.3:9092", "--advertised-listeners", "PLAINTEXT://:9999"},
			bind: "10.1.2.3:9092", adv: "PLAINTEXT://10.1.2.3:9999"},
		{name: "advertised port 0 is the bound port", args: []string{"--advertised-listeners", "PLAINTEXT://pub.example:0"}, bind: "0.0.0.0:9092", adv: "PLAINTEXT://pub.example:40000"},
		{name: "empty peers: alone", args: []string{"--cluster-peers", " , "}, bind: "0.0.0.0:9092", adv: "PLAINTEXT://127.0.0.1:40000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, tt.args, tt.env)
			var peers []string
			for _, p := range c.Peers() {
				peers = append(peers, fmt.Sprintf("%d@%s", p.ID, p.Addr))
			}
			if got := strings.Join(peers, " "); got != tt.peers {
				t.Errorf("Peers() = %q, want %q", got, tt.peers)
			}
			if got := c.KafkaAddr(); got != tt.bind {
				t.Errorf("KafkaAddr() = %q, want %q", got, tt.bind)
			}
			if got := c.AdvertisedListener(40000).String(); got != tt.adv {
				t.Errorf("AdvertisedListener(40000) = %q, want %q", got, tt.adv)
			}
			if c.BrokerRack != tt.rack {
				t.Errorf("broker-rack = %q, want %q", c.BrokerRack, tt.rack)
			}
			if want := max(tt.nodeID, 1); c.NodeID != want {
				t.Errorf("node-id = %d, want %d", c.NodeID, want)
			}
		})
	}
}

func TestParseListeners(t *testing.T) {
	ls, err := ParseListeners(" PLAINTEXT://127.0.0.1:9092, ssl://[::1]:9093,CLIENT://:0 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{"PLAINTEXT", "127.0.0.1", 9092}, {"SSL", "::1", 9093}, {"CLIENT", "", 0}}
	if fmt.Sprint(ls) != fmt.Sprint(want) {
		t.Fatalf("ParseListeners = %v, want %v", ls, want)
	}
	if ls, err := ParseListeners(""); err != nil || len(ls) != 0 {
		t.Fatalf("ParseListeners(\"\") = %v, %v", ls, err)
	}
	for _, bad := range []string{"PLAINTEXT:/h:1", "://h:1", "PLAINTEXT://h", "PLAINTEXT://h:x", "PLAINTEXT://h:-1",
		"PLAINTEXT://h:1,plaintext://h:2", "PLAINTEXT://a b:1"} {
		if _, err := ParseListeners(bad); err == nil {
			t.Errorf("ParseListeners(%q) accepted", bad)
		}
	}
}
