package wire

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

const canSendfile = true

// sendFile writes n bytes of f at off to the socket behind raw with
// sendfile(2), passing the offset explicitly: the file's position is shared
// by every connection sending from it. (net.TCPConn.ReadFrom would use
// sendfile too, but from the file's current position.) It waits for the
// socket to take more as a write does, and fails when the file ends before
// n bytes (a truncated file).
func sendFile(raw syscall.RawConn, f *os.File, off, n int64) error {
	fc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var sent int64
	var serr error
	cerr := fc.Control(func(src uintptr) {
		werr := raw.Write(func(dst uintptr) bool {
			for sent < n {
				pos := off + sent
				m, err := syscall.Sendfile(int(dst), int(src), &pos, int(min(n-sent, 1<<30)))
				if m > 0 {
					sent += int64(m)
				}
				switch {
				case err == syscall.EAGAIN:
					return false // wait until the socket is writable
				case err == syscall.EINTR:
				case err != nil:
					serr = err
					return true
				case m == 0:
					serr = io.ErrUnexpectedEOF
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	if serr != nil {
		return fmt.Errorf("wire: sendfile %s at %d (%d of %d bytes sent): %w", f.Name(), off, sent, n, serr)
	}
	return nil
}
