package wire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// region is a file region for tests.
type region struct {
	f      *os.File
	off, n int64
}

func (r region) File() *os.File { return r.f }
func (r region) Offset() int64  { return r.off }
func (r region) Len() int64     { return r.n }
func (r region) Intact() bool   { return true }

// vecResponse is an ApiVersions response whose body is head, the regions,
// tail; released counts Release calls.
type vecResponse struct {
	*kmsg.ApiVersionsResponse
	head, tail []byte
	regions    []region
	released   *atomic.Int32
}

func (v vecResponse) AppendVectored(dst []byte, pieces []wire.FilePiece) ([]byte, []wire.FilePiece) {
	dst = append(dst, v.head...)
	for _, r := range v.regions {
		pieces = append(pieces, wire.FilePiece{At: len(dst), Region: r})
	}
	return append(dst, v.tail...), pieces
}

func (v vecResponse) Release() { v.released.Add(1) }

type vecHandler struct{ resp func() kmsg.Response }

func (vecHandler) Versions(key int16) (int16, int16, bool) { return 0, 3, key == 18 }
func (vecHandler) UnsupportedVersion(int16, int16) kmsg.Response {
	return nil
}
func (h vecHandler) Handle(context.Context, *wire.Request) (wire.Reply, error) {
	return wire.Reply{Resp: h.resp()}, nil
}

// A Vectored response arrives as its in-memory bytes with the file regions
// in place, over TCP (sendfile for large regions) and over a pipe
// (copied), and is released once per reply.
func TestVectoredResponse(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(dir, "seg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var released atomic.Int32
	regions := []region{{f, 5, 100}, {f, 1000, 200 << 10}, {f, 0, 1}, {f, 250 << 10, 50 << 10}}
	h := vecHandler{resp: func() kmsg.Response {
		return vecResponse{ApiVersionsResponse: kmsg.NewPtrApiVersionsResponse(), head: []byte("head"), tail: []byte("tail"), regions: regions, released: &released}
	}}
	want := []byte("head")
	for _, r := range regions {
		want = append(want, data[r.off:r.off+r.n]...)
	}
	want = append(want, "tail"...)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			wire.Serve(context.Background(), nc, h, wire.Options{MaxRequestBytes: 1 << 20})
		}
	}()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli, srv := net.Pipe()
	go wire.Serve(context.Background(), srv, h, wire.Options{MaxRequestBytes: 1 << 20})
	for name, c := range map[string]net.Conn{"tcp": tcp, "pipe": cli} {
		for i := range 3 { // pipelined
			writeFrame(t, c, int32(i))
		}
		for i := range 3 {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var hdr [8]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != int32(i) {
				t.Fatalf("%s: correlation id %d, want %d", name, corr, i)
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
			if _, err := io.ReadFull(c, body); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("%s: body of %d bytes differs from the %d expected", name, len(body), len(want))
			}
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for released.Load() != 6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := released.Load(); n != 6 {
		t.Fatalf("released %d times for 6 replies", n)
	}
}

func writeFrame(t *testing.T, c net.Conn, corr int32) {
	t.Helper()
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, 18)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}
