package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Profiles are chronik-server's produce profiles, in the order of the
// release notes.
var Profiles = []string{"low-latency", "balanced", "high-throughput", "extreme"}

// MatrixConfig is one matrix invocation.
type MatrixConfig struct {
	Quick       bool
	Peer        string // second broker address; its cells run after chronik's
	Out         string // output directory
	ServerBin   string // chronik-server binary ("" builds ./cmd/chronik-server)
	Profiles    []string
	Sizes       []int
	Concurrency []int
	Patterns    []string
	Duration    time.Duration // measured time per run
	Warmup      time.Duration
	MaxBytes    int64 // value bytes per run at most (bounds disk use)
	Partitions  int32
	Acks        int
}

// DefaultMatrix is the full matrix: 4 profiles x 4 sizes x 7 concurrency
// levels x 3 patterns = 336 runs of 2s warmup + 10s.
func DefaultMatrix() MatrixConfig {
	return MatrixConfig{
		Out:         "bench/results",
		Profiles:    append([]string(nil), Profiles...),
		Sizes:       []int{256, 1024, 4096, 16384},
		Concurrency: []int{1, 8, 32, 64, 128, 256, 512},
		Patterns:    []string{"steady", "bursty", "mixed"},
		Duration:    10 * time.Second,
		Warmup:      2 * time.Second,
		MaxBytes:    1 << 30,
		Partitions:  3,
		Acks:        -1,
	}
}

// quickMatrix is --quick: 4 profiles x 2 sizes x 3 concurrency levels,
// steady = 24 runs of 1s warmup + 3s.
func quickMatrix(m MatrixConfig) MatrixConfig {
	m.Quick = true
	m.Sizes = []int{256, 1024}
	m.Concurrency = []int{1, 32, 128}
	m.Patterns = []string{"steady"}
	m.Duration = 3 * time.Second
	m.Warmup = time.Second
	m.MaxBytes = 256 << 20
	return m
}

// MatrixUsage is printed for matrix --help and after a usage error.
const MatrixUsage = `usage: chronik-bench matrix [flags]

Starts chronik-server once per produce profile on a fresh temporary data dir
(deleted afterwards) and runs produce load for every cell of
profiles x sizes x concurrency x patterns; writes results.csv, results.json,
results.md and SVG charts (throughput and p99 against concurrency, a line per
profile) to --out.

  --quick                 4 profiles x 256B,1KB x 1,32,128 x steady = 24 runs of 1s+3s
  --peer ADDR             also run every size x concurrency x pattern cell against this broker
  --out DIR               output directory (bench/results)
  --server-bin PATH       chronik-server binary (default: go build ./cmd/chronik-server)
  --profiles LIST         comma separated (all four)
  --sizes LIST            message sizes (256,1KB,4KB,16KB)
  --concurrency LIST      producer counts (1,8,32,64,128,256,512)
  --patterns LIST         steady,bursty,mixed
  --duration D            measured time per run (10s; quick 3s)
  --warmup D              warmup per run (2s; quick 1s)
  --max-bytes BYTES       value bytes per run at most (1GiB; quick 256MiB)
  --partitions N          partitions of each run's topic (3)
  --acks A                0, 1 or all (all)
`

