package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of one run. MB means 2^20 bytes of record values
// (keys and protocol overhead are not counted), as kafka-producer-perf-test.
type Result struct {
	Mode        Mode     `json:"mode"`
	Bootstrap   string   `json:"bootstrap"`
	Topic       string   `json:"topic"`
	Concurrency int      `json:"concurrency"`
	Clients     int      `json:"clients"`
	MessageSize int      `json:"message_size"`
	Partitions  int      `json:"partitions"`
	Acks        string   `json:"acks"`
	Compression string   `json:"compression"`
	LingerMs    int      `json:"linger_ms"`
	LoadPattern string   `json:"load_pattern"`
	KeyPattern  string   `json:"key_pattern"`
	Payload     string   `json:"payload_pattern"`
	RateLimit   float64  `json:"rate_limit"`
	StartedAt   string   `json:"started_at"`
	WarmupSec   float64  `json:"warmup_sec"`
	ElapsedSec  float64  `json:"elapsed_sec"` // measured phase, until its last operation completed
	Records     int64    `json:"records"`     // measured, successful
	Bytes       int64    `json:"bytes"`
	MsgsPerSec  float64  `json:"msgs_per_sec"`
	MBPerSec    float64  `json:"mb_per_sec"`
	Failures    int64    `json:"failures"`
	FailureKind []string `json:"failure_kinds,omitempty"` // "count: error", most frequent first
	// LatencyKind says what the latencies time: "produce-ack" (send to
	// acknowledgement), "end-to-end" (send to consume, round-trip), "poll"
	// (consume: how long each PollFetches waited for records) or
	// "metadata-request".
	LatencyKind   string      `json:"latency_kind"`
	Latency       Latencies   `json:"latency"`
	WarmupRecords int64       `json:"warmup_records"`
	Produced      int64       `json:"produced"` // acknowledged produces in the whole run (warmup included)
	ClientUserSec float64     `json:"client_cpu_user_sec"`
	ClientSysSec  float64     `json:"client_cpu_sys_sec"`
	BrokerCPUSec  *float64    `json:"broker_cpu_sec,omitempty"` // from --metrics-url
	Validation    *Validation `json:"validation,omitempty"`
	Notes         []string    `json:"notes,omitempty"`
}

// OK reports whether the run had no failure and, when validated, no error.
func (r *Result) OK() bool {
	return r.Failures == 0 && (r.Validation == nil || r.Validation.Errors() == 0)
}

func (r *run) result(cpu cpuTimes) *Result {
	c := r.cfg
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	end := time.Unix(0, r.stopTime.Load())
	if r.st.lastDone.After(end) {
		end = r.st.lastDone
	}
	elapsed := end.Sub(r.measureStart).Seconds()
	res := &Result{
		Mode: c.Mode, Bootstrap: strings.Join(c.Bootstrap, ","), Topic: c.Topic,
		Concurrency: c.Concurrency, Clients: c.clientCount(), MessageSize: c.MessageSize,
		Partitions: r.partitionCount, Acks: acksName(c.Acks), Compression: c.Compression,
		LingerMs: c.LingerMs, LoadPattern: c.LoadPattern, KeyPattern: c.KeyPattern,
		Payload: c.PayloadPattern, RateLimit: c.RateLimit,
		StartedAt: r.start.UTC().Format(time.RFC3339), WarmupSec: c.Warmup.Seconds(),
		ElapsedSec: elapsed, Records: r.st.records, Bytes: r.st.bytes,
		Failures: r.st.failures, Latency: r.st.hist.Summary(), WarmupRecords: r.st.warmupRecords,
		Produced: r.acked.Load(), ClientUserSec: cpu.user.Seconds(), ClientSysSec: cpu.sys.Seconds(),
	}
	if elapsed > 0 {
		res.MsgsPerSec = float64(res.Records) / elapsed
		res.MBPerSec = float64(res.Bytes) / elapsed / (1 << 20)
	}
	for _, k := range topFailures(r.st.failureKinds) {
		res.FailureKind = append(res.FailureKind, fmt.Sprintf("%d: %s", r.st.failureKinds[k], k))
	}
	switch c.Mode {
	case ModeProduce:
		res.LatencyKind = "produce-ack"
		if c.Acks == 0 {
			res.Notes = append(res.Notes, "acks=0: latency is the time to write the request, not a broker acknowledgement")
		}
	case ModeConsume:
		res.LatencyKind = "poll"
		res.Produced = 0
	case ModeRoundTrip:
		res.LatencyKind = "end-to-end"
	case ModeMetadata:
		res.LatencyKind = "metadata-request"
		res.Produced = 0
	}
	if c.Mode == ModeConsume {
		res.Clients = int(r.consumers.Load()) // one client per consumer
	}
	if r.val != nil && c.Validate {
		acked := int64(-1)
		if c.Mode == ModeRoundTrip {
			acked = r.acked.Load()
		}
		res.Validation = r.val.result(acked)
	}
	if c.Mode == ModeConsume && c.ConsumerGroup == "" && int(r.consumers.Load()) < c.Concurrency {
		res.Notes = append(res.Notes, fmt.Sprintf("%d consumers asked for, %d started: one per partition at most",
			c.Concurrency, r.consumers.Load()))
	}
	if c.Validate && (c.Mode == ModeProduce || c.Mode == ModeMetadata) {
		res.Notes = append(res.Notes, "--validate checks records in consume and round-trip modes; produce always writes checkable values (>= 36 bytes)")
	}
	if n := r.cut.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("run interrupted: %d operations in flight were cut short (not counted)", n))
	}
	if c.Mode == ModeConsume && c.Messages > 0 && res.Records < c.Messages {
		res.Notes = append(res.Notes, fmt.Sprintf("consumed %d of the %d records asked for before the time limit", res.Records, c.Messages))
	}
	return res
}

