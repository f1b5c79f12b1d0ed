// Package e2e drives the real chronik-server binary with real Kafka clients
// (franz-go, kcat/librdkafka, Python confluent_kafka). TestMain builds the
// binary once (with -race when CHRONIK_E2E_RACE is set); StartBroker runs it
// on free loopback ports in a temp dir.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chronik-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "chronik-server")
	args := []string{"build", "-o", binary}
	if os.Getenv("CHRONIK_E2E_RACE") != "" { // the broker under the race detector
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/chronik-server")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building chronik-server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Broker is a running chronik-server process.
type Broker struct {
	t       testing.TB
	Addr    string // Kafka host:port
	HTTP    string // metrics host:port
	DataDir string
	Args    []string
	cmd     *exec.Cmd
	logMu   sync.Mutex
	logs    strings.Builder
	exited  chan struct{}
}

// StartBroker starts chronik-server with a fresh data dir (or dataDir if
// given via WithDataDir) and extra flags, waiting until it is ready. The
// broker is stopped at test cleanup.
func StartBroker(t testing.TB, args ...string) *Broker {
	t.Helper()
	return StartBrokerIn(t, t.TempDir(), args...)
}

// StartBrokerIn starts a broker on an existing data dir (restart tests).
func StartBrokerIn(t testing.TB, dataDir string, args ...string) *Broker {
	t.Helper()
	return startBroker(t, dataDir, nil, args)
}

// startBroker starts chronik-server under wrapper (a command and its
// arguments that run the rest, e.g. prlimit), nil for none.
func startBroker(t testing.TB, dataDir string, wrapper []string, args []string) *Broker {
	t.Helper()
	b := &Broker{t: t, DataDir: dataDir, Args: args, exited: make(chan struct{})}
	// No initial rebalance delay (Kafka's default is 3 s) unless a test asks
	// for one: group tests form their first generation at once (the later
	// flag wins).
	full := append([]string{"start", "--data-dir", dataDir, "--bind", "127.0.0.1", "--kafka-port", "0",
		"--metrics-port", "0", "--log-level", "debug", "--group-initial-rebalance-delay-ms", "0"}, args...)
	if len(wrapper) > 0 {
		full = append(append(wrapper[1:], binary), full...)
		b.cmd = exec.Command(wrapper[0], full...)
	} else {
		b.cmd = exec.Command(binary, full...)
	}
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stdout = io.Discard
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			b.logMu.Lock()
			b.logs.WriteString(line + "\n")
			b.logMu.Unlock()
			if !signalled && strings.Contains(line, "chronik-server ready") {
				var rec struct {
					Kafka string `json:"kafka"`
					HTTP  string `json:"http"`
				}
				json.Unmarshal([]byte(line), &rec)
				b.Addr, b.HTTP = rec.Kafka, rec.HTTP
				signalled = true
				close(ready)
			}
		}
	}()
	go func() { b.cmd.Wait(); close(b.exited) }()
	select {
	case <-ready:
	case <-b.exited:
		t.Fatalf("chronik-server exited before ready:\n%s", b.Logs())
	case <-time.After(60 * time.Second):
		b.Kill()
		t.Fatalf("chronik-server not ready after 60s:\n%s", b.Logs())
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("broker log:\n%s", tail(b.Logs(), 80))
		}
	})
	return b
}

// Logs returns everything the broker wrote to stderr so far.
func (b *Broker) Logs() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.logs.String()
}

// Stop sends SIGTERM and waits for a clean exit; it fails the test if the
// broker does not exit within 30s or exits non-zero.
func (b *Broker) Stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		if code := b.cmd.ProcessState.ExitCode(); code != 0 {
			b.t.Errorf("chronik-server exited with %d after SIGTERM", code)
		}
	case <-time.After(30 * time.Second):
		b.Kill()
		b.t.Errorf("chronik-server did not stop within 30s of SIGTERM")
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to be gone.
func (b *Broker) Kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
}

// Exited reports whether the process has ended.
func (b *Broker) Exited() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// Client returns a franz-go client for the broker, closed at cleanup.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Get fetches an HTTP path from the metrics listener.
func (b *Broker) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTP + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// CheckFor polls fn until it returns nil or timeout passes.
func CheckFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctx returns a context cancelled at cleanup or after d.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
