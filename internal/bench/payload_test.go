package bench

import (
	"bufio"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func makeValue(t *testing.T, size int, h header, pattern string) []byte {
	t.Helper()
	initBodies()
	v := make([]byte, size)
	fillBody(v[headerSize:], pattern, rand.New(rand.NewPCG(1, 1)))
	encodeHeader(v, h)
	return v
}

func TestHeaderRoundTripAndCorruption(t *testing.T) {
	for _, pattern := range []string{"random", "zeros", "text"} {
		h := header{RunID: 7, Producer: 3, Seq: 99, SentNs: time.Now().UnixNano()}
		v := makeValue(t, 300, h, pattern)
		got, res := decodeHeader(v)
		if res != decodeOK || got != h {
			t.Fatalf("%s: decoded %+v (%v), want %+v", pattern, got, res, h)
		}
		for _, i := range []int{0, 5, 20, 33, headerSize, len(v) - 1} {
			c := append([]byte(nil), v...)
			c[i] ^= 0x40
			if _, res := decodeHeader(c); res == decodeOK {
				t.Errorf("%s: flipping byte %d not detected", pattern, i)
			}
		}
	}
	if _, res := decodeHeader([]byte("short")); res != decodeForeign {
		t.Error("short value not foreign")
	}
	if _, res := decodeHeader(make([]byte, 100)); res != decodeForeign {
		t.Error("zero value not foreign")
	}
}

func TestFillBodyPatterns(t *testing.T) {
	initBodies()
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 3*bodyPoolSize) // longer than the pool: wraps
	fillBody(b, "text", r)
	for i, c := range b {
		if c != ' ' && c != '.' && c != '\n' && (c < 'a' || c > 'z') {
			t.Fatalf("text byte %d = %q", i, c)
		}
	}
	fillBody(b, "zeros", r)
	for i, c := range b {
		if c != 0 {
			t.Fatalf("zeros byte %d = %d", i, c)
		}
	}
	fillBody(b[:4096], "random", r)
	zeros := 0
	for _, c := range b[:4096] {
		if c == 0 {
			zeros++
		}
	}
	if zeros > 100 {
		t.Fatalf("random body has %d zero bytes of 4096", zeros)
	}
}

func TestKeysAndSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seq := keyGen{pattern: "sequential", seq: new(atomic.Uint64)}
	if a, b := string(seq.next(nil, r)), string(seq.next(nil, r)); a != "key-0" || b != "key-1" {
		t.Fatalf("sequential keys %q %q", a, b)
	}
	fixed := keyGen{pattern: "fixed"}
	if string(fixed.next(nil, r)) != string(fixed.next(nil, r)) {
		t.Fatal("fixed keys differ")
	}
	random := keyGen{pattern: "random"}
	if string(random.next(nil, r)) == string(random.next(nil, r)) {
		t.Fatal("random keys repeat")
	}
	sum := 0
	for i := 0; i < 10000; i++ {
		s := messageSizeFor(1000, "mixed", true, r)
		if s < 500 || s > 1500 {
			t.Fatalf("mixed size %d outside [500,1500]", s)
		}
		sum += s
	}
	if mean := sum / 10000; mean < 980 || mean > 1020 {
		t.Fatalf("mixed mean %d, want about 1000", mean)
	}
	if messageSizeFor(40, "mixed", true, r) < headerSize || messageSizeFor(10, "steady", false, r) != 10 {
		t.Fatal("header clamp wrong")
	}
}

func TestValidator(t *testing.T) {
	v := newValidator(0)
	val := func(p uint32, seq uint64) []byte {
		return makeValue(t, 64, header{RunID: 1, Producer: p, Seq: seq}, "random")
	}
	v.check(0, val(1, 0))
	v.check(0, val(1, 2)) // a gap is fine: the sender's other records went to other partitions
	v.check(1, val(1, 1))
	v.check(0, val(2, 0))
	v.check(0, val(1, 2)) // duplicate
	v.check(0, val(1, 1)) // backwards
	bad := val(2, 1)
	bad[50] ^= 1
	v.check(0, bad)
	v.check(0, []byte("not ours"))
	got := v.result(-1)
	want := Validation{Checked: 8, Valid: 4, Duplicate: 1, OutOfOrder: 1, Corrupt: 1, Foreign: 1}
	if *got != want || got.Errors() != 4 {
		t.Fatalf("validation %+v, want %+v", *got, want)
	}

	// Round-trip: only this run counts; missing = acked - consumed.
	rt := newValidator(9)
	rt.check(0, makeValue(t, 64, header{RunID: 8, Producer: 0, Seq: 0}, "zeros")) // earlier run: ignored
	rt.check(0, []byte("foreign"))                                                // ignored in round-trip
	rt.produceFailed(0, 1)
	for seq := uint64(0); seq < 3; seq++ {
		rt.check(0, makeValue(t, 64, header{RunID: 9, Producer: 0, Seq: seq}, "zeros"))
	}
	res := rt.result(4) // 4 acked, 2 of them seen (seq 1 failed yet was stored)
	if res.Checked != 3 || res.Valid != 3 || res.Unacked != 1 || res.Missing != 2 || res.Errors() != 2 {
		t.Fatalf("round-trip validation %+v", *res)
	}
}

func TestBudgetAndFailures(t *testing.T) {
	b := budget{limit: 2}
	if !b.take() || !b.take() || b.take() || !b.spent() {
		t.Fatal("budget of 2")
	}
	var none budget
	for i := 0; i < 5; i++ {
		if !none.take() || none.spent() {
			t.Fatal("unlimited budget")
		}
	}
	kinds := map[string]int64{"b": 2, "a": 2, "c": 5}
	if got := strings.Join(topFailures(kinds), ","); got != "c,a,b" {
		t.Fatalf("topFailures order %s", got)
	}
	if newPacer(0) != nil {
		t.Fatal("rate 0 must not pace")
	}
}

func TestParseCPUSeconds(t *testing.T) {
	text := "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
		"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total_extra 5\nprocess_cpu_seconds_total 12.5\n"
	v, err := parseCPUSeconds(bufio.NewScanner(strings.NewReader(text)))
	if err != nil || v != 12.5 {
		t.Fatalf("got %v, %v", v, err)
	}
	if _, err := parseCPUSeconds(bufio.NewScanner(strings.NewReader("go_goroutines 3\n"))); err == nil {
		t.Fatal("missing metric: no error")
	}
}
