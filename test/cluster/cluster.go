// Package cluster runs clusters of real chronik-server processes for tests:
// Build builds the binary once per test process, Start runs n brokers on
// free loopback ports as one metadata quorum (--cluster-peers), with a
// netproxy.Proxy on every link between two nodes so that a test can cut,
// delay or drop the cluster traffic between them, and kill, stop, pause and
// restart the processes.
//
// Links: node i dials node j's cluster port through the proxy Link(i, j);
// node i's --cluster-peers names itself at its real cluster address and
// every other node j at that proxy's address. Kafka client traffic is not
// proxied.
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		cluster.RemoveBuild()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		c := cluster.Start(t, 3, "--broker-session-timeout-ms", "3000")
//		cl, _ := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
//		c.Isolate(2) // node 2 can neither reach nor be reached by the others
//		c.Heal(2)
//		c.Node(1).Kill()
//		c.Node(1).Restart()
//	}
//
// CHRONIK_E2E_RACE=1 builds the broker with the race detector, as for the
// e2e tests.
package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster/netproxy"
)

// Timeouts of the harness.
const (
	// ReadyTimeout bounds how long a start or restart waits for /ready.
	ReadyTimeout = 60 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 20 * time.Second
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Build builds ./cmd/chronik-server once per test process (into a
// directory under os.TempDir that RemoveBuild deletes; call it from
// TestMain) and returns the binary's path.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "chronik-cluster-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "chronik-server")
		args := []string{"build", "-o", buildBin}
		if os.Getenv("CHRONIK_E2E_RACE") != "" {
			args = append(args, "-race")
		}
		// By import path: it builds from any directory of the module.
		cmd := exec.Command("go", append(args, "github.com/chronik-stream/chronik/cmd/chronik-server")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building chronik-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// RemoveBuild deletes the binary Build made, if any (call it from TestMain
// after m.Run).
func RemoveBuild() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Cluster is n chronik-server processes forming one metadata quorum.
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*Node                    // by id-1
	links map[[2]int]*netproxy.Proxy // {from, to}
}

// Node is one broker process of a Cluster (node ids start at 1).
type Node struct {
	ID int

	c                                   *Cluster
	dataDir                             string
	kafkaPort, metricsPort, clusterPort int
	args                                []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has ended
	starts int

	logMu sync.Mutex
	logs  strings.Builder
}

// Start starts n brokers (node ids 1..n) with fresh data dirs, free
// loopback ports and extraArgs after the harness's own flags (a later flag
// wins), and waits until every one is ready. Everything is stopped at the
// test's cleanup; when the test failed, each broker's log tail is printed.
func Start(t testing.TB, n int, extraArgs ...string) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("cluster.Start: %d nodes", n)
	}
	c := &Cluster{t: t, bin: Build(t), links: map[[2]int]*netproxy.Proxy{}}
	ports := freePorts(t, 3*n)
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &Node{ID: i + 1, c: c, dataDir: t.TempDir(),
			kafkaPort: ports[3*i], metricsPort: ports[3*i+1], clusterPort: ports[3*i+2]})
	}
	t.Cleanup(c.cleanup)
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			p, err := netproxy.Start(to.ClusterAddr())
			if err != nil {
				t.Fatalf("cluster: proxy %d->%d: %v", from.ID, to.ID, err)
			}
			c.links[[2]int{from.ID, to.ID}] = p
		}
	}
	for _, nd := range c.nodes {
		var peers []string
		for _, other := range c.nodes {
			addr := other.ClusterAddr()
			if other != nd {
				addr = c.Link(nd.ID, other.ID).Addr()
			}
			peers = append(peers, fmt.Sprintf("%d@%s", other.ID, addr))
		}
		nd.args = append([]string{"start",
			"--data-dir", nd.dataDir,
			"--bind", "127.0.0.1",
			"--kafka-port", strconv.Itoa(nd.kafkaPort),
			"--metrics-port", strconv.Itoa(nd.metricsPort),
			"--node-id", strconv.Itoa(nd.ID),
			"--cluster-peers", strings.Join(peers, ","),
			"--log-level", "debug",
			"--group-initial-rebalance-delay-ms", "0",
		}, extraArgs...)
	}
	// A clustered broker waits for its quorum at start: start them all,
	// then wait.
	for _, nd := range c.nodes {
		nd.start()
	}
	errs := make(chan error, n)
	for _, nd := range c.nodes {
		go func() { errs <- nd.waitReady(ReadyTimeout) }()
	}
	var failed []string
	for range c.nodes {
		if err := <-errs; err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		t.Fatalf("cluster: not every broker became ready:\n%s", strings.Join(failed, "\n"))
	}
	return c
}

// freePorts picks n distinct free loopback ports (held open together so
// none is picked twice) below the kernel's ephemeral range (32768 and up
// here): a port from that range, free when picked, could be taken by any
// outgoing connection (the brokers' own connections to each other) before
// the broker binds it, and a broker restarted on its old port could find
// it taken the same way. Ports are tried from a random start, so parallel
// test binaries rarely meet.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	const lo, hi = 20000, 32000
	var out []int
	next := lo + rand.IntN(hi-lo)
	for tries := 0; len(out) < n; tries++ {
		if tries > hi-lo {
			t.Fatalf("cluster: no %d free ports in %d-%d", n, lo, hi)
		}
		port := next
		next++
		if next >= hi {
			next = lo
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, port)
	}
	return out
}

