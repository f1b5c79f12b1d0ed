package wire

import (
	"encoding/binary"
	"errors"
)

var errShortHeader = errors.New("wire: request header truncated")

type header struct {
	key      int16
	version  int16
	corr     int32
	clientID string
}

// parseHeader reads request header v1 (key, version, correlation id, nullable
// client id). The tagged fields of header v2 follow the client id for flexible
// versions; the caller strips them with skipTags once it knows the version is
// flexible.
func parseHeader(b []byte) (header, []byte, error) {
	if len(b) < 10 {
		return header{}, nil, errShortHeader
	}
	h := header{
		key:     int16(binary.BigEndian.Uint16(b)),
		version: int16(binary.BigEndian.Uint16(b[2:])),
		corr:    int32(binary.BigEndian.Uint32(b[4:])),
	}
	n := int(int16(binary.BigEndian.Uint16(b[8:])))
	b = b[10:]
	if n > 0 {
		if n > len(b) {
			return header{}, nil, errShortHeader
		}
		h.clientID = string(b[:n])
		b = b[n:]
	} else if n < -1 {
		return header{}, nil, errors.New("wire: negative client id length")
	}
	return h, b, nil
}

// skipTags skips a tagged-field section: uvarint count, then per field a
// uvarint tag, a uvarint size and the bytes.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > uint64(len(b)) {
		return nil, errShortHeader
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		_, l = binary.Uvarint(b)
		if l <= 0 {
			return nil, errShortHeader
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || size > uint64(len(b)-l) {
			return nil, errShortHeader
		}
		b = b[l+int(size):]
	}
	return b, nil
}
