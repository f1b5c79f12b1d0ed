// Package wire frames the Kafka protocol on a TCP connection: it reads
// size-prefixed request frames (bounded before allocating), parses the request
// header, decodes the body with kmsg, hands it to a Handler, and writes the
// responses back strictly in request order.
//
// Each connection has a reader goroutine and, while replies are queued, a
// writer goroutine. The reader calls
// the handler synchronously, so side effects (appends) happen in request
// order; a handler may return a deferred reply (a produce waiting for fsync, a
// fetch long poll) that the writer goroutine waits on, so the reader keeps
// decoding pipelined requests meanwhile. The queue between them is bounded:
// a client with too many requests in flight is simply not read from.
//
// An idle connection holds as little as possible (about 10,000 of them are
// expected on one broker): the reader blocks on the next frame's 4-byte size
// with no buffer (connReader), the writer goroutine exits when the queue has
// been empty for writerLinger, and the read and write buffers go back to
// pools meanwhile. A busy connection keeps its writer and write buffers, so
// the hot path pays no goroutine start per request.
//
// A response may be Vectored (vectored.go): partly in files, which the
// writer sends with sendfile(2) on a socket (flushing the buffered bytes
// before each file piece) or copies into its buffer elsewhere; the writer
// releases every Vectored response it was handed, written or dropped.
//
// The context a handler gets is the connection's: it is cancelled when the
// connection closes (the client left, a protocol violation, the server's
// context ended), so a deferred reply waiting under it ends with the
// connection instead of at its own deadline.
package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	Body          kmsg.Request
	Conn          *Conn
}

// Reply is what a handler returns. Exactly one of Resp or Later is set, or
// neither when no response must be sent (produce with acks=0).
type Reply struct {
	Resp  kmsg.Response
	Later func() kmsg.Response
	// Ready, if set with Later, is closed once Later no longer blocks
	// (a produce's fsync round completed): then earlier replies stay
	// buffered and go out with this one in one write. Before waiting on
	// a Later that is not ready, the writer flushes the earlier replies,
	// so they are not held back for the wait (a fetch long poll, the next
	// fsync round), except behind a large request with Ready set (see
	// largeFrame).
	Ready <-chan struct{}
}

// Handler serves requests. An error closes the connection (after earlier
// responses are written); protocol errors are codes inside the response.
type Handler interface {
	// Versions returns the supported version range of key, ok=false if the
	// key is not served at all.
	Versions(key int16) (min, max int16, ok bool)
	// Handle serves one request on the connection's reader goroutine. ctx
	// is the connection's context (Conn.Context): a Later may keep it and
	// wait under it.
	Handle(ctx context.Context, req *Request) (Reply, error)
	// UnsupportedVersion builds the response for a request whose version is
	// outside the supported range, if the API has such an answer (ApiVersions
	// answers v0 with UNSUPPORTED_VERSION); nil closes the connection.
	UnsupportedVersion(key, version int16) kmsg.Response
}

// Options bound a connection.
type Options struct {
	MaxRequestBytes int32
	MaxInFlight     int           // pipelined requests per connection awaiting their reply
	IdleTimeout     time.Duration // close a connection with no request for this long (0 = never)
	Logger          *slog.Logger
	Hooks           Hooks
}

// Hooks observe traffic (metrics); all fields are optional.
type Hooks struct {
	RequestDone func(key int16, start time.Time, failed bool)
	BytesIn     func(n int)
	BytesOut    func(n int)
}

// Conn is one client connection.
type Conn struct {
	nc       net.Conn
	Remote   string
	opts     Options
	handler  Handler
	log      *slog.Logger
	queue    chan *pending // pointers: an idle connection's 128 slots cost 1 KB, not 10
	closeMu  sync.Once
	stopping atomic.Bool
	// writing is true while a writer goroutine runs; it is started when a
	// reply is queued and none runs, and exits when the queue is empty
	// (checked under wmu, so a reply queued meanwhile is never stranded).
	wmu     sync.Mutex
	writing bool
	writers sync.WaitGroup
	broken  atomic.Bool // a write failed: writers drop what is queued
	// readDone is closed when the reader stops: a lingering writer with
	// nothing queued exits at once instead of after writerLinger.
	readDone chan struct{}
	// ctx is cancelled by Close (Context).
	ctx    context.Context
	cancel context.CancelFunc
	// software is the client's name and version from its ApiVersions
	// request (v3+), for KIP-714 subscription matching.
	software atomic.Pointer[[2]string]
}