// WriteText prints the human summary.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\n== chronik-bench %s: %s topic %s, concurrency %d, %d B values, acks %s, compression %s, %s load ==\n",
		r.Mode, r.Bootstrap, r.Topic, r.Concurrency, r.MessageSize, r.Acks, r.Compression, r.LoadPattern)
	fmt.Fprintf(w, "records     %d in %.2f s (after %.1f s warmup with %d records)\n", r.Records, r.ElapsedSec, r.WarmupSec, r.WarmupRecords)
	fmt.Fprintf(w, "throughput  %.0f msg/s, %.2f MB/s\n", r.MsgsPerSec, r.MBPerSec)
	fmt.Fprintf(w, "latency     (%s) p50 %.3f ms, p90 %.3f ms, p95 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
		r.LatencyKind, r.Latency.P50Ms, r.Latency.P90Ms, r.Latency.P95Ms, r.Latency.P99Ms, r.Latency.P999Ms, r.Latency.MaxMs)
	cpu := r.ClientUserSec + r.ClientSysSec
	fmt.Fprintf(w, "client cpu  %.2f s (user %.2f, sys %.2f) = %.0f%% of one core", cpu, r.ClientUserSec, r.ClientSysSec, pct(cpu, r.ElapsedSec))
	if r.BrokerCPUSec != nil {
		fmt.Fprintf(w, "; broker cpu %.2f s = %.0f%% of one core", *r.BrokerCPUSec, pct(*r.BrokerCPUSec, r.ElapsedSec))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "failures    %d\n", r.Failures)
	for i, k := range r.FailureKind {
		if i == 10 {
			fmt.Fprintf(w, "            ... %d more kinds\n", len(r.FailureKind)-10)
			break
		}
		fmt.Fprintf(w, "            %s\n", k)
	}
	if v := r.Validation; v != nil {
		status := "OK"
		if v.Errors() > 0 {
			status = "FAILED"
		}
		fmt.Fprintf(w, "validation  %s: checked %d, valid %d, corrupt %d, out of order %d, duplicate %d, foreign %d",
			status, v.Checked, v.Valid, v.Corrupt, v.OutOfOrder, v.Duplicate, v.Foreign)
		if r.Mode == ModeRoundTrip {
			fmt.Fprintf(w, ", acked %d, missing %d, seen though produce failed %d", v.Acked, v.Missing, v.Unacked)
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note        %s\n", n)
	}
}

func pct(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * part / whole
}

// CSVHeader is the column list of CSVRow.
func CSVHeader() []string {
	return []string{"started_at", "mode", "bootstrap", "topic", "concurrency", "message_size", "partitions",
		"acks", "compression", "linger_ms", "load_pattern", "elapsed_sec", "records", "bytes",
		"msgs_per_sec", "mb_per_sec", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms",
		"failures", "client_cpu_sec", "broker_cpu_sec", "validation_errors"}
}

// CSVRow is the result as one CSV record in CSVHeader's order.
func (r *Result) CSVRow() []string {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	broker, verr := "", ""
	if r.BrokerCPUSec != nil {
		broker = f(*r.BrokerCPUSec, 3)
	}
	if r.Validation != nil {
		verr = strconv.FormatInt(r.Validation.Errors(), 10)
	}
	l := r.Latency
	return []string{r.StartedAt, string(r.Mode), r.Bootstrap, r.Topic, strconv.Itoa(r.Concurrency),
		strconv.Itoa(r.MessageSize), strconv.Itoa(r.Partitions), r.Acks, r.Compression,
		strconv.Itoa(r.LingerMs), r.LoadPattern, f(r.ElapsedSec, 3), strconv.FormatInt(r.Records, 10),
		strconv.FormatInt(r.Bytes, 10), f(r.MsgsPerSec, 1), f(r.MBPerSec, 3), f(l.P50Ms, 3), f(l.P90Ms, 3),
		f(l.P95Ms, 3), f(l.P99Ms, 3), f(l.P999Ms, 3), f(l.MaxMs, 3), strconv.FormatInt(r.Failures, 10),
		f(r.ClientUserSec+r.ClientSysSec, 3), broker, verr}
}

// WriteFiles appends the CSV row to csvPath (writing the header first when
// the file is new or empty) and writes the JSON result to jsonPath; empty
// paths are skipped.
func (r *Result) WriteFiles(csvPath, jsonPath string) error {
	if csvPath != "" {
		if err := appendCSV(csvPath, CSVHeader(), [][]string{r.CSVRow()}); err != nil {
			return err
		}
	}
	if jsonPath != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("bench: encoding JSON: %w", err)
		}
		if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("bench: writing %s: %w", jsonPath, err)
		}
	}
	return nil
}

func appendCSV(path string, header []string, rows [][]string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bench: opening %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	w := csv.NewWriter(f)
	if st.Size() == 0 {
		w.Write(header)
	}
	w.WriteAll(rows) // flushes
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return nil
}
