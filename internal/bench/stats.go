package bench

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run phases, in order.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// stats collects what the workers of one run observe. Workers call add for
// each completed operation; a record counts as measured when its operation
// started in the measured phase (the caller decides and passes it).
type stats struct {
	mu              sync.Mutex
	hist            *Histogram // measured latencies (ns)
	interval        *Histogram // since the last progress line, warmup included
	records         int64      // measured, successful
	bytes           int64
	intervalRecords int64
	intervalBytes   int64
	warmupRecords   int64
	failures        int64 // measured or not: a failure is never hidden
	failureKinds    map[string]int64
	lastDone        time.Time // completion of the last measured operation
}

func newStats() *stats {
	return &stats{hist: NewHistogram(), interval: NewHistogram(), failureKinds: map[string]int64{}}
}

// add records one completed operation carrying n records and b bytes.
func (s *stats) add(measured bool, latency time.Duration, n, b int64, done time.Time) {
	s.mu.Lock()
	s.interval.RecordDuration(latency)
	s.intervalRecords += n
	s.intervalBytes += b
	if measured {
		s.hist.RecordDuration(latency)
		s.records += n
		s.bytes += b
		if done.After(s.lastDone) {
			s.lastDone = done
		}
	} else {
		s.warmupRecords += n
	}
	s.mu.Unlock()
}

// addCount records n records and b bytes without a latency sample (consumers
// sample latency per poll, not per record).
func (s *stats) addCount(measured bool, n, b int64, done time.Time) {
	s.mu.Lock()
	s.intervalRecords += n
	s.intervalBytes += b
	if measured {
		s.records += n
		s.bytes += b
		if done.After(s.lastDone) {
			s.lastDone = done
		}
	} else {
		s.warmupRecords += n
	}
	s.mu.Unlock()
}

// addLatency records one latency sample without counting records.
func (s *stats) addLatency(measured bool, latency time.Duration) {
	s.mu.Lock()
	s.interval.RecordDuration(latency)
	if measured {
		s.hist.RecordDuration(latency)
	}
	s.mu.Unlock()
}

// fail counts one failed operation, grouped by its error text.
func (s *stats) fail(err error) {
	kind := failureKind(err)
	s.mu.Lock()
	s.failures++
	if len(s.failureKinds) < 64 || s.failureKinds[kind] > 0 {
		s.failureKinds[kind]++
	} else {
		s.failureKinds["other errors"]++
	}
	s.mu.Unlock()
}

func failureKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160]
	}
	return strings.TrimSpace(msg)
}

// intervalSnapshot returns and resets the interval counters.
func (s *stats) intervalSnapshot() (records, bytes int64, lat Latencies, failures int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	records, bytes, lat, failures = s.intervalRecords, s.intervalBytes, s.interval.Summary(), s.failures
	s.intervalRecords, s.intervalBytes = 0, 0
	s.interval.Reset()
	return
}

// topFailures lists failure kinds, most frequent first.
func topFailures(kinds map[string]int64) []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if kinds[out[i]] != kinds[out[j]] {
			return kinds[out[i]] > kinds[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// pacer spaces operations to a total rate over all workers (nil: no limit).
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(perSec float64) *pacer {
	if perSec <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(float64(time.Second) / perSec)}
}

// wait blocks until the caller's slot; false if ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p == nil {
		return ctx.Err() == nil
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	return sleepUntil(ctx, slot)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Bursty load: every burstPeriod, senders run for the first half and pause
// for the second, all in phase, so the broker sees load arrive in waves.
const burstPeriod = time.Second

// burstGate blocks while the bursty pattern is in its off half.
func burstGate(ctx context.Context, start time.Time) bool {
	into := time.Since(start) % burstPeriod
	if into < burstPeriod/2 {
		return ctx.Err() == nil
	}
	return sleepUntil(ctx, time.Now().Add(burstPeriod-into))
}

// budget hands out at most limit records over all workers (limit 0: none).
type budget struct {
	limit int64
	taken atomic.Int64
}

func (b *budget) take() bool {
	if b.limit == 0 {
		return true
	}
	return b.taken.Add(1) <= b.limit
}

// spent reports whether a limited budget has been handed out entirely.
func (b *budget) spent() bool { return b.limit > 0 && b.taken.Load() >= b.limit }
