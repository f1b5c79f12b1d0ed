package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func matrixCSVHeader() []string {
	return append([]string{"target", "profile", "pattern", "error"}, CSVHeader()...)
}

func matrixCSVRow(r *MatrixRow) []string {
	row := []string{r.Target, r.Profile, r.Pattern, r.Err}
	if r.Result != nil {
		return append(row, r.Result.CSVRow()...)
	}
	empty := make([]string, len(CSVHeader()))
	empty[4], empty[5] = strconv.Itoa(r.Concurrency), strconv.Itoa(r.Size)
	return append(row, empty...)
}

// WriteAll writes results.csv, results.json, results.md and one SVG chart
// per (pattern, size) into dir.
func (rep *MatrixReport) WriteAll(dir string) error {
	csvPath := filepath.Join(dir, "results.csv")
	os.Remove(csvPath)
	rows := make([][]string, 0, len(rep.Rows))
	for i := range rep.Rows {
		rows = append(rows, matrixCSVRow(&rep.Rows[i]))
	}
	if err := appendCSV(csvPath, matrixCSVHeader(), rows); err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var names []string
	for _, c := range rep.Charts() {
		names = append(names, c.Name)
		if err := os.WriteFile(filepath.Join(dir, c.Name), []byte(c.SVG), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	md := rep.Markdown(names)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// lines are the chart series names: each profile that ran, then "peer".
func (rep *MatrixReport) lines() []string {
	var out []string
	for _, r := range rep.Rows {
		if !slices.Contains(out, r.Profile) {
			out = append(out, r.Profile)
		}
	}
	return out
}

func (rep *MatrixReport) find(profile, pattern string, size, conc int) *MatrixRow {
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if r.Profile == profile && r.Pattern == pattern && r.Size == size && r.Concurrency == conc {
			return r
		}
	}
	return nil
}

// Chart is one SVG file of a matrix report.
type Chart struct {
	Name string
	SVG  string
}

// Charts returns one SVG per (pattern, size): throughput and p99 against
// concurrency, a line per profile (and the peer). Cells with failures or
// errors are left out of the lines, never plotted as if clean.
func (rep *MatrixReport) Charts() []Chart {
	m := rep.Config
	var out []Chart
	x := make([]string, len(m.Concurrency))
	for i, c := range m.Concurrency {
		x[i] = strconv.Itoa(c)
	}
	for _, pattern := range m.Patterns {
		for _, size := range m.Sizes {
			tput := Panel{Title: "throughput", XLabel: "concurrency (producers, one record in flight each)", YLabel: "msg/s", X: x}
			p99 := Panel{Title: "p99 produce latency", XLabel: "concurrency (producers, one record in flight each)", YLabel: "ms (log scale)", X: x, LogY: true}
			for _, line := range rep.lines() {
				ts, ps := Series{Name: line}, Series{Name: line}
				for _, c := range m.Concurrency {
					v, l := math.NaN(), math.NaN()
					if r := rep.find(line, pattern, size, c); r != nil && !r.failed() {
						v, l = r.Result.MsgsPerSec, r.Result.Latency.P99Ms
					}
					ts.Values, ps.Values = append(ts.Values, v), append(ps.Values, l)
				}
				tput.Series, p99.Series = append(tput.Series, ts), append(p99.Series, ps)
			}
			title := fmt.Sprintf("chronik-bench produce, %s values, %s load, acks=%s", sizeName(size), pattern, acksName(m.Acks))
			out = append(out, Chart{Name: fmt.Sprintf("chart-%s-%s.svg", pattern, sizeName(size)), SVG: ChartSVG(title, tput, p99)})
		}
	}
	return out
}

// Markdown is the results table (and, with a peer, the side-by-side table).
func (rep *MatrixReport) Markdown(charts []string) string {
	m := rep.Config
	var b strings.Builder
	mode := "full"
	if m.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# chronik-bench matrix (%s)\n\n", mode)
	fmt.Fprintf(&b, "- started %s on %s\n", rep.StartedAt.Format("2006-01-02 15:04 UTC"), rep.Host)
	fmt.Fprintf(&b, "- produce, acks=%s, %d partitions, %v warmup + %v measured per run, at most %s of values per run\n",
		acksName(m.Acks), m.Partitions, m.Warmup, m.Duration, sizeName(int(m.MaxBytes)))
	fmt.Fprintf(&b, "- latency: send to acknowledgement, per record; MB = 2^20 bytes of values; CPU in seconds over the measured phase\n")
	if m.Peer != "" {
		fmt.Fprintf(&b, "- peer: %s, same cells, run after chronik's\n", m.Peer)
	}
	if n := rep.FailedCells(); n > 0 {
		fmt.Fprintf(&b, "- **%d cells had failures or errors**; they are marked and left out of the charts\n", n)
	}
	b.WriteString("\n")
	for _, c := range charts {
		fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(c, ".svg"), c)
	}
	b.WriteString("\n| target | profile | pattern | size | conc | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | failures | client CPU s | broker CPU s |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if r.Result == nil {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | error: %s | | | | | | | | |\n", r.Target, r.Profile, r.Pattern,
				sizeName(r.Size), r.Concurrency, mdCell(r.Err))
			continue
		}
		res := r.Result
		broker := "-"
		if res.BrokerCPUSec != nil {
			broker = fmt.Sprintf("%.2f", *res.BrokerCPUSec)
		}
		fails := strconv.FormatInt(res.Failures, 10)
		if r.failed() {
			fails = "**" + fails + "**"
			if r.Err != "" {
				fails += " " + mdCell(r.Err)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.2f | %s |\n",
			r.Target, r.Profile, r.Pattern, sizeName(r.Size), r.Concurrency, res.MsgsPerSec, res.MBPerSec,
			res.Latency.P50Ms, res.Latency.P99Ms, res.Latency.P999Ms, res.Latency.MaxMs, fails,
			res.ClientUserSec+res.ClientSysSec, broker)
	}
	if m.Peer != "" {
		rep.sideBySide(&b)
	}
	return b.String()
}

