package bench

import "testing"

// scanBatches counts the records of complete batches and finds the offset
// after the last one, ignoring a partial batch at the end.
func TestScanBatches(t *testing.T) {
	b1, n1 := buildRawBatch(100, 2000)
	b2, n2 := buildRawBatch(100, 1000)
	b2[0], b2[7] = 0, byte(n1) // base offset n1
	recs := append(append(append([]byte(nil), b1...), b2...), b1[:70]...)
	records, next := scanBatches(recs)
	if records != int64(n1+n2) || next != int64(n1+n2) {
		t.Fatalf("records %d next %d, want %d and %d", records, next, n1+n2, n1+n2)
	}
	if r, n := scanBatches(nil); r != 0 || n != 0 {
		t.Fatalf("empty: %d %d", r, n)
	}
}

func TestRawFetchFlags(t *testing.T) {
	env := func(string) string { return "" }
	if _, err := ParseArgs([]string{"--mode", "consume", "--raw-fetch", "-c", "8"}, env); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseArgs([]string{"--mode", "produce", "--raw-fetch"}, env); err == nil {
		t.Fatal("--raw-fetch accepted in produce mode")
	}
}
