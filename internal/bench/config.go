package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrUsage marks a bad command line: the caller prints it and exits 2.
var ErrUsage = errors.New("bench: usage")

// Mode is what a run does.
type Mode string

// The modes of chronik-bench.
const (
	ModeProduce   Mode = "produce"
	ModeConsume   Mode = "consume"
	ModeRoundTrip Mode = "round-trip"
	ModeMetadata  Mode = "metadata"
)

// Config is one load run. Field comments name the flag.
type Config struct {
	Bootstrap         []string      // --bootstrap-servers, -b (KAFKA_BOOTSTRAP_SERVERS)
	Topic             string        // --topic, -t
	TopicCount        int           // --topic-count: produce over TOPIC-0..TOPIC-(N-1) when above 1
	AckedOutput       string        // --acked-output: per-partition acknowledged counts (produce)
	Mode              Mode          // --mode, -m
	Concurrency       int           // --concurrency, -c
	Clients           int           // --clients (0: auto, see clientCount)
	Duration          time.Duration // --duration, -d (0 with --messages: no time limit)
	Warmup            time.Duration // --warmup, -w
	MessageSize       int           // --message-size, -s (bytes)
	Messages          int64         // --messages, -n (0: run for --duration)
	RateLimit         float64       // --rate-limit, records/s over all senders (0: none)
	Compression       string        // --compression none|gzip|snappy|lz4|zstd
	Acks              int           // --acks 0|1|all(-1)
	LingerMs          int           // --linger-ms
	Inflight          int           // --inflight: records each sender keeps in flight (1: wait for each ack)
	PrebuiltBatches   bool          // --prebuilt-batches: send pre-encoded batches (broker bandwidth runs)
	RawFetch          bool          // --raw-fetch: consume with raw Fetch requests, counting bytes (broker fetch capacity runs)
	BatchSize         int           // --batch-size (bytes, kgo ProducerBatchMaxBytes)
	Partitions        int32         // --partitions, -p (for --create-topic)
	ReplicationFactor int16         // --replication-factor, -r
	CreateTopic       bool          // --create-topic
	DeleteTopicAfter  bool          // --delete-topic-after
	KeyPattern        string        // --key-pattern random|sequential|fixed
	PayloadPattern    string        // --payload-pattern random|zeros|text
	LoadPattern       string        // --load-pattern steady|bursty|mixed
	Validate          bool          // --validate
	ConsumerGroup     string        // --consumer-group
	CSVOutput         string        // --csv-output
	JSONOutput        string        // --json-output
	ReportInterval    time.Duration // --report-interval (0: no progress lines)
	MetricsURL        string        // --metrics-url (broker Prometheus endpoint, optional)
	Quiet             bool          // --quiet: no progress lines or summary text

	durationSet bool
}

// DefaultConfig is the configuration with every flag at its default.
func DefaultConfig() Config {
	return Config{
		Bootstrap:         []string{"localhost:9092"},
		Topic:             "chronik-bench",
		TopicCount:        1,
		Mode:              ModeProduce,
		Concurrency:       1,
		Inflight:          1,
		Duration:          30 * time.Second,
		MessageSize:       1024,
		Compression:       "none",
		Acks:              -1,
		BatchSize:         1 << 20,
		Partitions:        3,
		ReplicationFactor: 1,
		CreateTopic:       true,
		KeyPattern:        "random",
		PayloadPattern:    "random",
		LoadPattern:       "steady",
		ReportInterval:    5 * time.Second,
	}
}