func (c *Cluster) cleanup() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.stop(false) }()
	}
	wg.Wait()
	for _, p := range c.links {
		p.Close()
	}
	if c.t.Failed() {
		for _, nd := range c.nodes {
			c.t.Logf("node %d (kafka %s, cluster %s) log tail:\n%s", nd.ID, nd.KafkaAddr(), nd.ClusterAddr(), tail(nd.Logs(), 60))
		}
	}
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.nodes) }

// Node returns node id (1..N).
func (c *Cluster) Node(id int) *Node {
	if id < 1 || id > len(c.nodes) {
		c.t.Fatalf("cluster: no node %d (nodes are 1..%d)", id, len(c.nodes))
	}
	return c.nodes[id-1]
}

// Nodes returns every node, by id.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Link is the proxy node from dials node to through (from != to).
func (c *Cluster) Link(from, to int) *netproxy.Proxy {
	p := c.links[[2]int{from, to}]
	if p == nil {
		c.t.Fatalf("cluster: no link %d->%d", from, to)
	}
	return p
}

// Bootstrap returns every node's Kafka address (seed brokers for a client).
func (c *Cluster) Bootstrap() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.KafkaAddr())
	}
	return out
}

// Isolate cuts every link to and from node id: its cluster traffic
// neither leaves nor arrives (Kafka clients still reach it).
func (c *Cluster) Isolate(id int) {
	for _, other := range c.nodes {
		if other.ID != id {
			c.Link(id, other.ID).Cut()
			c.Link(other.ID, id).Cut()
		}
	}
}

// Heal undoes Isolate (and any cut, delay or drop) on every link to and
// from node id.
func (c *Cluster) Heal(id int) {
	for _, other := range c.nodes {
		if other.ID != id {
			c.Link(id, other.ID).Heal()
			c.Link(other.ID, id).Heal()
		}
	}
}

// KafkaAddr is the node's Kafka address.
func (n *Node) KafkaAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.kafkaPort)) }

// HTTPAddr is the node's metrics address (/health, /ready, /metrics).
func (n *Node) HTTPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.metricsPort)) }

// ClusterAddr is the node's real cluster (Raft and controller) address.
func (n *Node) ClusterAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.clusterPort))
}

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// Args are the node's command-line arguments.
func (n *Node) Args() []string { return append([]string(nil), n.args...) }

// Logs returns everything the node wrote to stderr, over all its starts.
func (n *Node) Logs() string {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	return n.logs.String()
}

// Running reports whether the node's process is alive (paused counts).
func (n *Node) Running() bool {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// start starts the process (not waiting for ready).
func (n *Node) start() {
	t := n.c.t
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.starts++
	cmd := exec.Command(n.c.bin, n.args...)
	setDeathSignal(cmd)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.logMu.Lock()
	if n.starts > 1 {
		fmt.Fprintf(&n.logs, "----- cluster harness: node %d start #%d -----\n", n.ID, n.starts)
	}
	n.logMu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatalf("cluster: start node %d: %v", n.ID, err)
	}
	exited := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.logMu.Lock()
			n.logs.WriteString(sc.Text())
			n.logs.WriteByte('\n')
			n.logMu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		cmd.Wait()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
}

// waitReady polls /ready until it answers 200, the process exits, or
// timeout passes.
func (n *Node) waitReady(timeout time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("node %d exited before ready; its last lines:\n%s", n.ID, tail(n.Logs(), 5))
		default:
		}
		resp, err := hc.Get("http://" + n.HTTPAddr() + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d not ready after %v; its last lines:\n%s", n.ID, timeout, tail(n.Logs(), 5))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to be gone.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	n.signal(syscall.SIGKILL)
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	<-exited
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after
// StopTimeout); it fails the test if the broker does not exit in time or
// exits non-zero.
func (n *Node) Stop() { n.stop(true) }

func (n *Node) stop(strict bool) {
	if !n.Running() {
		return
	}
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Process.Signal(syscall.SIGCONT) // a paused node must run to stop
	select {
	case <-exited:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			if strict {
				n.c.t.Errorf("cluster: node %d exited with %d after SIGTERM", n.ID, code)
			} else {
				n.c.t.Logf("cluster: node %d exited with %d after SIGTERM", n.ID, code)
			}
		}
	case <-time.After(StopTimeout):
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if strict {
			n.c.t.Errorf("cluster: node %d did not stop within %v of SIGTERM; killed", n.ID, StopTimeout)
		} else {
			n.c.t.Logf("cluster: node %d did not stop within %v of SIGTERM; killed", n.ID, StopTimeout)
		}
	}
}

// Restart starts the node again (it must have exited: Kill or Stop first)
// with the same data dir, ports and flags, and waits until it is ready.
func (n *Node) Restart() {
	t := n.c.t
	t.Helper()
	if n.Running() {
		t.Fatalf("cluster: Restart of node %d, which is still running (Kill or Stop it first)", n.ID)
	}
	n.start()
	if err := n.waitReady(ReadyTimeout); err != nil {
		t.Fatalf("cluster: restart: %v", err)
	}
}

// Pause stops the process (SIGSTOP): it holds its connections and ports
// but answers nothing, as a long GC pause or a frozen VM.
func (n *Node) Pause() { n.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (n *Node) Resume() { n.signal(syscall.SIGCONT) }

// WaitFor polls fn until it returns nil, failing the test with fn's last
// error after timeout.
func WaitFor(t testing.TB, timeout time.Duration, fn func() error) {
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
		time.Sleep(100 * time.Millisecond)
	}
}

// Ctx returns a context cancelled at the test's cleanup or after d.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
