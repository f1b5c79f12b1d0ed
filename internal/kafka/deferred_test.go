package kafka

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// oneAPI serves a single API key through h on broker b, so a test can run a
// handler of its own through wire.Serve.
type oneAPI struct {
	b   *Broker
	key int16
	h   handlerFunc
}

func (o oneAPI) Versions(key int16) (int16, int16, bool) {
	if key != o.key {
		return 0, 0, false
	}
	v := versions[key]
	return v.min, v.max, true
}

func (oneAPI) UnsupportedVersion(int16, int16) kmsg.Response { return nil }

func (o oneAPI) Handle(ctx context.Context, req *wire.Request) (wire.Reply, error) {
	return o.h(o.b, ctx, req)
}

// requestFrame encodes req as a client sends it (header v1/v2, client id "t").
func requestFrame(req kmsg.Request, corr int32) []byte {
	b := make([]byte, 4, 128)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 1)
	b = append(b, 't')
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// serveConn runs h on one side of a pipe and returns the client side and a
// channel closed when Serve returns.
func serveConn(t *testing.T, h wire.Handler) (net.Conn, <-chan struct{}) {
	t.Helper()
	cli, srv := net.Pipe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		wire.Serve(context.Background(), srv, h, wire.Options{MaxRequestBytes: 1 << 20})
	}()
	t.Cleanup(func() {
		cli.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of the client closing")
		}
	})
	return cli, served
}

// parkedHeartbeat is a deferred Heartbeat whose wait blocks until its
// context ends, reporting that on ended.
func parkedHeartbeat(started chan<- struct{}, ended chan<- error) handlerFunc {
	return deferred(func(_ *Broker, _ *wire.Request, r *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, waitFunc[*kmsg.HeartbeatResponse], error) {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		return nil, func(ctx context.Context) *kmsg.HeartbeatResponse {
			close(started)
			<-ctx.Done()
			ended <- ctx.Err()
			return resp
		}, nil
	})
}

func heartbeatReq() *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.SetVersion(4)
	req.Group, req.MemberID = "g", "m"
	return req
}

// TestDeferredWaitEndsWhenConnectionCloses: a deferred handler's wait sees
// its context cancelled when the client disconnects, and Serve returns.
func TestDeferredWaitEndsWhenConnectionCloses(t *testing.T) {
	f := newFixture(t)
	started, ended := make(chan struct{}), make(chan error, 1)
	cli, served := serveConn(t, oneAPI{f.b, kmsg.Heartbeat.Int16(), parkedHeartbeat(started, ended)})
	go io.Copy(io.Discard, cli)
	if _, err := cli.Write(requestFrame(heartbeatReq(), 7)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not start")
	}
	cli.Close()
	select {
	case err := <-ended:
		if err != context.Canceled {
			t.Errorf("wait context ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait's context was not cancelled when the connection closed")
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}

// TestDeferredWaitEndsOnEndWaits: EndWaits (graceful shutdown) cancels a
// wait's context, and the wait's response is still sent, at the request's
// version.
func TestDeferredWaitEndsOnEndWaits(t *testing.T) {
	f := newFixture(t)
	started, ended := make(chan struct{}), make(chan error, 1)
	cli, _ := serveConn(t, oneAPI{f.b, kmsg.Heartbeat.Int16(), parkedHeartbeat(started, ended)})
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	req := heartbeatReq()
	if _, err := cli.Write(requestFrame(req, 7)); err != nil {
		t.Fatal(err)
	}
	<-started
	f.b.EndWaits()
	if err := <-ended; err != context.Canceled {
		t.Errorf("wait context ended with %v, want context.Canceled", err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(cli, hdr[:]); err != nil {
		t.Fatalf("no response after EndWaits: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != 7 {
		t.Errorf("correlation id %d, want 7", corr)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
	if _, err := io.ReadFull(cli, body); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(req.Version)
	if err := resp.ReadFrom(body[1:]); err != nil { // v4 is flexible: skip the header's tags
		t.Fatalf("decoding the response: %v", err)
	}
}

// TestJoinGroupClientGone: a JoinGroup parked in the initial rebalance delay
// ends when its client disconnects, not when the delay does.
func TestJoinGroupClientGone(t *testing.T) {
	f := newFixture(t)
	f.openGroups(group.Options{InitialRebalanceDelay: time.Minute})
	cli, served := serveConn(t, f.b)
	go io.Copy(io.Discard, cli)
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.SetVersion(3) // before KIP-394: no MEMBER_ID_REQUIRED round trip
	jr.Group, jr.ProtocolType = "g", "consumer"
	jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis = 10000, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	jr.Protocols = append(jr.Protocols, p)
	if _, err := cli.Write(requestFrame(jr, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cli.Close()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the client closed during a JoinGroup wait")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Serve returned %v after the client closed", d)
	}
}
