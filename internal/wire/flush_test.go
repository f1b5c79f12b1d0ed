package wire_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// blockingHandler answers ApiVersions at once and Metadata with a deferred
// reply that blocks until release is closed (like a fetch long poll).
type blockingHandler struct{ release chan struct{} }

func (blockingHandler) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 18:
		return 0, 3, true
	case 3:
		return 0, 12, true
	}
	return 0, 0, false
}

func (blockingHandler) UnsupportedVersion(int16, int16) kmsg.Response { return nil }

func (h blockingHandler) Handle(_ context.Context, req *wire.Request) (wire.Reply, error) {
	resp := req.Body.ResponseKind()
	resp.SetVersion(req.Version)
	if req.Key == 18 {
		return wire.Reply{Resp: resp}, nil
	}
	return wire.Reply{Later: func() kmsg.Response {
		<-h.release
		return resp
	}}, nil
}

// TestReplyNotHeldBehindBlockingLater: a written reply is flushed before the
// writer waits on the next request's deferred reply, so a pipelined long
// poll cannot delay the answers before it (a consumer's OffsetCommit
// followed by its Fetch on one connection).
func TestReplyNotHeldBehindBlockingLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := blockingHandler{release: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wire.Serve(context.Background(), nc, h, wire.Options{MaxRequestBytes: 1 << 20})
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	data := append(frame(av, 1), frame(md, 2)...)
	if _, err := nc.Write(data); err != nil {
		t.Fatal(err)
	}
	readCorr := func() int32 {
		var hdr [8]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			t.Fatalf("reading a response: %v", err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
		if _, err := io.ReadFull(nc, body); err != nil {
			t.Fatal(err)
		}
		return int32(binary.BigEndian.Uint32(hdr[4:]))
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if c := readCorr(); c != 1 {
		t.Fatalf("first response has correlation id %d, want 1", c)
	}
	close(h.release)
	if c := readCorr(); c != 2 {
		t.Fatalf("second response has correlation id %d, want 2", c)
	}
	nc.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}
