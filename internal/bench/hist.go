package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram in the spirit of HDR
// histograms: values below 2*subCount are counted exactly; above that every
// power-of-two range is split into subCount equal buckets, so any recorded
// value is reported with a relative error below 1/subCount (under 0.8%).
// The exact minimum, maximum and sum are kept beside the buckets.
//
// A Histogram is not safe for concurrent use; Recorder adds a lock.
type Histogram struct {
	counts []uint64
	n      uint64
	min    uint64
	max    uint64
	sum    float64
}

const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits // linear buckets per power of two
	// Buckets for every uint64: 2*subCount exact ones, then subCount per
	// remaining power of two (shift 1 .. 64-histSubBits-1).
	histBuckets = 2*histSubCount + (64-histSubBits-1)*histSubCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets), min: math.MaxUint64}
}

// bucketOf returns the bucket index holding v.
func bucketOf(v uint64) int {
	if v < 2*histSubCount {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1) // >= 1
	top := v >> uint(shift)                    // in [subCount, 2*subCount)
	return 2*histSubCount + (shift-1)*histSubCount + int(top-histSubCount)
}

// bucketRange returns the smallest and largest value that land in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*histSubCount {
		return uint64(i), uint64(i)
	}
	j := i - 2*histSubCount
	shift := uint(j/histSubCount + 1)
	top := uint64(j%histSubCount + histSubCount)
	lo = top << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one value.
func (h *Histogram) Record(v uint64) {
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// RecordDuration adds a duration in nanoseconds (negative counts as 0).
func (h *Histogram) RecordDuration(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.Record(uint64(d))
}

// Count is how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest recorded value (0 when empty).
func (h *Histogram) Min() uint64 {
	if h.n == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value, exact.
func (h *Histogram) Max() uint64 { return h.max }

// Mean is the exact arithmetic mean (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1] by the nearest-rank
// rule: the value of rank ceil(q*n) in sorted order (rank 1 for q = 0). The
// answer is the largest value of that rank's bucket, clamped to the exact
// min and max, so it never understates a latency and overstates it by less
// than 1/128.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset empties the histogram, keeping its memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxUint64, 0
}

// Latencies are the summary figures of a latency histogram in milliseconds.
type Latencies struct {
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// Summary reads p50, p90, p95, p99, p99.9, max and mean from a histogram of
// nanosecond values.
func (h *Histogram) Summary() Latencies {
	ms := func(ns uint64) float64 { return float64(ns) / 1e6 }
	return Latencies{
		P50Ms:  ms(h.Quantile(0.50)),
		P90Ms:  ms(h.Quantile(0.90)),
		P95Ms:  ms(h.Quantile(0.95)),
		P99Ms:  ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)),
		MaxMs:  ms(h.Max()),
		MeanMs: h.Mean() / 1e6,
	}
}
