//go:build !linux

package wire

import (
	"errors"
	"os"
	"syscall"
)

// canSendfile is false: file pieces are copied (copyRegion).
const canSendfile = false

func sendFile(syscall.RawConn, *os.File, int64, int64) error {
	return errors.New("wire: sendfile not supported")
}
