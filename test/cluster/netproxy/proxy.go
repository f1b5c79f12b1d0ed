// Package netproxy is a TCP proxy for fault tests on loopback: one Proxy
// stands on one link between two nodes (one direction of dialing), and a
// test cuts it, delays it, or drops what flows one way, to make network
// partitions, slow links and one-way partitions between real processes.
//
// A cut closes every connection and refuses new ones (accepted, then
// closed at once), as a host that is gone. A one-way drop keeps the
// connections open and throws away the bytes flowing that way, as a
// network that loses packets in one direction: the peer's requests (or
// answers) never arrive and only its timeouts notice. A delay holds every
// chunk for the given time in both directions, in order.
package netproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections made to Addr to its target.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	cut   bool

	delay          atomic.Int64 // nanoseconds
	dropUp, dropDn atomic.Bool  // client->target, target->client
	closed         chan struct{}
	wg             sync.WaitGroup
}

// Start listens on 127.0.0.1 (a free port) and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones until
// Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Heal undoes Cut, Delay and both drops.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	p.delay.Store(0)
	p.dropUp.Store(false)
	p.dropDn.Store(false)
}

// Delay holds every chunk for d in both directions (0: none).
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// DropToTarget discards what clients send (or stops discarding).
func (p *Proxy) DropToTarget(on bool) { p.dropUp.Store(on) }

// DropFromTarget discards what the target answers (or stops discarding).
func (p *Proxy) DropFromTarget(on bool) { p.dropDn.Store(on) }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		t, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, t) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, t, &p.dropUp)
		go p.pipe(t, c, &p.dropDn)
	}
}

// track registers a connection pair, or closes it if a cut came first.
func (p *Proxy) track(c, t net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		t.Close()
		return false
	}
	p.conns[c], p.conns[t] = struct{}{}, struct{}{}
	return true
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst, dropping or delaying as set; either side's end
// closes both.
func (p *Proxy) pipe(src, dst net.Conn, drop *atomic.Bool) {
	defer p.wg.Done()
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() { // the writer keeps chunks in order, each released at its time
		defer close(done)
		for ch := range q {
			if d := time.Until(ch.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(ch.b); err != nil {
				src.Close()
				for range q {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !drop.Load() {
			q <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now().Add(time.Duration(p.delay.Load()))}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	src.Close()
	dst.Close()
	p.mu.Lock()
	delete(p.conns, src)
	delete(p.conns, dst)
	p.mu.Unlock()
}

var _ io.Closer = (*Proxy)(nil)