type pending struct {
	size     int32 // request frame size
	corr     int32
	key      int16
	flexible bool // response header v1 (tagged fields)
	reply    Reply
	start    time.Time
	failed   bool
	last     bool // close after writing
}

const (
	produceKey = 0
	// largeFrame: behind a request this big whose Later has Ready, the
	// writer keeps earlier replies buffered while it waits. Measured with
	// 1 MiB produce batches (bench/bandwidth.sh shape): acking them a round
	// earlier left MB/s unchanged but cost 20% more broker CPU per GB,
	// while for small requests it raised one-client throughput by 19%.
	largeFrame = 256 << 10
	// maxReusedFrame bounds the buffer a connection keeps between requests.
	maxReusedFrame = 8 << 20
	ioBufferSize   = 64 << 10
	// writerLinger: a writer goroutine with nothing queued waits this long
	// for the next reply before exiting, so a busy connection does not
	// start a goroutine (and grow its stack) per request, while an idle
	// one gives its writer and buffers back almost at once (a longer
	// linger kept more buffers alive at a time when many connections
	// arrived together: 16-23 KB per idle connection at 1 s, 11 at 20 ms).
	writerLinger = 20 * time.Millisecond
)

// The read and write buffers of busy connections. A connection takes them
// when data arrives or a reply is queued and gives them back when it has
// nothing buffered, so idle connections hold none.
var (
	writerPool = sync.Pool{New: func() any {
		return &writeBuffers{bw: bufio.NewWriterSize(nil, ioBufferSize), buf: make([]byte, 0, ioBufferSize)}
	}}
)

type writeBuffers struct {
	bw     *bufio.Writer
	buf    []byte      // one encoded response
	pieces []FilePiece // a Vectored response's file pieces
}

// ErrFrameTooLarge is logged when a client announces a frame above the limit.
var ErrFrameTooLarge = errors.New("wire: request frame larger than socket.request.max.bytes")

// Serve runs a connection (see Conn.Serve).
func Serve(ctx context.Context, nc net.Conn, h Handler, opts Options) {
	NewConn(nc, h, opts).Serve(ctx)
}

// NewConn wraps nc; call Serve to run it.
func NewConn(nc net.Conn, h Handler, opts Options) *Conn {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 128
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		nc: nc, Remote: nc.RemoteAddr().String(), opts: opts, handler: h,
		log: lg, queue: make(chan *pending, opts.MaxInFlight), ctx: ctx, cancel: cancel, readDone: make(chan struct{}),
	}
}

// Serve runs the connection until the client disconnects, a protocol
// violation closes it, StopReading is called, or ctx ends (which closes the
// socket at once). It returns after both goroutines stop.
func (c *Conn) Serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	c.readLoop()
	close(c.readDone)
	watched := make(chan struct{})
	go func() {
		// Reading stopped (protocol violation, or the client left) while
		// the writer may still wait on queued deferred replies: keep
		// reading, discarding, so a client that leaves is noticed and
		// replies waiting on Done end now instead of at their deadline.
		defer close(watched)
		if !c.stopping.Load() {
			io.Copy(io.Discard, c.nc)
			c.readFailed()
		}
	}()
	// The reader no longer queues replies, so the writer running (if any)
	// drains the queue and exits; with none running the queue is empty.
	c.writers.Wait()
	c.Close()
	<-watched
}