// Usage is printed for --help and after a usage error.
const Usage = `usage: chronik-bench [flags]            one load run
       chronik-bench matrix [flags]     the profile matrix (chronik-bench matrix --help)

Flags (long names take one or two dashes):
  -b, --bootstrap-servers LIST  comma separated brokers (env KAFKA_BOOTSTRAP_SERVERS; localhost:9092)
  -t, --topic NAME              topic (chronik-bench)
      --topic-count N           produce mode: spread records over N topics NAME-0 .. NAME-(N-1), each
                                record to a random one (1: the topic NAME itself); with
                                --prebuilt-batches each request to a random partition of them all
      --acked-output FILE       produce mode: write "topic partition acknowledged" lines at the end,
                                every acknowledgement of the run (warmup included), for checking
                                against the broker's high watermarks after a restart or a crash
  -m, --mode MODE               produce | consume | round-trip | metadata (produce)
  -c, --concurrency N           producers (each with one record in flight) or consumers (1)
      --clients N               kgo clients the senders share (default 1)
  -d, --duration D              measured time, e.g. 30s (30s; with -n and no -d: no limit)
  -w, --warmup D                unmeasured time before it (0s)
  -s, --message-size BYTES      record value size, e.g. 256, 1KB, 16KiB (1024)
  -n, --messages N              stop after N records (0: run for --duration)
      --rate-limit R            records per second over all senders (0: unlimited)
      --compression C           none | gzip | snappy | lz4 | zstd (none)
      --acks A                  0 | 1 | all (all)
      --linger-ms MS            producer linger (0)
      --inflight N              records each producer keeps in flight (1: send, wait for the ack,
                                send the next; more: asynchronous sends, for client-batching runs)
      --prebuilt-batches        produce mode: each sender sends one pre-encoded batch of --batch-size
                                bytes per request and waits for its response; no per-record client
                                work, so the run measures the broker's bandwidth, not the client's
                                (a batch holds at least one record: --batch-size 1 sends one each)
      --raw-fetch               consume mode: each consumer sends Fetch requests itself on its own
                                connection and counts record-batch bytes without decoding a record,
                                reading its partitions from the start again whenever it reaches the
                                end; the run measures the broker's fetch capacity, not the client's
      --batch-size BYTES        producer max batch bytes (1MiB)
  -p, --partitions N            partitions when creating the topic (3)
  -r, --replication-factor N    replication factor when creating the topic (1)
      --create-topic            create the topic first if missing (true; --create-topic=false to skip)
      --delete-topic-after      delete the topic at the end (false)
      --key-pattern P           random | sequential | fixed (random)
      --payload-pattern P       random | zeros | text (random)
      --load-pattern P          steady | bursty (500ms on, 500ms off) | mixed (sizes size/2..3size/2) (steady)
      --validate                consumers check every record's checksum and per-producer order
      --consumer-group G        consume through a consumer group (default: assign partitions directly)
      --csv-output FILE         append a CSV row (header written when the file is new)
      --json-output FILE        write the result as JSON
      --report-interval D       progress line period (5s; 0 disables)
      --metrics-url URL         broker Prometheus endpoint; reports broker CPU seconds over the run
      --quiet                   print nothing but errors
`

// ParseArgs parses the command line of one run. env looks up environment
// variables (os.Getenv in main). Errors wrap ErrUsage.
func ParseArgs(args []string, env func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if v := env("KAFKA_BOOTSTRAP_SERVERS"); v != "" {
		cfg.Bootstrap = splitList(v)
	}
	fs := flag.NewFlagSet("chronik-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	bootstrap := strings.Join(cfg.Bootstrap, ",")
	mode := string(cfg.Mode)
	size := strconv.Itoa(cfg.MessageSize)
	batch := strconv.Itoa(cfg.BatchSize)
	acks := "all"
	partitions, rf := int(cfg.Partitions), int(cfg.ReplicationFactor)
	str := func(p *string, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, *p, usage)
		}
	}
	str(&bootstrap, "", "bootstrap-servers", "b")
	str(&cfg.Topic, "", "topic", "t")
	str(&cfg.AckedOutput, "", "acked-output")
	fs.IntVar(&cfg.TopicCount, "topic-count", cfg.TopicCount, "")
	str(&mode, "", "mode", "m")
	str(&size, "", "message-size", "s")
	str(&batch, "", "batch-size")
	str(&acks, "", "acks")
	str(&cfg.Compression, "", "compression")
	str(&cfg.KeyPattern, "", "key-pattern")
	str(&cfg.PayloadPattern, "", "payload-pattern")
	str(&cfg.LoadPattern, "", "load-pattern")
	str(&cfg.ConsumerGroup, "", "consumer-group")
	str(&cfg.CSVOutput, "", "csv-output")
	str(&cfg.JSONOutput, "", "json-output")
	str(&cfg.MetricsURL, "", "metrics-url")
	for _, n := range []string{"concurrency", "c"} {
		fs.IntVar(&cfg.Concurrency, n, cfg.Concurrency, "")
	}
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "")
	for _, n := range []string{"duration", "d"} {
		fs.Func(n, "", func(s string) (err error) {
			cfg.Duration, err = parseDuration(s)
			cfg.durationSet = true
			return err
		})
	}
	for _, n := range []string{"warmup", "w"} {
		fs.Func(n, "", func(s string) (err error) { cfg.Warmup, err = parseDuration(s); return err })
	}
	fs.Func("report-interval", "", func(s string) (err error) { cfg.ReportInterval, err = parseDuration(s); return err })
	for _, n := range []string{"messages", "n"} {
		fs.Int64Var(&cfg.Messages, n, cfg.Messages, "")
	}
	fs.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "")
	fs.IntVar(&cfg.LingerMs, "linger-ms", cfg.LingerMs, "")
	fs.IntVar(&cfg.Inflight, "inflight", cfg.Inflight, "")
	fs.BoolVar(&cfg.PrebuiltBatches, "prebuilt-batches", cfg.PrebuiltBatches, "")
	fs.BoolVar(&cfg.RawFetch, "raw-fetch", cfg.RawFetch, "")
	for _, n := range []string{"partitions", "p"} {
		fs.IntVar(&partitions, n, partitions, "")
	}
	for _, n := range []string{"replication-factor", "r"} {
		fs.IntVar(&rf, n, rf, "")
	}
	fs.BoolVar(&cfg.CreateTopic, "create-topic", cfg.CreateTopic, "")
	fs.BoolVar(&cfg.DeleteTopicAfter, "delete-topic-after", cfg.DeleteTopicAfter, "")
	fs.BoolVar(&cfg.Validate, "validate", cfg.Validate, "")
	fs.BoolVar(&cfg.Quiet, "quiet", cfg.Quiet, "")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	var err error
	cfg.Bootstrap = splitList(bootstrap)
	cfg.Mode = Mode(mode)
	if cfg.MessageSize, err = parseBytes(size); err != nil {
		return cfg, fmt.Errorf("%w: --message-size: %v", ErrUsage, err)
	}
	if cfg.BatchSize, err = parseBytes(batch); err != nil {
		return cfg, fmt.Errorf("%w: --batch-size: %v", ErrUsage, err)
	}
	if cfg.Acks, err = parseAcks(acks); err != nil {
		return cfg, fmt.Errorf("%w: --acks: %v", ErrUsage, err)
	}
	if partitions < 1 || partitions > 1<<20 {
		return cfg, fmt.Errorf("%w: --partitions must be in 1..%d, got %d", ErrUsage, 1<<20, partitions)
	}
	if rf < 1 || rf > 32767 {
		return cfg, fmt.Errorf("%w: --replication-factor must be in 1..32767, got %d", ErrUsage, rf)
	}
	cfg.Partitions, cfg.ReplicationFactor = int32(partitions), int16(rf)
	if cfg.Messages > 0 && !cfg.durationSet {
		cfg.Duration = 0
	}
	return cfg, cfg.Check()
}

