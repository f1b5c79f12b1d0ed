package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a chronik-server process started by the matrix.
type Server struct {
	Kafka string // host:port of the Kafka listener
	HTTP  string // host:port of /metrics

	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	tail   []string // last log lines, for error messages
}

const serverReadyTimeout = 60 * time.Second

// StartServer runs bin ("chronik-server") on dataDir with loopback ports
// chosen by the kernel, waiting for its "chronik-server ready" log line.
func StartServer(ctx context.Context, bin, dataDir string, extra ...string) (*Server, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	args := append([]string{"start", "--data-dir", dataDir, "--bind", "127.0.0.1", "--kafka-port", "0",
		"--metrics-port", "0", "--log-level", "info"}, extra...)
	s := &Server{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	s.cmd.Stdout = io.Discard
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", bin, err)
	}
	ready := make(chan struct{})
	go s.readLog(stderr, ready)
	go func() { s.cmd.Wait(); close(s.exited) }()
	select {
	case <-ready:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("bench: chronik-server exited before ready:\n%s", s.LogTail())
	case <-time.After(serverReadyTimeout):
	case <-ctx.Done():
	}
	s.Stop()
	return nil, fmt.Errorf("bench: chronik-server not ready (%v):\n%s", ctx.Err(), s.LogTail())
}

func (s *Server) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.tail = append(s.tail, line)
		if len(s.tail) > 40 {
			s.tail = s.tail[len(s.tail)-40:]
		}
		s.mu.Unlock()
		if signalled || !strings.Contains(line, "chronik-server ready") {
			continue
		}
		var rec struct {
			Kafka string `json:"kafka"`
			HTTP  string `json:"http"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Kafka != "" {
			s.Kafka, s.HTTP = rec.Kafka, rec.HTTP
			signalled = true
			close(ready)
		}
	}
	io.Copy(io.Discard, r)
}

// LogTail returns the last lines the server logged.
func (s *Server) LogTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to 30s, then kills.
func (s *Server) Stop() {
	if s.Exited() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// buildServer compiles ./cmd/chronik-server of the enclosing module into dir.
func buildServer(ctx context.Context, dir string, out io.Writer) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "chronik-server")
	fmt.Fprintf(out, "matrix: building chronik-server from %s\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/chronik-server")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: building chronik-server: %w\n%s", err, b)
	}
	return bin, nil
}

// moduleRoot finds the chronik module above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/chronik-stream/chronik\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("bench: not inside the chronik module; pass --server-bin")
		}
		dir = parent
	}
}

// hostDescription names the machine for reports: OS, CPU model and count.
func hostDescription() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					model = strings.TrimSpace(line[i+1:])
				}
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.Version())
}