// ParseMatrixArgs parses the matrix command line; errors wrap ErrUsage.
func ParseMatrixArgs(args []string) (MatrixConfig, error) {
	m := DefaultMatrix()
	fs := flag.NewFlagSet("chronik-bench matrix", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var (
		quick                                    bool
		profiles, sizes, conc, patterns, maxB, a string
		dur, warm                                string
		partitions                               int
	)
	fs.BoolVar(&quick, "quick", false, "")
	fs.StringVar(&m.Peer, "peer", "", "")
	fs.StringVar(&m.Out, "out", m.Out, "")
	fs.StringVar(&m.ServerBin, "server-bin", "", "")
	fs.StringVar(&profiles, "profiles", "", "")
	fs.StringVar(&sizes, "sizes", "", "")
	fs.StringVar(&conc, "concurrency", "", "")
	fs.StringVar(&patterns, "patterns", "", "")
	fs.StringVar(&dur, "duration", "", "")
	fs.StringVar(&warm, "warmup", "", "")
	fs.StringVar(&maxB, "max-bytes", "", "")
	fs.IntVar(&partitions, "partitions", int(m.Partitions), "")
	fs.StringVar(&a, "acks", "all", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return m, err
		}
		return m, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return m, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if quick {
		m = quickMatrix(m)
	}
	var err error
	bad := func(flagName string, err error) error { return fmt.Errorf("%w: --%s: %v", ErrUsage, flagName, err) }
	if profiles != "" {
		m.Profiles = splitList(profiles)
	}
	if patterns != "" {
		m.Patterns = splitList(patterns)
	}
	if sizes != "" {
		if m.Sizes, err = parseIntList(sizes, parseBytes); err != nil {
			return m, bad("sizes", err)
		}
	}
	if conc != "" {
		if m.Concurrency, err = parseIntList(conc, strconv.Atoi); err != nil {
			return m, bad("concurrency", err)
		}
	}
	if dur != "" {
		if m.Duration, err = parseDuration(dur); err != nil {
			return m, bad("duration", err)
		}
	}
	if warm != "" {
		if m.Warmup, err = parseDuration(warm); err != nil {
			return m, bad("warmup", err)
		}
	}
	if maxB != "" {
		n, err := parseBytes(maxB)
		if err != nil {
			return m, bad("max-bytes", err)
		}
		m.MaxBytes = int64(n)
	}
	if m.Acks, err = parseAcks(a); err != nil {
		return m, bad("acks", err)
	}
	m.Partitions = int32(partitions)
	return m, m.Check()
}

// Check validates a MatrixConfig; errors wrap ErrUsage.
func (m *MatrixConfig) Check() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...)) }
	for _, p := range m.Profiles {
		if !oneOf(p, Profiles...) {
			return bad("unknown profile %q (want %s)", p, strings.Join(Profiles, ", "))
		}
	}
	for _, p := range m.Patterns {
		if !oneOf(p, "steady", "bursty", "mixed") {
			return bad("unknown pattern %q (want steady, bursty, mixed)", p)
		}
	}
	for _, s := range m.Sizes {
		if s < headerSize || s > 1<<20 {
			return bad("message size %d out of range %d..1MiB", s, headerSize)
		}
	}
	for _, c := range m.Concurrency {
		if c < 1 || c > 10_000 {
			return bad("concurrency %d out of range 1..10000", c)
		}
	}
	switch {
	case len(m.Profiles) == 0 || len(m.Sizes) == 0 || len(m.Concurrency) == 0 || len(m.Patterns) == 0:
		return bad("empty profile, size, concurrency or pattern list")
	case m.Duration <= 0 || m.Duration > time.Hour:
		return bad("--duration must be in (0, 1h]")
	case m.Warmup < 0 || m.Warmup > 10*time.Minute:
		return bad("--warmup must be in [0, 10m]")
	case m.MaxBytes < 1<<20:
		return bad("--max-bytes must be at least 1MiB")
	case m.Partitions < 1 || m.Partitions > 10_000:
		return bad("--partitions must be in 1..10000")
	case m.Out == "":
		return bad("--out is empty")
	}
	return nil
}

// Runs is how many chronik runs the matrix makes (peer runs not included).
func (m *MatrixConfig) Runs() int {
	return len(m.Profiles) * len(m.Sizes) * len(m.Concurrency) * len(m.Patterns)
}

