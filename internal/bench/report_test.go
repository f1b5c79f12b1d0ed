package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResult(conc int, msgs float64) *Result {
	broker := 1.25
	return &Result{
		Mode: ModeProduce, Bootstrap: "127.0.0.1:9092", Topic: "t,with \"quotes\"", Concurrency: conc,
		MessageSize: 256, Partitions: 3, Acks: "all", Compression: "none", LoadPattern: "steady",
		StartedAt: "2026-01-01T00:00:00Z", ElapsedSec: 2, Records: int64(msgs * 2), Bytes: int64(msgs * 512),
		MsgsPerSec: msgs, MBPerSec: msgs * 256 / (1 << 20), LatencyKind: "produce-ack",
		Latency:       Latencies{P50Ms: 1, P90Ms: 2, P95Ms: 3, P99Ms: 4, P999Ms: 5, MaxMs: 6, MeanMs: 1.5},
		ClientUserSec: 0.5, ClientSysSec: 0.25, BrokerCPUSec: &broker,
	}
}

func TestResultCSVAppendAndJSON(t *testing.T) {
	dir := t.TempDir()
	csvPath, jsonPath := filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.json")
	a, b := sampleResult(1, 1000), sampleResult(8, 5000)
	b.Failures, b.FailureKind = 2, []string{"2: boom, with comma"}
	b.Validation = &Validation{Checked: 10, Valid: 9, Corrupt: 1}
	if err := a.WriteFiles(csvPath, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFiles(csvPath, jsonPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll() // also checks every row has the header's width
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0][0] != "started_at" || recs[1][3] != a.Topic {
		t.Fatalf("csv: %q", recs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if recs[2][col["msgs_per_sec"]] != "5000.0" || recs[2][col["failures"]] != "2" ||
		recs[2][col["validation_errors"]] != "1" || recs[1][col["validation_errors"]] != "" ||
		recs[2][col["broker_cpu_sec"]] != "1.250" || recs[2][col["client_cpu_sec"]] != "0.750" {
		t.Fatalf("csv row: %q", recs[2])
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.MsgsPerSec != 5000 || back.Latency.P999Ms != 5 || back.Validation.Corrupt != 1 || *back.BrokerCPUSec != 1.25 ||
		back.FailureKind[0] != b.FailureKind[0] {
		t.Fatalf("json round trip: %+v", back)
	}
	if err := a.WriteFiles(filepath.Join(dir, "no", "such", "dir.csv"), ""); err == nil {
		t.Fatal("writing into a missing dir: no error")
	}
}

func TestWriteTextShowsFailuresAndValidation(t *testing.T) {
	r := sampleResult(4, 100)
	r.Failures = 3
	r.FailureKind = []string{"3: NOT_LEADER_FOR_PARTITION"}
	r.Mode = ModeRoundTrip
	r.Validation = &Validation{Checked: 5, Valid: 5, Acked: 6, Missing: 1}
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{"failures    3", "NOT_LEADER_FOR_PARTITION", "validation  FAILED", "missing 1",
		"p99.9 5.000 ms", "100 msg/s", "broker cpu 1.25 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if r.OK() {
		t.Error("result with failures reports OK")
	}
}

// checkXML fails unless s is well-formed XML; it returns the element counts.
func checkXML(t *testing.T, s string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return counts
		}
		if err != nil {
			t.Fatalf("SVG not well-formed: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestChartSVGWellFormed(t *testing.T) {
	x := []string{"1", "8", "32"}
	tput := Panel{Title: "throughput <msg/s> & more", X: x, Series: []Series{
		{Name: "low-latency", Values: []float64{100, 2000, 35000}},
		{Name: "peer & co", Values: []float64{50, math.NaN(), 20000}},
		{Name: "one point", Values: []float64{math.NaN(), 5, math.NaN()}},
	}}
	p99 := Panel{Title: "p99", X: x, LogY: true, Series: []Series{
		{Name: "a", Values: []float64{0.2, 3, 150}},
		{Name: "zero", Values: []float64{0, 0, 0}}, // skipped on a log axis
	}}
	empty := Panel{Title: "empty", X: x, Series: []Series{{Name: "none", Values: []float64{math.NaN(), math.NaN(), math.NaN()}}}}
	svg := ChartSVG(`chart "title" <&>`, tput, p99, empty)
	c := checkXML(t, svg)
	if c["svg"] != 1 || c["polyline"] != 3 || c["circle"] != 9 || c["g"] != 3 {
		t.Fatalf("element counts %v", c)
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(svg, bad) {
			t.Fatalf("SVG contains %s", bad)
		}
	}
	single := ChartSVG("one", Panel{Title: "x", X: []string{"1"}, Series: []Series{{Name: "s", Values: []float64{7}}}})
	checkXML(t, single)
}

func TestNiceAxis(t *testing.T) {
	for v, want := range map[float64]float64{0.7: 1, 1: 1, 1.2: 2, 2.2: 2.5, 3: 5, 7: 10, 52090: 100000, 43000: 50000} {
		if got := niceCeil(v); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	if got := tickLabel(52000); got != "52k" {
		t.Errorf("tickLabel(52000) = %q", got)
	}
	if got := tickLabel(2.5e6); got != "2.5M" {
		t.Errorf("tickLabel(2.5e6) = %q", got)
	}
}

func sampleReport() *MatrixReport {
	m := DefaultMatrix()
	m.Profiles = []string{"low-latency", "high-throughput"}
	m.Sizes = []int{256, 1024}
	m.Concurrency = []int{1, 8}
	m.Patterns = []string{"steady"}
	m.Peer = "127.0.0.1:9192"
	rep := &MatrixReport{Config: m, StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Host: "test host"}
	for _, p := range append(append([]string(nil), m.Profiles...), "peer") {
		for _, c := range m.cells() {
			target := "chronik"
			if p == "peer" {
				target = "peer"
			}
			row := MatrixRow{Target: target, Profile: p, Size: c.size, Concurrency: c.concurrency, Pattern: c.pattern,
				Result: sampleResult(c.concurrency, float64(1000*c.concurrency))}
			rep.Rows = append(rep.Rows, row)
		}
	}
	rep.Rows[1].Result.Failures = 4                                    // low-latency 256B c=8: marked, not plotted
	rep.Rows[2] = MatrixRow{Target: "chronik", Profile: "low-latency", // 1KB c=1: an error, no result
		Size: 1024, Concurrency: 1, Pattern: "steady", Err: "broker | gone\nbadly"}
	return rep
}

func TestMatrixReportFiles(t *testing.T) {
	rep := sampleReport()
	dir := t.TempDir()
	if err := rep.WriteAll(dir); err != nil {
		t.Fatal(err)
	}
	if rep.FailedCells() != 2 {
		t.Fatalf("failed cells %d, want 2", rep.FailedCells())
	}
	// CSV: every row as wide as the header.
	f, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != len(rep.Rows)+1 {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
	// JSON parses back.
	data, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var back MatrixReport
	if err := json.Unmarshal(data, &back); err != nil || len(back.Rows) != len(rep.Rows) {
		t.Fatalf("json: %v", err)
	}
	// Markdown: every table row has its header's column count.
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	checkMarkdownTables(t, string(md))
	for _, want := range []string{"![chart-steady-256B](chart-steady-256B.svg)", "**4**", "error: broker \\| gone badly",
		"Side by side", "high-throughput / peer", "1.00x", "2 cells had failures"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	// Charts: one per size, each well-formed with a line per profile + peer.
	for _, name := range []string{"chart-steady-256B.svg", "chart-steady-1KB.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		c := checkXML(t, string(b))
		if c["polyline"] < 4 {
			t.Errorf("%s: %d lines, want a throughput and a p99 line for at least 2 series", name, c["polyline"])
		}
		if !strings.Contains(string(b), ">peer<") || !strings.Contains(string(b), ">high-throughput<") {
			t.Errorf("%s: legend lacks a series", name)
		}
	}
}

// checkMarkdownTables checks each table's rows have as many cells as its header.
func checkMarkdownTables(t *testing.T, md string) {
	t.Helper()
	cells := func(line string) int {
		line = strings.ReplaceAll(line, `\|`, "")
		return strings.Count(line, "|") - 1
	}
	want := -1
	tables := 0
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = -1
			continue
		}
		if want < 0 {
			want = cells(line)
			tables++
			continue
		}
		if got := cells(line); got != want {
			t.Errorf("markdown line %d has %d cells, header %d: %s", i+1, got, want, line)
		}
	}
	if tables == 0 {
		t.Error("no markdown table")
	}
}