// Check validates a Config; errors wrap ErrUsage.
func (c *Config) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
	}
	switch {
	case len(c.Bootstrap) == 0:
		return bad("--bootstrap-servers is empty")
	case c.Topic == "" || len(c.Topic) > 249:
		return bad("--topic must be 1..249 characters")
	case c.TopicCount < 1 || c.TopicCount > 10_000:
		return bad("--topic-count must be in 1..10000, got %d", c.TopicCount)
	case c.TopicCount > 1 && c.Mode != ModeProduce:
		return bad("--topic-count above 1 needs --mode produce")
	case c.AckedOutput != "" && (c.Mode != ModeProduce || c.PrebuiltBatches):
		return bad("--acked-output needs --mode produce without --prebuilt-batches")
	case c.Mode != ModeProduce && c.Mode != ModeConsume && c.Mode != ModeRoundTrip && c.Mode != ModeMetadata:
		return bad("--mode must be produce, consume, round-trip or metadata, got %q", c.Mode)
	case c.Concurrency < 1 || c.Concurrency > 100_000:
		return bad("--concurrency must be in 1..100000, got %d", c.Concurrency)
	case c.Clients < 0 || c.Clients > 1024:
		return bad("--clients must be in 0..1024, got %d", c.Clients)
	case c.Duration < 0 || c.Warmup < 0 || c.ReportInterval < 0:
		return bad("durations must not be negative")
	case c.Duration == 0 && c.Messages == 0:
		return bad("need a --duration or --messages")
	case c.Messages < 0:
		return bad("--messages must not be negative")
	case c.MessageSize < 0 || c.MessageSize > 64<<20:
		return bad("--message-size must be in 0..64MiB, got %d", c.MessageSize)
	case c.Validate && c.MessageSize < headerSize && c.Mode != ModeMetadata:
		return bad("--validate needs --message-size >= %d (sequence and checksum header)", headerSize)
	case c.Mode == ModeRoundTrip && c.MessageSize < headerSize:
		return bad("round-trip needs --message-size >= %d (the send time travels in the value)", headerSize)
	case c.RateLimit < 0:
		return bad("--rate-limit must not be negative")
	case c.PrebuiltBatches && c.Mode != ModeProduce:
		return bad("--prebuilt-batches needs --mode produce")
	case c.RawFetch && c.Mode != ModeConsume:
		return bad("--raw-fetch needs --mode consume")
	case c.RawFetch && (c.ConsumerGroup != "" || c.Validate):
		return bad("--raw-fetch reads partitions directly and decodes no record; drop --consumer-group and --validate")
	case c.PrebuiltBatches && c.Compression != "none" && c.Compression != "":
		return bad("--prebuilt-batches sends uncompressed batches; drop --compression")
	case c.Inflight < 1 || c.Inflight > 1_000_000:
		return bad("--inflight must be in 1..1000000, got %d", c.Inflight)
	case c.LingerMs < 0 || c.LingerMs > 60_000:
		return bad("--linger-ms must be in 0..60000, got %d", c.LingerMs)
	case c.PrebuiltBatches && (c.BatchSize < 1 || c.BatchSize > 1<<30):
		return bad("--batch-size must be in 1..1GiB, got %d", c.BatchSize)
	case !c.PrebuiltBatches && (c.BatchSize < 1024 || c.BatchSize > 1<<30):
		return bad("--batch-size must be in 1KiB..1GiB, got %d", c.BatchSize)
	case !c.PrebuiltBatches && c.largestRecord()+1024 > c.BatchSize:
		return bad("--batch-size %d must exceed the largest record (%d bytes) by 1KiB of overhead", c.BatchSize, c.largestRecord())
	case c.ConsumerGroup != "" && c.Mode != ModeConsume && c.Mode != ModeRoundTrip:
		return bad("--consumer-group applies to consume and round-trip modes")
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		return bad("--compression: %v", err)
	}
	if !oneOf(c.KeyPattern, "random", "sequential", "fixed") {
		return bad("--key-pattern must be random, sequential or fixed, got %q", c.KeyPattern)
	}
	if !oneOf(c.PayloadPattern, "random", "zeros", "text") {
		return bad("--payload-pattern must be random, zeros or text, got %q", c.PayloadPattern)
	}
	if !oneOf(c.LoadPattern, "steady", "bursty", "mixed") {
		return bad("--load-pattern must be steady, bursty or mixed, got %q", c.LoadPattern)
	}
	if c.Acks == 0 && c.Mode == ModeRoundTrip && c.Validate {
		return bad("--validate with round-trip needs --acks 1 or all (acks=0 gives no confirmation to check against)")
	}
	return nil
}