func parseIntList(s string, parse func(string) (int, error)) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := parse(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// MatrixRow is one cell's outcome.
type MatrixRow struct {
	Target      string  `json:"target"`  // "chronik" or "peer"
	Profile     string  `json:"profile"` // produce profile, or "peer"
	Size        int     `json:"size"`
	Concurrency int     `json:"concurrency"`
	Pattern     string  `json:"pattern"`
	Result      *Result `json:"result,omitempty"`
	Err         string  `json:"error,omitempty"`
}

// failed reports a cell that did not run cleanly.
func (r *MatrixRow) failed() bool { return r.Err != "" || r.Result == nil || !r.Result.OK() }

// MatrixReport is every row of a matrix run.
type MatrixReport struct {
	Config    MatrixConfig `json:"config"`
	StartedAt time.Time    `json:"started_at"`
	Host      string       `json:"host"`
	Rows      []MatrixRow  `json:"rows"`
}

// FailedCells counts rows with an error, failures or validation errors.
func (r *MatrixReport) FailedCells() int {
	n := 0
	for i := range r.Rows {
		if r.Rows[i].failed() {
			n++
		}
	}
	return n
}

// RunMatrix runs the matrix and writes its report files to m.Out.
func RunMatrix(ctx context.Context, m MatrixConfig, out io.Writer) (*MatrixReport, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	work, err := os.MkdirTemp("", "chronik-matrix-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(work)
	bin := m.ServerBin
	if bin == "" {
		if bin, err = buildServer(ctx, work, out); err != nil {
			return nil, err
		}
	}
	rep := &MatrixReport{Config: m, StartedAt: time.Now().UTC(), Host: hostDescription()}
	csvPath := filepath.Join(m.Out, "results.csv")
	if err := os.Remove(csvPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bench: %w", err)
	}
	total := m.Runs()
	if m.Peer != "" {
		total += len(m.Sizes) * len(m.Concurrency) * len(m.Patterns)
	}
	fmt.Fprintf(out, "matrix: %d runs (%v warmup + %v each), output in %s\n", total, m.Warmup, m.Duration, m.Out)
	n := 0
	record := func(row MatrixRow) error {
		n++
		rep.Rows = append(rep.Rows, row)
		printRow(out, n, total, &row)
		return appendCSV(csvPath, matrixCSVHeader(), [][]string{matrixCSVRow(&row)})
	}
	for _, profile := range m.Profiles {
		if ctx.Err() != nil {
			break
		}
		if err := runProfile(ctx, m, bin, work, profile, record); err != nil {
			return rep, err
		}
	}
	if m.Peer != "" {
		for _, cell := range m.cells() {
			if ctx.Err() != nil {
				break
			}
			row := runCell(ctx, m, m.Peer, "", "peer", cell)
			if err := record(row); err != nil {
				return rep, err
			}
		}
	}
	if err := rep.WriteAll(m.Out); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "matrix: wrote %s (%d cells, %d with failures)\n", m.Out, len(rep.Rows), rep.FailedCells())
	return rep, ctx.Err()
}

type cell struct {
	size, concurrency int
	pattern           string
}

func (m *MatrixConfig) cells() []cell {
	var out []cell
	for _, p := range m.Patterns {
		for _, s := range m.Sizes {
			for _, c := range m.Concurrency {
				out = append(out, cell{s, c, p})
			}
		}
	}
	return out
}

// runProfile starts chronik-server with one profile on a fresh data dir,
// runs every cell against it and removes the data dir.
func runProfile(ctx context.Context, m MatrixConfig, bin, work, profile string, record func(MatrixRow) error) error {
	dataDir := filepath.Join(work, "data-"+profile)
	srv, err := StartServer(ctx, bin, dataDir, "--produce-profile", profile)
	if err != nil {
		return err
	}
	defer func() {
		srv.Stop()
		os.RemoveAll(dataDir)
	}()
	for _, c := range m.cells() {
		if ctx.Err() != nil {
			return nil
		}
		row := runCell(ctx, m, srv.Kafka, "http://"+srv.HTTP+"/metrics", profile, c)
		if err := record(row); err != nil {
			return err
		}
		if srv.Exited() {
			return fmt.Errorf("bench: chronik-server (%s) exited during the matrix:\n%s", profile, srv.LogTail())
		}
	}
	return nil
}

// runCell runs one produce cell, bounded in time (warmup + duration + the
// delivery and setup timeouts) and in bytes (MaxBytes of values).
func runCell(ctx context.Context, m MatrixConfig, addr, metricsURL, profile string, c cell) MatrixRow {
	target := "chronik"
	if profile == "peer" {
		target = "peer"
	}
	row := MatrixRow{Target: target, Profile: profile, Size: c.size, Concurrency: c.concurrency, Pattern: c.pattern}
	cfg := DefaultConfig()
	cfg.Bootstrap = []string{addr}
	cfg.Topic = fmt.Sprintf("matrix-%s-%s-%d-%d-%d", profile, c.pattern, c.size, c.concurrency, time.Now().UnixNano()%1e6)
	cfg.Concurrency = c.concurrency
	cfg.MessageSize = c.size
	cfg.Duration, cfg.Warmup = m.Duration, m.Warmup
	cfg.Messages = max(m.MaxBytes/int64(c.size), 1)
	cfg.Partitions = m.Partitions
	cfg.Acks = m.Acks
	cfg.LoadPattern = c.pattern
	cfg.DeleteTopicAfter = true // keeps disk use to one run's data
	cfg.ReportInterval = 0
	cfg.Quiet = true
	cfg.MetricsURL = metricsURL
	rctx, cancel := context.WithTimeout(ctx, m.Warmup+m.Duration+deliveryTimeout+2*setupTimeout)
	defer cancel()
	res, err := Run(rctx, cfg, io.Discard)
	row.Result = res
	if err != nil {
		row.Err = err.Error()
	}
	return row
}

func printRow(w io.Writer, n, total int, r *MatrixRow) {
	prefix := fmt.Sprintf("[%3d/%d] %-7s %-15s %6s c=%-3d %-6s", n, total, r.Target, r.Profile,
		sizeName(r.Size), r.Concurrency, r.Pattern)
	if r.Result == nil {
		fmt.Fprintf(w, "%s ERROR %s\n", prefix, r.Err)
		return
	}
	res := r.Result
	fmt.Fprintf(w, "%s %9.0f msg/s %8.2f MB/s p50 %7.2f ms p99 %7.2f ms failures %d\n", prefix,
		res.MsgsPerSec, res.MBPerSec, res.Latency.P50Ms, res.Latency.P99Ms, res.Failures)
	if r.Err != "" {
		fmt.Fprintf(w, "          error: %s\n", r.Err)
	}
}

// sizeName prints 256 as 256B and 1024 as 1KB.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KB"
	}
	return strconv.Itoa(n) + "B"
}
