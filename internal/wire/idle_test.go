package wire

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type versionsOnly struct{}

func (versionsOnly) Versions(key int16) (int16, int16, bool) { return 0, 3, key == 18 }

func (versionsOnly) UnsupportedVersion(int16, int16) kmsg.Response { return nil }

func (versionsOnly) Handle(_ context.Context, req *Request) (Reply, error) {
	resp := req.Body.ResponseKind()
	resp.SetVersion(req.Version)
	return Reply{Resp: resp}, nil
}

func roundTrip(t *testing.T, nc net.Conn, corr int32) {
	t.Helper()
	b := []byte{0, 0, 0, 0, 0, 18, 0, 3}
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = append(b, 0xff, 0xff, 0)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(hdr[:4]))-4); err != nil {
		t.Fatal(err)
	}
}

// TestIdleConnectionHoldsNoWriter: once its replies are written, a
// connection's writer goroutine exits (giving its buffers back), and the
// next request starts one again.
func TestIdleConnectionHoldsNoWriter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := NewConn(nc, versionsOnly{}, Options{MaxRequestBytes: 1 << 20})
		conns <- c
		c.Serve(context.Background())
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := <-conns
	writing := func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.writing
	}
	for round := range 3 {
		roundTrip(t, nc, int32(round))
		deadline := time.Now().Add(5 * time.Second)
		for writing() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the writer goroutine still runs %v after the last reply", round, 5*time.Second)
			}
			time.Sleep(writerLinger / 4)
		}
	}
}