// topics names the topics of a run: --topic, or with --topic-count N the
// N topics TOPIC-0 .. TOPIC-(N-1).
func (c *Config) topics() []string {
	if c.TopicCount <= 1 {
		return []string{c.Topic}
	}
	out := make([]string, c.TopicCount)
	for i := range out {
		out[i] = c.Topic + "-" + strconv.Itoa(i)
	}
	return out
}

// largestRecord is the largest value a sender makes.
func (c *Config) largestRecord() int {
	if c.LoadPattern == "mixed" {
		return max(c.MessageSize*3/2, headerSize)
	}
	return max(c.MessageSize, headerSize)
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseDuration takes a Go duration ("1m30s", "500ms") or bare seconds ("30").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e7 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. 30s, 500ms, 2m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// parseBytes takes a byte count with an optional unit: 256, 1KB, 4KiB, 1MB.
// K and KB mean 1024 here, as the original tool's sizes (1KB = 1024 bytes).
func parseBytes(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/int64(mult) {
		return 0, fmt.Errorf("bad size %q (want bytes, e.g. 256, 1KB, 16KiB)", s)
	}
	return int(n) * mult, nil
}

func parseAcks(s string) (int, error) {
	switch strings.ToLower(s) {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	case "all", "-1":
		return -1, nil
	}
	return 0, fmt.Errorf("must be 0, 1 or all, got %q", s)
}

// acksName is the flag spelling of an acks value.
func acksName(a int) string {
	if a < 0 {
		return "all"
	}
	return strconv.Itoa(a)
}

// clientCount is how many kgo clients the senders of a run share. Each
// sender has one record in flight; senders on one client share its produce
// requests (kgo batches whatever is buffered per partition while the previous
// request is in flight). The default is one client: an application's threads
// share one producer, which is what the Kafka clients recommend. --clients N
// spreads the senders over N clients (more, smaller requests: the numbers
// drop on every broker; bench/RESULTS.md reports both shapes).
func (c *Config) clientCount() int {
	if c.Clients > 0 {
		return min(c.Clients, c.Concurrency)
	}
	return 1
}
