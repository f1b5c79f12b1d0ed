package wire

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// readBufPool holds the read buffers of connections with bytes buffered.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, ioBufferSize); return &b }}

// connReader is a buffered reader that holds its buffer only while bytes are
// buffered. On a socket it reads through syscall.RawConn: the buffer is
// taken from the pool when the socket is readable and given back when a
// read would block, so a connection waiting for its next request holds no
// buffer and a busy one pays no extra system call for that (the runtime's
// own read does the same EAGAIN-then-park dance). Other net.Conns (pipes in
// tests) block in Read holding the buffer.
type connReader struct {
	nc   net.Conn
	raw  syscall.RawConn // nil: not a socket
	buf  *[]byte         // nil when nothing is buffered
	r, w int
}

func newConnReader(nc net.Conn) *connReader {
	cr := &connReader{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cr.raw = raw
		}
	}
	return cr
}

// Buffered is the number of bytes read from the socket but not yet returned.
func (cr *connReader) Buffered() int { return cr.w - cr.r }

// release gives the buffer back if nothing is buffered.
func (cr *connReader) release() {
	if cr.buf != nil && cr.r == cr.w {
		readBufPool.Put(cr.buf)
		cr.buf, cr.r, cr.w = nil, 0, 0
	}
}

// Read reads into p, directly from the socket when nothing is buffered and p
// is at least a buffer long (large frames).
func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.r == cr.w {
		cr.release()
		if len(p) >= ioBufferSize {
			return cr.nc.Read(p)
		}
		if err := cr.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*cr.buf)[cr.r:cr.w])
	cr.r += n
	cr.release()
	return n, nil
}

// fill reads at least one more byte into the buffer; bufio.ErrBufferFull if
// it has no room.
func (cr *connReader) fill() error {
	if cr.buf != nil && cr.r > 0 { // slide to make room
		copy(*cr.buf, (*cr.buf)[cr.r:cr.w])
		cr.w -= cr.r
		cr.r = 0
	}
	if cr.buf != nil && cr.w == len(*cr.buf) {
		return bufio.ErrBufferFull
	}
	if cr.raw == nil {
		if cr.buf == nil {
			cr.buf = readBufPool.Get().(*[]byte)
		}
		n, err := cr.nc.Read((*cr.buf)[cr.w:])
		cr.w += n
		if n > 0 {
			return nil
		}
		cr.release()
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	var n int
	var rerr error
	err := cr.raw.Read(func(fd uintptr) bool {
		if cr.buf == nil {
			cr.buf = readBufPool.Get().(*[]byte)
		}
		for {
			n, rerr = syscall.Read(int(fd), (*cr.buf)[cr.w:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			cr.release() // park holding no buffer
			return false
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err == nil && n <= 0 {
		err = io.EOF
	}
	if err != nil {
		cr.release()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = &net.OpError{Op: "read", Net: "tcp", Addr: cr.nc.RemoteAddr(), Err: err}
		}
		return err
	}
	cr.w += n
	return nil
}

// waitMore returns when at least one more byte than is buffered has arrived,
// or the socket ended (its error), or at once with bufio.ErrBufferFull if
// the buffer is full.
func (cr *connReader) waitMore() error {
	return cr.fill()
}

// close gives the buffer back, dropping anything buffered.
func (cr *connReader) close() {
	cr.r = cr.w
	cr.release()
}
