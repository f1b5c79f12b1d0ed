package group

import (
	"bytes"
	"testing"
)

// FuzzDecodeKey: offsets-log keys are persisted bytes; decoding never
// panics and round-trips what encodeKey wrote.
func FuzzDecodeKey(f *testing.F) {
	f.Add(encodeKey("group", TP{"topic", 3}))
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, k []byte) {
		g, tp, ok := decodeKey(k)
		if ok && !bytes.Equal(encodeKey(g, tp), k) {
			t.Fatalf("decode(%x) = %q %+v does not re-encode", k, g, tp)
		}
	})
}