// StopReading makes the reader stop taking new requests; replies already
// queued are still written, then the connection closes. Used for graceful
// shutdown.
func (c *Conn) StopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// Close closes the socket and cancels the connection's context; both loops
// then end.
func (c *Conn) Close() {
	c.closeMu.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

// Context is cancelled when the connection closes. It is the context
// handlers get: deferred replies (Later) that may wait long, such as fetch
// long polls and group joins, wait under it so a departed client does not
// hold its connection's goroutines (and a graceful shutdown) until the wait
// ends. A nil Conn (handlers called directly) has a context that never ends.
func (c *Conn) Context() context.Context {
	if c == nil {
		return context.Background()
	}
	return c.ctx
}

// SetClientSoftware records the client software name and version the
// connection's ApiVersions request announced. A nil Conn ignores it.
func (c *Conn) SetClientSoftware(name, version string) {
	if c != nil {
		c.software.Store(&[2]string{name, version})
	}
}

// ClientSoftware returns what SetClientSoftware recorded ("" if nothing).
func (c *Conn) ClientSoftware() (name, version string) {
	if c == nil {
		return "", ""
	}
	if p := c.software.Load(); p != nil {
		return p[0], p[1]
	}
	return "", ""
}

// readFailed closes the connection after a failed read, unless StopReading
// caused the failure (then queued replies are still written). The client is
// gone, or idle past the timeout: replies still pending cannot be delivered,
// and closing ends the deferred ones waiting on Done now.
func (c *Conn) readFailed() {
	if !c.stopping.Load() {
		c.Close()
	}
}

func (c *Conn) readLoop() {
	br := newConnReader(c.nc) // holds a buffer only while bytes are buffered
	defer br.close()
	var sizeBuf [4]byte
	var reuse []byte // a produce frame's buffer, free for the next frame
	for {
		if c.opts.IdleTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(c.opts.IdleTimeout))
		}
		if c.stopping.Load() { // checked after re-arming so StopReading always wins
			return
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if !isClosed(err) {
				c.log.Debug("connection read ended", "remote", c.Remote, "err", err)
			}
			c.readFailed()
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.opts.MaxRequestBytes {
			c.log.Warn("closing connection: bad request frame size", "remote", c.Remote, "size", size,
				"max", c.opts.MaxRequestBytes, "hint", "raise socket-request-max-bytes if the client is legitimate")
			return
		}
		// Produce frames are the big ones, and a produce request is done
		// with its frame when its handler returns (batches are appended
		// synchronously; nothing keeps a reference), so one buffer per
		// connection is reused for them instead of allocating and zeroing
		// megabytes per request. Other requests get a fresh frame, since
		// their decoded byte slices alias it and may outlive the handler.
		var frame []byte
		if cap(reuse) >= int(size) {
			frame, reuse = reuse[:size], nil
		} else {
			frame = make([]byte, size)
		}
		if _, err := io.ReadFull(br, frame); err != nil {
			c.log.Info("closing connection: truncated request frame", "remote", c.Remote, "want", size, "err", err)
			c.readFailed()
			return
		}
		if c.opts.Hooks.BytesIn != nil {
			c.opts.Hooks.BytesIn(int(size) + 4)
		}
		p, ok := c.handleFrame(frame)
		p.size = size
		if binary.BigEndian.Uint16(frame) == produceKey && cap(frame) <= maxReusedFrame {
			reuse = frame
		}
		if p.reply.Resp != nil || p.reply.Later != nil || p.last {
			if !c.enqueue(br, p) {
				p.release()
				return
			}
		}
		if !ok {
			return
		}
	}
}

// enqueue hands p to the writer; false means the connection closed. When the
// pipeline is full (the writer waits on an earlier deferred reply, say a long
// poll) it waits for room while watching the socket, so a client that
// disconnects meanwhile is noticed now rather than when the queue drains.
func (c *Conn) enqueue(br *connReader, p pending) bool {
	if !c.send(br, &p) {
		return false
	}
	c.wmu.Lock()
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeLoop()
	}
	c.wmu.Unlock()
	return true
}

