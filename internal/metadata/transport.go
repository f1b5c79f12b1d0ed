package metadata

// One TCP port per node carries the metadata quorum: a connection's first
// byte says whether it is Raft's (connR, handed to raft's network transport)
// or a write forwarded to the leader (connF, one JSON request and answer).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	connR = 'R'
	connF = 'F'
)

var errNoLeader = errors.New("no metadata quorum leader known")

// mux is raft's StreamLayer over the shared listener.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	raft      chan net.Conn
	done      chan struct{}
	once      sync.Once
}

func newMux(ln net.Listener, advertise string, forward func(net.Conn)) *mux {
	m := &mux{ln: ln, raft: make(chan net.Conn), done: make(chan struct{})}
	m.advertise = ln.Addr()
	if a, err := net.ResolveTCPAddr("tcp", advertise); err == nil {
		m.advertise = a
	}
	go m.serve(forward)
	return m
}

func (m *mux) serve(forward func(net.Conn)) {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of descriptors: try again
			continue
		}
		go func() {
			var b [1]byte
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, b[:]); err != nil {
				c.Close()
				return
			}
			c.SetReadDeadline(time.Time{})
			switch b[0] {
			case connR:
				select {
				case m.raft <- c:
				case <-m.done:
					c.Close()
				}
			case connF:
				forward(c)
			default:
				c.Close()
			}
		}()
	}
}

func (m *mux) Accept() (net.Conn, error) {
	select {
	case c := <-m.raft:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *mux) Close() error {
	m.once.Do(func() {
		close(m.done)
		m.ln.Close()
	})
	return nil
}

func (m *mux) Addr() net.Addr { return m.advertise }

func (m *mux) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{connR}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

type forwardReq struct {
	Op   string `json:"op"` // apply, barrier, register, heartbeat
	Data []byte `json:"data,omitempty"`
}

type forwardResp struct {
	Index uint64 `json:"index"`
	Code  string `json:"code,omitempty"` // the state machine refused: one of errCodes
	Err   string `json:"err,omitempty"`
}

// refusal is the leader's state machine refusing a forwarded change.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }

// forward sends req to the leader and returns the index its answer names.
func (q *quorum) forward(req *forwardReq) (uint64, error) {
	addr, id := q.r.LeaderWithID()
	if addr == "" || id == q.self {
		return 0, errNoLeader
	}
	// The leader's address as this node knows it (--cluster-peers), not as
	// the leader advertises it: the path between two nodes may differ
	// (a proxy, NAT) and this node's list is the one its operator wrote.
	if a, ok := q.peerAddrs[id]; ok {
		addr = raft.ServerAddress(a)
	}
	c, err := net.DialTimeout("tcp", string(addr), 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("%w: leader %s: %v", errNoLeader, id, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(append([]byte{connF}, b...), '\n')); err != nil {
		return 0, fmt.Errorf("%w: leader %s: %v", errNoLeader, id, err)
	}
	var resp forwardResp
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		// The write may have been taken: the caller must not retry it.
		return 0, fmt.Errorf("leader %s did not answer: %v", id, err)
	}
	if resp.Code != "" {
		if e, ok := errCodes[resp.Code]; ok {
			// The index of the refused entry: once applied here, this
			// node sees what the refusal was about.
			return resp.Index, &refusal{e}
		}
	}
	if resp.Err != "" {
		if resp.Err == raft.ErrNotLeader.Error() {
			return 0, raft.ErrNotLeader
		}
		return 0, errors.New(resp.Err)
	}
	return resp.Index, nil
}

// serveForward answers one forwarded request on the leader.
func (q *quorum) serveForward(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req forwardReq
	if err := json.NewDecoder(bufio.NewReader(io.LimitReader(c, 64<<20))).Decode(&req); err != nil {
		return
	}
	var resp forwardResp
	idx, err := q.onLeader(req.Op, req.Data)
	resp.Index = idx
	if err != nil {
		resp.Err = err.Error()
		var refused *refusal
		if errors.As(err, &refused) {
			for code, e := range errCodes {
				if errors.Is(refused.err, e) {
					resp.Code = code
				}
			}
		}
	}
	b, _ := json.Marshal(&resp)
	c.Write(append(b, '\n'))
}

// hcLog writes raft's hclog lines to slog. A broker alone has no one to
// elect or hear from, so raft's election chatter at every start is debug.
type hcLog struct {
	lg    *slog.Logger
	alone bool
	name  string
	args  []any
}

func newHCLog(lg *slog.Logger, alone bool) hclog.Logger { return &hcLog{lg: lg, alone: alone} }

func (h *hcLog) Log(level hclog.Level, msg string, args ...any) {
	var l slog.Level
	switch {
	case level >= hclog.Error:
		l = slog.LevelError
	case level == hclog.Warn && !h.alone:
		l = slog.LevelWarn
	case level == hclog.Info && !h.alone:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	if h.name != "" {
		args = append(args, "raft_logger", h.name)
	}
	h.lg.Log(context.Background(), l, msg, append(h.args, args...)...)
}

func (h *hcLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hcLog) IsTrace() bool                 { return false }
func (h *hcLog) IsDebug() bool                 { return h.lg.Enabled(context.Background(), slog.LevelDebug) }
func (h *hcLog) IsInfo() bool                  { return true }
func (h *hcLog) IsWarn() bool                  { return true }
func (h *hcLog) IsError() bool                 { return true }
func (h *hcLog) ImpliedArgs() []any            { return h.args }
func (h *hcLog) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}
func (h *hcLog) Name() string { return h.name }
func (h *hcLog) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}
func (h *hcLog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}
func (h *hcLog) SetLevel(hclog.Level)  {}
func (h *hcLog) GetLevel() hclog.Level { return hclog.Debug }
func (h *hcLog) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.lg.Handler(), slog.LevelInfo)
}
func (h *hcLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return slog.NewLogLogger(h.lg.Handler(), slog.LevelInfo).Writer()
}
