package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumerOpts positions consumer i of n. Without a group, consumer i reads
// the partitions p with p%n == i directly (no group protocol: chronik has no
// consumer groups yet). Consume mode starts at the log start; round-trip
// starts at the end offsets listed before any producer starts.
func (r *run) consumerOpts(i, n int, ends kadm.ListedOffsets) []kgo.Opt {
	opts := append(r.baseOpts(), kgo.FetchMaxWait(500*time.Millisecond))
	if r.cfg.ConsumerGroup != "" {
		reset := kgo.NewOffset().AtStart()
		if r.cfg.Mode == ModeRoundTrip {
			// Only for partitions created after startGroupAt listed the
			// ends; records of earlier runs are skipped by run id.
			reset = kgo.NewOffset().AfterMilli(r.start.Add(-time.Second).UnixMilli())
		}
		return append(opts, kgo.ConsumerGroup(r.cfg.ConsumerGroup), kgo.ConsumeTopics(r.cfg.Topic),
			kgo.ConsumeResetOffset(reset))
	}
	parts := map[int32]kgo.Offset{}
	for j, p := range r.partitions {
		if j%n != i {
			continue
		}
		off := kgo.NewOffset().AtStart()
		if r.cfg.Mode == ModeRoundTrip {
			lo, _ := ends.Lookup(r.cfg.Topic, p)
			off = kgo.NewOffset().At(lo.Offset)
		}
		parts[p] = off
	}
	return append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: parts}))
}

// startGroupAt commits ends (listed before any producer starts) for every
// partition the round-trip group has no committed offset for, so its members
// start exactly there. A reset by timestamp instead races the first records:
// a member that looks a partition up before its first record arrives is told
// "no record at or after that time" and starts at the log end a moment later,
// past the records produced in between (seen as about one missing record per
// producer, against every broker).
func (r *run) startGroupAt(ctx context.Context, adm *kadm.Client, ends kadm.ListedOffsets) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	have, err := adm.FetchOffsets(ctx, r.cfg.ConsumerGroup)
	if errors.Is(err, kerr.GroupIDNotFound) { // a new group, as some brokers say
		have, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("bench: fetching the offsets of group %s: %w", r.cfg.ConsumerGroup, err)
	}
	var commit kadm.Offsets
	ends.Each(func(o kadm.ListedOffset) {
		if _, ok := have.Lookup(o.Topic, o.Partition); !ok {
			commit.AddOffset(o.Topic, o.Partition, o.Offset, -1)
		}
	})
	if len(commit) == 0 {
		return nil
	}
	resp, err := adm.CommitOffsets(ctx, r.cfg.ConsumerGroup, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("bench: committing the start offsets of group %s: %w", r.cfg.ConsumerGroup, err)
	}
	return nil
}

// startConsumers starts the consumers. producersDone is nil in consume mode;
// in round-trip mode consumers keep reading after it closes until every
// acknowledged record was seen or drainTimeout passed.
func (r *run) startConsumers(ctx context.Context, adm *kadm.Client, producersDone chan struct{}) (*workerSet, error) {
	n := r.cfg.Concurrency
	var ends kadm.ListedOffsets
	if r.cfg.Mode == ModeRoundTrip {
		var err error
		lctx, cancel := context.WithTimeout(ctx, setupTimeout)
		ends, err = adm.ListEndOffsets(lctx, r.cfg.Topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("bench: listing end offsets of %s: %w", r.cfg.Topic, err)
		}
		if r.cfg.ConsumerGroup != "" {
			if err := r.startGroupAt(ctx, adm, ends); err != nil {
				return nil, err
			}
		}
	}
	if r.cfg.ConsumerGroup == "" {
		n = min(n, len(r.partitions)) // more consumers than partitions would idle
	}
	r.consumers.Store(int32(n))
	ws := &workerSet{done: make(chan struct{})}
	pollCtx, cancelPoll := context.WithCancel(ctx)
	for i := 0; i < n; i++ {
		cl, err := kgo.NewClient(r.consumerOpts(i, n, ends)...)
		if err != nil {
			cancelPoll()
			ws.close()
			return nil, fmt.Errorf("bench: consumer client: %w", err)
		}
		ws.clients = append(ws.clients, cl)
	}
	if producersDone == nil {
		ws.stopFns = append(ws.stopFns, cancelPoll)
	} else {
		go r.drain(pollCtx, cancelPoll, producersDone)
	}
	var wg sync.WaitGroup
	for _, cl := range ws.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.consumer(pollCtx, cancelPoll, cl)
		}()
	}
	go func() { wg.Wait(); cancelPoll(); close(ws.done) }()
	return ws, nil
}

// drain ends round-trip consumption once the producers are done and every
// acknowledged record has been consumed, or drainTimeout after they are done.
func (r *run) drain(ctx context.Context, cancel context.CancelFunc, producersDone chan struct{}) {
	select {
	case <-producersDone:
	case <-ctx.Done():
		return
	}
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) {
		if r.val.matchedCount() >= r.acked.Load() {
			break
		}
		if !sleepUntil(ctx, time.Now().Add(5*time.Millisecond)) {
			return
		}
	}
	cancel()
}

func (r *run) consumer(ctx context.Context, cancel context.CancelFunc, cl *kgo.Client) {
	roundTrip := r.cfg.Mode == ModeRoundTrip
	for ctx.Err() == nil {
		t0 := time.Now()
		fs := cl.PollFetches(ctx)
		now := time.Now()
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				r.st.fail(fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		measured := r.measuring()
		if !roundTrip {
			r.st.addLatency(measured, now.Sub(t0))
		}
		var n, b int64
		stop := false
		fs.EachRecord(func(rec *kgo.Record) {
			if stop {
				return
			}
			if roundTrip {
				h, ours := r.val.check(rec.Partition, rec.Value)
				if ours {
					inMeasure := h.SentNs >= r.measureStartNs.Load() && r.measureStartNs.Load() != 0
					r.st.add(inMeasure, now.Sub(time.Unix(0, h.SentNs)), 1, int64(len(rec.Value)), now)
				}
				return
			}
			if measured && !r.budget.take() {
				stop = true
				return
			}
			if r.val != nil {
				r.val.check(rec.Partition, rec.Value)
			}
			n++
			b += int64(len(rec.Value))
		})
		if !roundTrip {
			r.st.addCount(measured, n, b, now)
		}
		if stop || r.budget.spent() {
			cancel() // the record budget is spent: every consumer stops
			return
		}
	}
}