// sideBySide is msg/s and p99 per profile next to the peer's, with the
// ratio of the default profile (high-throughput, else the first) to the peer.
func (rep *MatrixReport) sideBySide(b *strings.Builder) {
	m := rep.Config
	ref := m.Profiles[0]
	if slices.Contains(m.Profiles, "high-throughput") {
		ref = "high-throughput"
	}
	b.WriteString("\n## Side by side with the peer (msg/s, p99 ms)\n\n| pattern | size | conc |")
	for _, p := range m.Profiles {
		fmt.Fprintf(b, " %s |", p)
	}
	fmt.Fprintf(b, " peer | %s / peer |\n|---|---:|---:|", ref)
	for range m.Profiles {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---:|\n")
	cellText := func(r *MatrixRow) string {
		if r == nil || r.Result == nil {
			return "-"
		}
		s := fmt.Sprintf("%.0f, %.2f", r.Result.MsgsPerSec, r.Result.Latency.P99Ms)
		if r.failed() {
			s += " (failures)"
		}
		return s
	}
	for _, c := range m.cells() {
		fmt.Fprintf(b, "| %s | %s | %d |", c.pattern, sizeName(c.size), c.concurrency)
		for _, p := range m.Profiles {
			fmt.Fprintf(b, " %s |", cellText(rep.find(p, c.pattern, c.size, c.concurrency)))
		}
		peer := rep.find("peer", c.pattern, c.size, c.concurrency)
		ratio := "-"
		if r := rep.find(ref, c.pattern, c.size, c.concurrency); r != nil && peer != nil && !r.failed() && !peer.failed() && peer.Result.MsgsPerSec > 0 {
			ratio = fmt.Sprintf("%.2fx", r.Result.MsgsPerSec/peer.Result.MsgsPerSec)
		}
		fmt.Fprintf(b, " %s | %s |\n", cellText(peer), ratio)
	}
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