func (c *Conn) send(br *connReader, p *pending) bool {
	select {
	case c.queue <- p:
		return true
	case <-c.ctx.Done():
		return false
	default:
	}
	for {
		peeked := make(chan error, 1)
		go func() {
			// One byte more than is buffered: returns at the client's next
			// byte or at EOF (at once with ErrBufferFull if the buffer is
			// full; such a client is not watched).
			peeked <- br.waitMore()
		}()
		select {
		case c.queue <- p:
			// Interrupt the peek before br is used again; readLoop re-arms
			// the deadline and re-checks StopReading before its next read.
			c.nc.SetReadDeadline(time.Now())
			<-peeked
			if c.opts.IdleTimeout <= 0 {
				c.nc.SetReadDeadline(time.Time{})
			}
			return true
		case err := <-peeked:
			if err == nil {
				continue // more bytes buffered; keep watching
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				c.readFailed()
			}
		case <-c.ctx.Done():
			<-peeked // the socket is closed, so the peek returns; br is reused after
			return false
		}
		break
	}
	select {
	case c.queue <- p:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// handleFrame decodes and dispatches one frame. ok=false closes the
// connection after p (if it carries a reply) is written.
func (c *Conn) handleFrame(frame []byte) (p pending, ok bool) {
	start := time.Now()
	hdr, body, err := parseHeader(frame)
	if err != nil {
		c.log.Warn("closing connection: malformed request header", "remote", c.Remote, "err", err)
		return pending{}, false
	}
	p = pending{corr: hdr.corr, key: hdr.key, start: start}
	minV, maxV, served := c.handler.Versions(hdr.key)
	if !served {
		c.log.Warn("closing connection: unsupported API key", "remote", c.Remote, "api_key", hdr.key,
			"api", kmsg.NameForKey(hdr.key), "client_id", hdr.clientID)
		return pending{}, false
	}
	if hdr.version < minV || hdr.version > maxV {
		resp := c.handler.UnsupportedVersion(hdr.key, hdr.version)
		if resp == nil {
			c.log.Warn("closing connection: unsupported API version", "remote", c.Remote,
				"api", kmsg.NameForKey(hdr.key), "version", hdr.version, "supported", fmt.Sprintf("%d-%d", minV, maxV))
			return pending{}, false
		}
		p.reply = Reply{Resp: resp}
		return p, true
	}
	req := kmsg.RequestForKey(hdr.key)
	req.SetVersion(hdr.version)
	p.flexible = req.IsFlexible() && hdr.key != 18 // ApiVersions replies always use header v0
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			c.log.Warn("closing connection: malformed request header tags", "remote", c.Remote, "err", err)
			return pending{}, false
		}
	}
	if err := req.ReadFrom(body); err != nil {
		c.log.Warn("closing connection: malformed request body", "remote", c.Remote,
			"api", kmsg.NameForKey(hdr.key), "version", hdr.version, "err", err)
		return pending{}, false
	}
	reply, err := c.safeHandle(c.ctx, &Request{
		Key: hdr.key, Version: hdr.version, CorrelationID: hdr.corr, ClientID: hdr.clientID, Body: req, Conn: c,
	})
	if err != nil {
		c.log.Warn("closing connection: request failed", "remote", c.Remote,
			"api", kmsg.NameForKey(hdr.key), "version", hdr.version, "err", err)
		p.failed = true
		p.last = true
		if c.opts.Hooks.RequestDone != nil {
			c.opts.Hooks.RequestDone(hdr.key, start, true)
		}
		return p, false
	}
	p.reply = reply
	if reply.Resp == nil && reply.Later == nil && c.opts.Hooks.RequestDone != nil {
		c.opts.Hooks.RequestDone(hdr.key, start, false) // acks=0: done now, nothing to write
	}
	return p, true
}

