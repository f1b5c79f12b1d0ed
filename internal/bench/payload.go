package bench

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
)

// Every value chronik-bench produces (when at least headerSize bytes) starts
// with a header that lets a consumer check content and order without any
// state shared with the producer:
//
//	0  magic "CHB1"
//	4  run id        uint64  random per run
//	12 producer id   uint32  the sender within the run
//	16 sequence      uint64  0, 1, 2 ... per sender
//	24 send time     int64   Unix nanoseconds (round-trip latency)
//	32 CRC-32C       uint32  over bytes [0,32) and the body [36,len)
//
// A sender has one record in flight and sends the next only after the
// previous is acknowledged, so within one partition a sender's sequence
// numbers must strictly increase.
const headerSize = 36

var (
	headerMagic = [4]byte{'C', 'H', 'B', '1'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// header is the decoded form of the value header.
type header struct {
	RunID    uint64
	Producer uint32
	Seq      uint64
	SentNs   int64
}

// encodeHeader writes h into value[:headerSize] and the checksum of the
// whole value; the body (value[headerSize:]) must already be filled.
func encodeHeader(value []byte, h header) {
	copy(value[0:4], headerMagic[:])
	binary.BigEndian.PutUint64(value[4:], h.RunID)
	binary.BigEndian.PutUint32(value[12:], h.Producer)
	binary.BigEndian.PutUint64(value[16:], h.Seq)
	binary.BigEndian.PutUint64(value[24:], uint64(h.SentNs))
	crc := crc32.Update(crc32.Checksum(value[:32], castagnoli), castagnoli, value[headerSize:])
	binary.BigEndian.PutUint32(value[32:], crc)
}

// decodeResult says what a value holds.
type decodeResult int

const (
	decodeOK      decodeResult = iota
	decodeForeign              // no header: too short or wrong magic
	decodeCorrupt              // header present, checksum mismatch
)

func decodeHeader(value []byte) (header, decodeResult) {
	if len(value) < headerSize || [4]byte(value[0:4]) != headerMagic {
		return header{}, decodeForeign
	}
	crc := crc32.Update(crc32.Checksum(value[:32], castagnoli), castagnoli, value[headerSize:])
	if crc != binary.BigEndian.Uint32(value[32:]) {
		return header{}, decodeCorrupt
	}
	return header{
		RunID:    binary.BigEndian.Uint64(value[4:]),
		Producer: binary.BigEndian.Uint32(value[12:]),
		Seq:      binary.BigEndian.Uint64(value[16:]),
		SentNs:   int64(binary.BigEndian.Uint64(value[24:])),
	}, decodeOK
}

const bodyPoolSize = 1 << 20

var (
	bodyOnce   sync.Once
	randomBody []byte // bodyPoolSize + 64KiB of random bytes
	textBody   []byte // the same length of ASCII prose
)

func initBodies() {
	bodyOnce.Do(func() {
		n := bodyPoolSize + 64<<10
		r := rand.New(rand.NewPCG(1, 2))
		randomBody = make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(randomBody[i:], r.Uint64())
		}
		words := []string{"the", "broker", "stores", "every", "record", "batch", "as", "sent", "and",
			"consumers", "read", "durable", "data", "from", "segment", "files", "while", "group",
			"commit", "makes", "one", "fsync", "cover", "many", "requests", "stream", "of", "events"}
		textBody = make([]byte, 0, n+16)
		for len(textBody) < n {
			textBody = append(textBody, words[r.IntN(len(words))]...)
			if r.IntN(12) == 0 {
				textBody = append(textBody, ".\n"...)
			} else {
				textBody = append(textBody, ' ')
			}
		}
		textBody = textBody[:n]
	})
}

// fillBody fills b per the payload pattern. random and text copy from a
// pre-generated pool at a random offset, so making a record costs a copy, not
// a random number per byte; zeros leaves a zeroed buffer alone.
func fillBody(b []byte, pattern string, r *rand.Rand) {
	var src []byte
	switch pattern {
	case "random":
		src = randomBody
	case "text":
		src = textBody
	default:
		clear(b)
		return
	}
	for len(b) > 0 {
		off := r.IntN(bodyPoolSize)
		n := copy(b, src[off:])
		b = b[n:]
	}
}

// keyGen makes record keys per --key-pattern.
type keyGen struct {
	pattern string
	seq     *atomic.Uint64 // shared by all senders of a run for "sequential"
}

var fixedKey = []byte("chronik-bench-key")

// next appends the next key to buf[:0].
func (k keyGen) next(buf []byte, r *rand.Rand) []byte {
	switch k.pattern {
	case "fixed":
		return append(buf[:0], fixedKey...)
	case "sequential":
		return strconv.AppendUint(append(buf[:0], "key-"...), k.seq.Add(1)-1, 10)
	default:
		return strconv.AppendUint(append(buf[:0], "key-"...), r.Uint64(), 16)
	}
}

// messageSizeFor picks a record's value size: the configured size, or for
// the mixed load pattern a uniform draw from [size/2, 3*size/2] (mean size,
// so MB/s stays comparable with steady runs), never below the header.
func messageSizeFor(size int, loadPattern string, withHeader bool, r *rand.Rand) int {
	if loadPattern == "mixed" && size > 1 {
		size = size/2 + r.IntN(size+1)
	}
	if withHeader && size < headerSize {
		size = headerSize
	}
	return size
}
