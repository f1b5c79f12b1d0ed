package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refQuantile is the nearest-rank quantile of a sorted slice.
func refQuantile(sorted []uint64, q float64) uint64 {
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestBucketsCoverEveryValue(t *testing.T) {
	// Bucket ranges must tile the value space with no gap or overlap.
	var next uint64
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: bucketOf gives %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if hi == math.MaxUint64 {
			if i != histBuckets-1 {
				t.Fatalf("value space ends at bucket %d of %d", i, histBuckets)
			}
			return
		}
		next = hi + 1
	}
	t.Fatalf("buckets end at %d, before MaxUint64", next)
}

func TestQuantilesAgainstSortedReference(t *testing.T) {
	quantiles := []float64{0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1}
	gens := map[string]func(r *rand.Rand) uint64{
		"small-exact": func(r *rand.Rand) uint64 { return r.Uint64N(256) },
		"uniform-ms":  func(r *rand.Rand) uint64 { return 1e6 + r.Uint64N(9e6) },
		"lognormal": func(r *rand.Rand) uint64 {
			return uint64(math.Exp(13 + 1.5*r.NormFloat64()))
		},
		"bimodal": func(r *rand.Rand) uint64 {
			if r.IntN(100) == 0 {
				return 200e6 + r.Uint64N(1e6)
			}
			return 500e3 + r.Uint64N(100e3)
		},
		"huge": func(r *rand.Rand) uint64 { return r.Uint64() },
	}
	for name, gen := range gens {
		for _, n := range []int{1, 2, 7, 100, 10_000, 200_000} {
			r := rand.New(rand.NewPCG(uint64(n), 42))
			h := NewHistogram()
			vals := make([]uint64, n)
			for i := range vals {
				vals[i] = gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(n) || h.Min() != vals[0] || h.Max() != vals[n-1] {
				t.Fatalf("%s n=%d: count/min/max %d/%d/%d, want %d/%d/%d", name, n,
					h.Count(), h.Min(), h.Max(), n, vals[0], vals[n-1])
			}
			for _, q := range quantiles {
				got, want := h.Quantile(q), refQuantile(vals, q)
				// Never below the true value; above by less than 1/128.
				limit := want + want/histSubCount + 1
				if want > math.MaxUint64-want/histSubCount-1 {
					limit = math.MaxUint64
				}
				if got < want || got > limit {
					t.Errorf("%s n=%d q=%v: got %d, reference %d (limit %d)", name, n, q, got, want, limit)
				}
			}
		}
	}
}

func TestExactBelowLinearRange(t *testing.T) {
	h := NewHistogram()
	for v := uint64(0); v < 200; v++ {
		h.Record(v)
	}
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if got, want := h.Quantile(q), uint64(math.Ceil(q*200))-1; got != want {
			t.Errorf("q=%v: got %d, want %d", q, got, want)
		}
	}
}

func TestMergeResetEmpty(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	if a.Quantile(0.5) != 0 || a.Max() != 0 || a.Min() != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram reports non-zero")
	}
	a.Merge(b) // empty into empty
	all := NewHistogram()
	for i := uint64(1); i <= 1000; i++ {
		if i%2 == 0 {
			a.Record(i * 1000)
		} else {
			b.Record(i * 1000)
		}
		all.Record(i * 1000)
	}
	a.Merge(b)
	if a.Count() != 1000 || a.Min() != 1000 || a.Max() != 1_000_000 {
		t.Fatalf("merged count/min/max = %d/%d/%d", a.Count(), a.Min(), a.Max())
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q=%v merged %d, direct %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if math.Abs(a.Mean()-500500) > 1e-6 {
		t.Errorf("mean %v, want 500500", a.Mean())
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.99) != 0 || a.Max() != 0 {
		t.Fatal("reset histogram not empty")
	}
	a.RecordDuration(-5)
	if a.Max() != 0 || a.Count() != 1 {
		t.Fatal("negative duration not recorded as 0")
	}
}

func TestSummaryMilliseconds(t *testing.T) {
	h := NewHistogram()
	for i := 0; i < 1000; i++ {
		h.Record(2e6) // 2 ms
	}
	h.Record(50e6)
	s := h.Summary()
	if s.P50Ms < 2 || s.P50Ms > 2.02 || s.MaxMs != 50 || s.P999Ms < 2 || s.P999Ms > 2.02 {
		t.Fatalf("summary %+v", s)
	}
}
