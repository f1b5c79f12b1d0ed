package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression codec ids as stored in the low bits of a batch's attributes.
const (
	CodecNone   int8 = 0
	CodecGzip   int8 = 1
	CodecSnappy int8 = 2
	CodecLZ4    int8 = 3
	CodecZstd   int8 = 4
)

// MaxDecompressedBytes bounds what Decompress will produce. Batch payloads come
// from clients, so a small compressed batch must not be able to make the
// broker allocate gigabytes (a "zip bomb").
const MaxDecompressedBytes = 256 << 20

// maxDecompressed is MaxDecompressedBytes, lowered by tests.
var maxDecompressed = MaxDecompressedBytes

var (
	ErrUnknownCodec     = errors.New("storage: unknown compression codec")
	ErrCorruptPayload   = errors.New("storage: corrupt compressed payload")
	ErrDecompressTooBig = errors.New("storage: decompressed payload exceeds limit")
)

// xerialHeader starts snappy data framed by the Java client's snappy-java
// stream format; librdkafka and franz-go send raw snappy blocks instead, so
// both must be accepted.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoder is shared: DecodeAll is safe for concurrent use and creating a
// decoder is expensive. Concurrency 0 sizes its pool to GOMAXPROCS.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(uint64(maxDecompressed)))
})

// Decompress returns the decompressed form of a batch's records section
// (everything after the 61-byte header) for the given codec. CodecNone returns
// in unchanged. The result never exceeds MaxDecompressedBytes.
func Decompress(codec int8, in []byte) ([]byte, error) {
	return DecompressLimit(codec, in, maxDecompressed)
}

// DecompressLimit is Decompress with a smaller bound on the output (limit is
// capped at MaxDecompressedBytes): a payload that would decompress to more
// fails with ErrDecompressTooBig. Telemetry pushes use it (KIP-714 payloads
// are bounded by telemetry.max.bytes compressed, so far less decompressed).
func DecompressLimit(codec int8, in []byte, limit int) ([]byte, error) {
	limit = min(limit, maxDecompressed)
	switch codec {
	case CodecNone:
		return in, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorruptPayload, err)
		}
		return readLimited(zr, "gzip", limit)
	case CodecSnappy:
		return decodeSnappy(in, limit)
	case CodecLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(in)), "lz4", limit)
	case CodecZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("storage: zstd decoder: %w", err)
		}
		out, err := dec.DecodeAll(in, nil)
		if err == nil && len(out) > limit {
			err = zstd.ErrDecoderSizeExceeded
		}
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, ErrDecompressTooBig
			}
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorruptPayload, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, codec)
	}
}

func readLimited(r io.Reader, name string, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptPayload, name, err)
	}
	if len(out) > limit {
		return nil, ErrDecompressTooBig
	}
	return out, nil
}

// decodeSnappy accepts a raw snappy block or the xerial framing: a 16-byte
// header (magic, version, compatible version) followed by chunks, each a
// big-endian uint32 length and a raw snappy block.
func decodeSnappy(in []byte, limit int) ([]byte, error) {
	if len(in) < 16 || !bytes.Equal(in[:8], xerialHeader) {
		return snappyBlock(nil, in, limit)
	}
	var out []byte
	rest := in[16:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: snappy: truncated xerial chunk", ErrCorruptPayload)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: snappy: xerial chunk of %d bytes, %d remain", ErrCorruptPayload, n, len(rest))
		}
		var err error
		if out, err = snappyBlock(out, rest[:n], limit); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// snappyBlock decodes one raw snappy block and appends it to dst. s2 decodes
// snappy blocks (it is a superset of the format).
func snappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptPayload, err)
	}
	if len(dst)+n > limit {
		return nil, ErrDecompressTooBig
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := s2.Decode(dst[start:], block); err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptPayload, err)
	}
	return dst, nil
}
