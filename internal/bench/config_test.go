package bench

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseArgsDefaults(t *testing.T) {
	cfg, err := ParseArgs(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if cfg.Topic != want.Topic || cfg.Mode != ModeProduce || cfg.Concurrency != 1 || cfg.Duration != 30*time.Second ||
		cfg.MessageSize != 1024 || cfg.Acks != -1 || cfg.Bootstrap[0] != "localhost:9092" || !cfg.CreateTopic ||
		cfg.Partitions != 3 || cfg.ReportInterval != 5*time.Second {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestParseArgsLongShortAndEnv(t *testing.T) {
	env := func(k string) string {
		if k == "KAFKA_BOOTSTRAP_SERVERS" {
			return "h1:1, h2:2"
		}
		return ""
	}
	cfg, err := ParseArgs(strings.Fields("-t tp -m round-trip -c 64 -d 45 -w 2s -s 4KB -p 6 -r 1 "+
		"--acks 1 --compression zstd --linger-ms 5 --batch-size 2MiB --rate-limit 1000.5 "+
		"--key-pattern sequential --payload-pattern text --load-pattern bursty --validate "+
		"--csv-output out.csv --json-output out.json --report-interval 0 --create-topic=false --delete-topic-after "+
		"--clients 3 --metrics-url http://x/metrics"), env)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(cfg.Bootstrap) != 2 || cfg.Bootstrap[1] != "h2:2":
		t.Errorf("bootstrap from env: %q", cfg.Bootstrap)
	case cfg.Topic != "tp" || cfg.Mode != ModeRoundTrip || cfg.Concurrency != 64:
		t.Errorf("topic/mode/concurrency: %+v", cfg)
	case cfg.Duration != 45*time.Second || cfg.Warmup != 2*time.Second || cfg.ReportInterval != 0:
		t.Errorf("durations: %v %v %v", cfg.Duration, cfg.Warmup, cfg.ReportInterval)
	case cfg.MessageSize != 4096 || cfg.BatchSize != 2<<20 || cfg.Partitions != 6 || cfg.Acks != 1:
		t.Errorf("sizes/acks: %+v", cfg)
	case cfg.Compression != "zstd" || cfg.LingerMs != 5 || cfg.RateLimit != 1000.5:
		t.Errorf("producer settings: %+v", cfg)
	case cfg.KeyPattern != "sequential" || cfg.PayloadPattern != "text" || cfg.LoadPattern != "bursty":
		t.Errorf("patterns: %+v", cfg)
	case !cfg.Validate || cfg.CreateTopic || !cfg.DeleteTopicAfter || cfg.CSVOutput != "out.csv" || cfg.JSONOutput != "out.json":
		t.Errorf("switches/outputs: %+v", cfg)
	case cfg.clientCount() != 3 || cfg.MetricsURL != "http://x/metrics":
		t.Errorf("clients %d, metrics %q", cfg.clientCount(), cfg.MetricsURL)
	}
	// Flags beat the environment; long names take two dashes or one.
	cfg, err = ParseArgs([]string{"--bootstrap-servers", "a:1", "-concurrency=2", "--acks=all"}, env)
	if err != nil || cfg.Bootstrap[0] != "a:1" || len(cfg.Bootstrap) != 1 || cfg.Concurrency != 2 || cfg.Acks != -1 {
		t.Fatalf("flag over env: %+v %v", cfg, err)
	}
}

func TestParseArgsMessagesWithoutDuration(t *testing.T) {
	cfg, err := ParseArgs([]string{"-n", "1000"}, noEnv)
	if err != nil || cfg.Duration != 0 || cfg.Messages != 1000 {
		t.Fatalf("-n alone: duration %v messages %d err %v", cfg.Duration, cfg.Messages, err)
	}
	cfg, err = ParseArgs([]string{"-n", "1000", "-d", "5s"}, noEnv)
	if err != nil || cfg.Duration != 5*time.Second {
		t.Fatalf("-n with -d: duration %v err %v", cfg.Duration, err)
	}
}

func TestParseArgsHelp(t *testing.T) {
	if _, err := ParseArgs([]string{"--help"}, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestParseArgsBad(t *testing.T) {
	tests := []struct {
		args string
		want string // substring of the error
	}{
		{"--mode bogus", "--mode"},
		{"-m consume --prebuilt-batches", "--prebuilt-batches"},
		{"--prebuilt-batches --compression zstd", "--prebuilt-batches"},
		{"--inflight 0", "--inflight"},
		{"-m produce extra", "unexpected argument"},
		{"--no-such-flag", "no-such-flag"},
		{"-c 0", "--concurrency"},
		{"-c x", "-c"},
		{"-d 5x", "duration"},
		{"-d -5s", "duration"},
		{"-d 0", "--duration or --messages"},
		{"-s 10QB", "--message-size"},
		{"-s 70MB", "--message-size"},
		{"--acks 2", "--acks"},
		{"--compression brotli", "--compression"},
		{"--key-pattern odd", "--key-pattern"},
		{"--payload-pattern odd", "--payload-pattern"},
		{"--load-pattern odd", "--load-pattern"},
		{"-p 0", "--partitions"},
		{"-r 0", "--replication-factor"},
		{"--linger-ms -1", "--linger-ms"},
		{"--rate-limit -3", "--rate-limit"},
		{"-n -1", "--messages"},
		{"--batch-size 100", "--batch-size"},
		{"-s 1MB --batch-size 1MB", "--batch-size"},
		{"--validate -m consume -s 8", "--validate"},
		{"-m round-trip -s 10", "round-trip"},
		{"--consumer-group g -m produce", "--consumer-group"},
		{"-t " + strings.Repeat("x", 250), "--topic"},
		{"--clients -1", "--clients"},
		{"--topic-count 0", "--topic-count"},
		{"--topic-count 3 -m consume", "--topic-count"},
		{"--acked-output f -m round-trip -s 64", "--acked-output"},
	}
	for _, tt := range tests {
		_, err := ParseArgs(strings.Fields(tt.args), noEnv)
		if err == nil {
			t.Errorf("%q: no error", tt.args)
			continue
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%q: error %v does not wrap ErrUsage", tt.args, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %q does not mention %q", tt.args, err, tt.want)
		}
	}
}

func TestTopicCount(t *testing.T) {
	cfg, err := ParseArgs(strings.Fields("-t s --topic-count 3 --acked-output /tmp/x"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.topics(), ","); got != "s-0,s-1,s-2" || cfg.AckedOutput != "/tmp/x" {
		t.Errorf("topics %s, acked output %q", got, cfg.AckedOutput)
	}
	cfg, _ = ParseArgs(strings.Fields("-t s"), noEnv)
	if got := strings.Join(cfg.topics(), ","); got != "s" {
		t.Errorf("default topics %s", got)
	}
}

func TestParseBytesAndDuration(t *testing.T) {
	for in, want := range map[string]int{"256": 256, "1KB": 1024, "1kb": 1024, "4KiB": 4096, "16K": 16384,
		"2MB": 2 << 20, "1GiB": 1 << 30, "100B": 100, " 3 KB": 3072} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KB", "-1", "1.5KB", "1TB", "99999999999999G"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q): no error", in)
		}
	}
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond,
		"500ms": 500 * time.Millisecond, "2m": 2 * time.Minute, "0": 0} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestClientCount(t *testing.T) {
	for c, want := range map[int]int{1: 1, 8: 1, 16: 1, 17: 1, 128: 1, 512: 1} {
		cfg := DefaultConfig()
		cfg.Concurrency = c
		if got := cfg.clientCount(); got != want {
			t.Errorf("concurrency %d: %d clients, want %d", c, got, want)
		}
	}
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.Clients = 2, 5
	if cfg.clientCount() != 2 {
		t.Errorf("clients above concurrency: %d", cfg.clientCount())
	}
}

func TestParseMatrixArgs(t *testing.T) {
	m, err := ParseMatrixArgs([]string{"--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Runs() != 24 || !m.Quick || len(m.Profiles) != 4 || m.Duration != 3*time.Second {
		t.Fatalf("quick: %d runs, %+v", m.Runs(), m)
	}
	m, err = ParseMatrixArgs(nil)
	if err != nil || m.Runs() != 336 {
		t.Fatalf("full: %d runs, %v", m.Runs(), err)
	}
	m, err = ParseMatrixArgs(strings.Fields("--quick --profiles balanced --sizes 512,16KB --concurrency 2,4 " +
		"--patterns bursty,mixed --duration 1s --warmup 0 --max-bytes 10MB --partitions 1 --acks 1 --peer p:1 --out o --server-bin b"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Runs() != 8 || m.Sizes[1] != 16384 || m.Duration != time.Second || m.Warmup != 0 || m.MaxBytes != 10<<20 ||
		m.Partitions != 1 || m.Acks != 1 || m.Peer != "p:1" || m.Out != "o" || m.ServerBin != "b" {
		t.Fatalf("overrides: %+v", m)
	}
	for _, args := range []string{"--profiles fast", "--patterns wavy", "--sizes 1", "--concurrency 0",
		"--duration 0", "--max-bytes 1KB", "--partitions 0", "--acks 3", "--bogus", "extra", "--sizes x"} {
		if _, err := ParseMatrixArgs(strings.Fields(args)); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
}
