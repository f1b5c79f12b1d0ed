package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/config"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func startServer(t *testing.T, mut func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.Bind, cfg.KafkaPort, cfg.MetricsPort = t.TempDir(), "127.0.0.1", 0, -1
	cfg.OffsetsTopicPartitions, cfg.TransactionStateLogPartitions = 1, 1
	mut(&cfg)
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return s
}

// apiVersions sends one ApiVersions v3 on c and reads its answer.
func apiVersions(c net.Conn, corr int32) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	b := []byte{0, 0, 0, 0, 0, 18, 0, 3}
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = append(b, 0xff, 0xff, 0) // null client id, no tags
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(b); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return errors.New("wrong correlation id")
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:4]))-4)
	return err
}

func dialServed(t *testing.T, addr string, corr int32) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := apiVersions(c, corr); err != nil {
		t.Fatalf("connection %d within the limit: %v", corr, err)
	}
	return c
}

// refused checks the broker closed c without answering.
func refused(t *testing.T, c net.Conn) {
	t.Helper()
	var ne net.Error
	if err := apiVersions(c, 99); err == nil {
		t.Fatal("a connection beyond the limit was served")
	} else if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a connection beyond the limit was left open: %v", err)
	}
}

func rejected(t *testing.T, s *Server, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.rejected.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// fillAndRefuse opens limit served connections, checks that the next one is
// closed unanswered while the others are still served, and that the refusal
// was counted under reason. It returns the open connections.
func fillAndRefuse(t *testing.T, s *Server, limit int, reason string) []net.Conn {
	t.Helper()
	var open []net.Conn
	for i := range limit {
		open = append(open, dialServed(t, s.KafkaAddr(), int32(i)))
	}
	over, err := net.Dial("tcp", s.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	refused(t, over)
	for i, c := range open { // the others are still served
		if err := apiVersions(c, int32(10+i)); err != nil {
			t.Fatalf("connection %d after the refusal: %v", i, err)
		}
	}
	if got := rejected(t, s, reason); got != 1 {
		t.Fatalf("chronik_connections_rejected_total{reason=%s} = %v, want 1", reason, got)
	}
	return open
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	const limit = 3
	s := startServer(t, func(c *config.Config) { c.MaxConnections = limit })
	open := fillAndRefuse(t, s, limit, "max_connections")
	// A slot freed by a close is given to the next connection.
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.KafkaAddr())
		if err != nil {
			t.Fatal(err)
		}
		err = apiVersions(c, 50)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection admitted after one closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // the broker notices the close asynchronously
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	const limit = 2
	s := startServer(t, func(c *config.Config) { c.MaxConnectionsPerIP = limit })
	fillAndRefuse(t, s, limit, "max_connections_per_ip")
	if got := rejected(t, s, "max_connections"); got != 0 {
		t.Fatalf("max_connections rejections = %v, want 0", got)
	}
}