// writeLoop writes queued replies in order and exits when the queue is
// empty (enqueue starts it again), giving its buffers back.
func (c *Conn) writeLoop() {
	defer c.writers.Done()
	var w *writeBuffers // from writerPool once there is something to write
	defer func() {
		if w != nil {
			w.bw.Reset(nil)
			w.buf = w.buf[:0]
			writerPool.Put(w)
		}
	}()
	var linger *time.Timer
	for {
		var p *pending
		select {
		case p = <-c.queue:
		default:
			if w != nil && w.bw.Buffered() > 0 && !c.broken.Load() && w.bw.Flush() != nil {
				c.broken.Store(true)
				c.Close()
			}
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			select {
			case p = <-c.queue:
				linger.Stop()
			case <-linger.C:
			case <-c.readDone:
				linger.Stop()
			}
			if p != nil {
				break
			}
			c.wmu.Lock()
			if len(c.queue) == 0 {
				c.writing = false
				c.wmu.Unlock()
				return
			}
			c.wmu.Unlock()
			continue
		}
		if c.broken.Load() {
			p.release()
			continue // drain so the reader never blocks on a dead writer
		}
		if w == nil {
			w = writerPool.Get().(*writeBuffers)
			w.bw.Reset(c.nc)
		}
		if !c.write(w, p) {
			c.broken.Store(true)
			c.Close()
		}
	}
}

// write writes one reply (running its Later first); false closes the
// connection.
func (c *Conn) write(w *writeBuffers, p *pending) bool {
	bw := w.bw
	resp := p.reply.Resp
	if p.reply.Later != nil {
		if bw.Buffered() > 0 && !isReady(p.reply.Ready) && (p.reply.Ready == nil || p.size < largeFrame) {
			// Do not hold written replies back while this one
			// waits (a long poll, an fsync round).
			if err := bw.Flush(); err != nil {
				return false
			}
		}
		resp = c.safeLater(p.key, p.reply.Later)
		if resp == nil {
			p.last = true
		}
	}
	if resp == nil {
		if p.last {
			bw.Flush()
			return false
		}
		return true
	}
	n, err := c.writeResponse(w, p, resp)
	if cap(w.buf) > 1<<20 {
		w.buf = make([]byte, 0, ioBufferSize) // do not pin a huge fetch buffer
	}
	if err != nil {
		c.log.Debug("connection write failed", "remote", c.Remote, "api", kmsg.NameForKey(p.key), "err", err)
		return false
	}
	if len(c.queue) == 0 {
		if err := bw.Flush(); err != nil {
			return false
		}
	}
	if c.opts.Hooks.BytesOut != nil {
		c.opts.Hooks.BytesOut(n)
	}
	if c.opts.Hooks.RequestDone != nil {
		c.opts.Hooks.RequestDone(p.key, p.start, p.failed)
	}
	if p.last {
		bw.Flush()
		return false
	}
	return true
}

// writeResponse frames and writes resp into bw and returns the frame's
// size.
func (c *Conn) writeResponse(w *writeBuffers, p *pending, resp kmsg.Response) (int, error) {
	if v, ok := resp.(Vectored); ok {
		return c.writeVectored(w, p, v)
	}
	buf := append(w.buf[:0], 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
	if p.flexible {
		buf = append(buf, 0) // empty tagged fields
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	w.buf = buf
	_, err := w.bw.Write(buf)
	return len(buf), err
}

func isReady(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// safeHandle runs the handler, turning a panic (a bug, never expected) into
// a closed connection with a logged stack instead of a crashed broker.
func (c *Conn) safeHandle(ctx context.Context, req *Request) (reply Reply, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panic: closing connection", "remote", c.Remote,
				"api", kmsg.NameForKey(req.Key), "version", req.Version, "panic", r, "stack", string(debug.Stack()))
			reply, err = Reply{}, fmt.Errorf("wire: handler panic: %v", r)
		}
	}()
	return c.handler.Handle(ctx, req)
}

// safeLater runs a deferred reply; a panic yields nil (close the connection).
func (c *Conn) safeLater(key int16, later func() kmsg.Response) (resp kmsg.Response) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("deferred reply panic: closing connection", "remote", c.Remote,
				"api", kmsg.NameForKey(key), "panic", r, "stack", string(debug.Stack()))
			resp = nil
		}
	}()
	return later()
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
