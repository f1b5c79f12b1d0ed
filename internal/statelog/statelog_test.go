package statelog

import "testing"

// The hashes are Java's String.hashCode values, known independently of this
// code: "hello" is 99162322; "polygenelubricants" is Integer.MIN_VALUE (its
// abs by masking is 0, where Math.abs would stay negative); "Aa" and "BB"
// collide at 2112; U+1F600 is the UTF-16 pair D83D DE00, 31*0xD83D+0xDE00.
func TestPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    int
		want int
	}{
		{"", 50, 0},
		{"hello", 50, 99162322 % 50},
		{"hello", 7, 99162322 % 7},
		{"polygenelubricants", 50, 0},
		{"Aa", 50, 2112 % 50},
		{"BB", 50, 2112 % 50},
		{"\U0001F600", 50, (31*0xD83D + 0xDE00) % 50},
	} {
		if got := PartitionFor(tc.id, tc.n); got != tc.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}
