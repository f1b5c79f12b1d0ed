package e2e

// Transactions with librdkafka clients: a Python confluent_kafka
// transactional producer commits one transaction and aborts another; Python,
// franz-go and kcat consumers then see only the committed records with
// read_committed and both with read_uncommitted. (librdkafka, hence kcat,
// defaults to read_committed; franz-go defaults to read_uncommitted.)

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnClientsValues returns the sorted values of records 0..n-1 of tag.
func txnClientsValues(tag string, n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, clientsValue(tag, i))
	}
	slices.Sort(out)
	return out
}

// txnClientsSame fails the test unless got (in any order) equals want (sorted).
func txnClientsSame(t *testing.T, what string, got, want []string) {
	t.Helper()
	got = slices.Clone(got)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %d values, want %d\n got: %s\nwant: %s", what, len(got), len(want),
			strings.Join(got, " "), strings.Join(want, " "))
	}
}

func TestTxnClients(t *testing.T) {
	const (
		topic               = "txn-clients"
		nCommit, nAbort     = 20, 7
		tagCommit, tagAbort = "pycommit", "pyabort"
		pythonTimeout       = 90 * time.Second
	)
	b, _ := txnSetup(t, topic)

	var prod struct {
		Committed int      `json:"committed"`
		Aborted   int      `json:"aborted"`
		Delivered int      `json:"delivered"`
		Errors    []string `json:"errors"`
		Step      string   `json:"step"`
	}
	start := time.Now()
	clientsRunPython(t, pythonTimeout, false, &prod, "txn_producer.py", b.Addr, topic,
		"--commit", fmt.Sprint(nCommit), "--abort", fmt.Sprint(nAbort),
		"--tag-commit", tagCommit, "--tag-abort", tagAbort)
	if prod.Committed != nCommit || prod.Aborted != nAbort || prod.Delivered != nCommit+nAbort || len(prod.Errors) > 0 {
		t.Fatalf("python transactional producer: %+v", prod)
	}
	t.Logf("python transactional producer done in %v", time.Since(start).Round(time.Millisecond))

	committed := txnClientsValues(tagCommit, nCommit)
	both := slices.Concat(committed, txnClientsValues(tagAbort, nAbort))
	slices.Sort(both)

	t.Run("franz-go", func(t *testing.T) {
		txnClientsSame(t, "franz-go read_committed", txnConsume(t, b, topic, kgo.ReadCommitted(), nCommit), committed)
		txnClientsSame(t, "franz-go read_uncommitted", txnConsume(t, b, topic, kgo.ReadUncommitted(), nCommit+nAbort), both)
	})

	t.Run("python", func(t *testing.T) {
		for _, c := range []struct {
			iso  string
			want []string
		}{{"read_committed", committed}, {"read_uncommitted", both}} {
			var cons struct {
				Records []clientsRecord `json:"records"`
				Errors  []string        `json:"errors"`
			}
			clientsRunPython(t, pythonTimeout, false, &cons, "txn_consumer.py", b.Addr, topic, "--isolation", c.iso)
			var vals []string
			for _, r := range cons.Records {
				tag, i, ok := clientsParseValue(r.Value)
				if !ok || r.Key != clientsKey(tag, i) {
					t.Fatalf("python %s: unexpected record %s", c.iso, r)
				}
				vals = append(vals, r.Value)
			}
			txnClientsSame(t, "python "+c.iso, vals, c.want)
		}
	})

	t.Run("kcat", func(t *testing.T) {
		// kcat runs with broker debugging on (to stderr, apart from the
		// values on stdout) so that a failure shows librdkafka's view of
		// the connection: one early run failed once, not reproducibly,
		// with "Failed to query metadata ...: Local: Broker transport
		// failure" and nothing in the broker log.
		kcat := func(extra ...string) []string {
			t.Helper()
			args := append([]string{"-b", b.Addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", `%s\n`,
				"-d", "broker,protocol"}, extra...)
			out, errOut, err := clientsTry(60*time.Second, "", "kcat", args...)
			if err != nil {
				var diag []string
				for _, l := range strings.Split(errOut, "\n") {
					if strings.Contains(l, "ERROR") || strings.Contains(l, "FAIL") || strings.Contains(l, "CONNECT") ||
						strings.Contains(l, "STATE") || strings.Contains(l, "APIVERSION") {
						diag = append(diag, l)
					}
				}
				t.Fatalf("kcat %s: %v\nstdout:\n%s\nkcat debug (filtered):\n%s", strings.Join(args, " "), err,
					tail(out, 20), tail(strings.Join(diag, "\n"), 60))
			}
			return strings.Fields(out)
		}
		txnClientsSame(t, "kcat read_committed", kcat("-X", "isolation.level=read_committed"), committed)
		// librdkafka's default isolation.level is read_committed, so kcat
		// without -X sees only the committed records too.
		txnClientsSame(t, "kcat default isolation (read_committed)", kcat(), committed)
		txnClientsSame(t, "kcat read_uncommitted", kcat("-X", "isolation.level=read_uncommitted"), both)
	})
}
