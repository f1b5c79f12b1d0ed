package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Vectored is a response whose encoding is partly in files: a fetch's
// record batches, which on a TCP connection are sent from the page cache
// with sendfile(2) instead of being read into memory and written (the
// response header and the framing around them still go out with write).
// On other connections, and for pieces below MinSendfile, the writer reads
// the pieces into its write buffer instead (pread, one copy).
type Vectored interface {
	kmsg.Response
	// AppendVectored appends the in-memory bytes of the response body to
	// dst and adds the file pieces to pieces, each with the position in
	// dst before which it goes, in order. It must encode what AppendTo
	// would, byte for byte, with each piece's bytes in its place.
	AppendVectored(dst []byte, pieces []FilePiece) ([]byte, []FilePiece)
	// Release gives back what the pieces hold (open files). The writer
	// calls it exactly once for every Vectored response a reply carries,
	// whether it was written or dropped.
	Release()
}

// FilePiece is a file region inserted into a Vectored response's bytes at
// position At.
type FilePiece struct {
	At     int
	Region FileRegion
}

// FileRegion is Len bytes of an open file at Offset. The file is read with
// positional reads (its file position is shared). Intact is checked after
// the region was written: false means the file was cut meanwhile, so the
// bytes sent may be wrong and the connection is closed.
type FileRegion interface {
	File() *os.File
	Offset() int64
	Len() int64
	Intact() bool
}

// MinSendfile: file pieces smaller than this are copied into the write
// buffer rather than sent with sendfile. A sendfile costs a flush of the
// buffered bytes before it (one more write, one more segment on the wire)
// and the system call itself, which outweighs the copies it saves on small
// pieces (docs/DESIGN.md, "Zero-copy fetch"). A variable for tests.
var MinSendfile int64 = 16 << 10

// release gives back a queued reply's Vectored response that will not be
// written.
func (p *pending) release() {
	if v, ok := p.reply.Resp.(Vectored); ok {
		v.Release()
	}
}

// writeVectored writes one Vectored response: the frame header and body
// bytes through bw, the file pieces with sendfile (after flushing bw) on a
// socket, else copied into bw.
func (c *Conn) writeVectored(w *writeBuffers, p *pending, v Vectored) (int, error) {
	defer v.Release()
	buf := append(w.buf[:0], 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
	if p.flexible {
		buf = append(buf, 0) // empty tagged fields
	}
	pieces := w.pieces[:0]
	buf, pieces = v.AppendVectored(buf, pieces)
	size := int64(len(buf) - 4)
	for _, pc := range pieces {
		size += pc.Region.Len()
	}
	if size > 1<<31-1 {
		return 0, fmt.Errorf("wire: response of %d bytes", size)
	}
	binary.BigEndian.PutUint32(buf, uint32(size))
	w.buf, w.pieces = buf, pieces
	defer func() {
		clear(w.pieces) // do not keep the regions (and their segments) reachable
		w.pieces = w.pieces[:0]
	}()
	var raw syscall.RawConn
	if sc, ok := c.nc.(syscall.Conn); ok && canSendfile {
		raw, _ = sc.SyscallConn()
	}
	bw := w.bw
	at := 0
	for _, pc := range pieces {
		if _, err := bw.Write(buf[at:pc.At]); err != nil {
			return 0, err
		}
		at = pc.At
		r := pc.Region
		if raw != nil && r.Len() >= MinSendfile {
			if err := bw.Flush(); err != nil {
				return 0, err
			}
			if err := sendFile(raw, r.File(), r.Offset(), r.Len()); err != nil {
				return 0, err
			}
		} else if err := copyRegion(bw, r.File(), r.Offset(), r.Len()); err != nil {
			return 0, err
		}
		if !r.Intact() {
			return 0, fmt.Errorf("wire: file %s changed while its bytes were sent", r.File().Name())
		}
	}
	if _, err := bw.Write(buf[at:]); err != nil {
		return 0, err
	}
	return int(size) + 4, nil
}

// copyRegion reads n bytes of f at off straight into bw's buffer.
func copyRegion(bw *bufio.Writer, f *os.File, off, n int64) error {
	for n > 0 {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		m, err := f.ReadAt(buf, off)
		if m < len(buf) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("wire: read %s at %d: %w", f.Name(), off, err)
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		off += int64(m)
		n -= int64(m)
	}
	return nil
}

// SendsFiles reports whether the connection sends Vectored responses' file
// pieces with sendfile: a plain socket on Linux. Elsewhere (TLS, pipes, a
// nil Conn) a handler had better answer with an ordinary response.
func (c *Conn) SendsFiles() bool {
	if c == nil || !canSendfile {
		return false
	}
	_, ok := c.nc.(syscall.Conn)
	return ok
}
