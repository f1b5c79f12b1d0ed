package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrGroupsUnsupported is returned when --consumer-group is set but the
// broker does not advertise the consumer-group APIs.
var ErrGroupsUnsupported = errors.New("bench: broker does not support consumer groups")

// Bounds on waiting, so a stuck broker ends a run with failures instead of
// hanging it.
const (
	deliveryTimeout = 30 * time.Second // a produce not acknowledged by then fails
	drainTimeout    = 10 * time.Second // round-trip: wait for the last records to be consumed
	setupTimeout    = 30 * time.Second // topic creation and metadata
	failureBackoff  = 10 * time.Millisecond
)

// run is the state of one Run.
type run struct {
	cfg   Config
	out   io.Writer
	st    *stats
	phase atomic.Int32
	runID uint64
	start time.Time

	measureStart   time.Time // written before phase becomes phaseMeasure
	measureStartNs atomic.Int64
	stopTime       atomic.Int64 // Unix ns when the measured phase ended
	budget         budget
	val            *validator
	acked          atomic.Int64 // produce acknowledgements in this run
	sent           atomic.Int64 // produce attempts in this run
	partitions     []int32      // of the first (usually only) topic
	partitionCount int          // over all topics of the run
	acks           *ackCounts
	consumers      atomic.Int32 // consumer clients started
	cut            atomic.Int64 // operations cut short by cancelling the run
}

// Run performs one load run described by cfg, printing progress and a
// summary to out (unless cfg.Quiet), writing --csv-output/--json-output, and
// returning the result. Failures of individual operations are counted in
// the result, not returned as an error; an error means the run could not be
// done at all.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Quiet {
		out = io.Discard
	}
	r := &run{cfg: cfg, out: out, st: newStats(), runID: rand.Uint64() | 1, start: time.Now()}
	r.budget.limit = cfg.Messages
	if cfg.AckedOutput != "" {
		r.acks = &ackCounts{n: map[ackKey]int64{}}
	}
	initBodies()

	admCl, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("bench: client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := r.setup(ctx, adm); err != nil {
		return nil, err
	}
	if cfg.Validate && cfg.Mode == ModeConsume {
		r.val = newValidator(0)
	}
	if cfg.Mode == ModeRoundTrip {
		r.val = newValidator(r.runID)
	}

	res, err := r.execute(ctx, adm)
	if err != nil {
		return nil, err
	}
	if cfg.DeleteTopicAfter {
		dctx, cancel := context.WithTimeout(ctx, setupTimeout)
		resps, err := adm.DeleteTopics(dctx, cfg.topics()...)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			fmt.Fprintf(out, "warning: deleting topic %s: %v\n", cfg.Topic, err)
		}
		cancel()
	}
	res.WriteText(out)
	if err := res.WriteFiles(cfg.CSVOutput, cfg.JSONOutput); err != nil {
		return res, err
	}
	if r.acks != nil {
		if err := r.acks.write(cfg.AckedOutput); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *run) baseOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Bootstrap...),
		kgo.ClientID("chronik-bench"),
		kgo.AllowAutoTopicCreation(),
		kgo.RetryTimeout(setupTimeout),
	}
}

// setup creates the topics when asked, waits until every partition has a
// leader, and checks consumer-group support when a group is requested.
func (r *run) setup(ctx context.Context, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	topics := r.cfg.topics()
	if r.cfg.CreateTopic {
		resps, err := adm.CreateTopics(ctx, r.cfg.Partitions, r.cfg.ReplicationFactor, nil, topics...)
		if err == nil {
			err = resps.Error()
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("bench: creating topics %s: %w", strings.Join(topics, ","), err)
		}
		if err != nil { // some exist: the others must have been created
			for _, t := range resps {
				if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
					return fmt.Errorf("bench: creating topic %s: %w", t.Topic, t.Err)
				}
			}
		}
	}
	var lastErr error
	for {
		err := r.readPartitions(ctx, adm, topics)
		if err == nil {
			break
		}
		lastErr = err
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return fmt.Errorf("bench: topics %s not ready within %v: %w", strings.Join(topics, ","), setupTimeout, lastErr)
		}
	}
	if r.cfg.ConsumerGroup != "" {
		return checkGroupSupport(ctx, adm)
	}
	return nil
}

// readPartitions fills r.partitions (of the first topic) and
// r.partitionCount from Metadata, or says what is not ready.
func (r *run) readPartitions(ctx context.Context, adm *kadm.Client, topics []string) error {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return err
	}
	r.partitionCount = 0
	for i, name := range topics {
		td, ok := md.Topics[name]
		switch {
		case !ok:
			return fmt.Errorf("topic %s missing from metadata", name)
		case td.Err != nil:
			return fmt.Errorf("topic %s: %w", name, td.Err)
		case len(td.Partitions) == 0:
			return fmt.Errorf("topic %s has no partitions", name)
		}
		if i == 0 {
			r.partitions = r.partitions[:0]
		}
		for _, p := range td.Partitions.Sorted() {
			if p.Leader < 0 || p.Err != nil {
				return fmt.Errorf("partition %s-%d has no leader", name, p.Partition)
			}
			if i == 0 {
				r.partitions = append(r.partitions, p.Partition)
			}
			r.partitionCount++
		}
	}
	return nil
}

// checkGroupSupport fails unless every broker advertises FindCoordinator
// (10), JoinGroup (11), SyncGroup (14) and Heartbeat (12).
func checkGroupSupport(ctx context.Context, adm *kadm.Client) error {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return fmt.Errorf("bench: asking for API versions: %w", err)
	}
	var missing error
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			missing = fmt.Errorf("bench: API versions from broker %d: %w", v.NodeID, v.Err)
			return
		}
		for _, key := range []int16{10, 11, 12, 14} {
			if _, ok := v.KeyMaxVersion(key); !ok {
				missing = fmt.Errorf("%w: broker %d does not advertise API key %d; "+
					"leave --consumer-group empty to consume partitions directly", ErrGroupsUnsupported, v.NodeID, key)
				return
			}
		}
	})
	return missing
}

// execute runs the timeline: warmup, measured phase, stop, drain.
func (r *run) execute(ctx context.Context, adm *kadm.Client) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.Warmup == 0 {
		r.beginMeasure() // before the first record, so the budget sees every one
	}
	workers, err := r.startWorkers(ctx, adm)
	if err != nil {
		return nil, err
	}
	defer workers.close()

	cpu0 := processCPU()
	broker0, brokerErr := r.scrapeBroker(ctx)
	progressDone := r.progress(ctx, workers.done)

	// The timeline: warmup, then the measured phase until the duration
	// ends, the record budget is spent, or every worker has finished.
	if r.cfg.Warmup > 0 {
		select {
		case <-time.After(r.cfg.Warmup):
		case <-workers.done:
		case <-ctx.Done():
		}
		cpu0 = processCPU()
		broker0, brokerErr = r.scrapeBroker(ctx)
		r.beginMeasure()
	}
	var deadline <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(r.cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-deadline:
	case <-workers.done:
	case <-ctx.Done():
	}
	r.endMeasure()
	workers.stop()
	// Workers finish their in-flight operation (bounded by the delivery
	// timeout) and consumers drain; past that, cancel everything.
	select {
	case <-workers.done:
	case <-time.After(deliveryTimeout + drainTimeout + 5*time.Second):
	case <-ctx.Done(): // interrupted
	}
	cancel()
	// kgo goes on retrying a record it may already have sent (idempotence)
	// whatever its context says, so against a dead broker a sender would
	// wait forever: closing the clients fails what is left.
	select {
	case <-workers.done:
	case <-time.After(5 * time.Second):
		workers.close()
		<-workers.done
	}
	cpu1 := processCPU()
	broker1, brokerErr1 := r.scrapeBroker(context.WithoutCancel(ctx))
	<-progressDone
	res := r.result(cpu1.sub(cpu0))
	if r.cfg.MetricsURL != "" {
		if brokerErr != nil || brokerErr1 != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("broker CPU not measured: %v", errors.Join(brokerErr, brokerErr1)))
		} else {
			v := broker1 - broker0
			res.BrokerCPUSec = &v
		}
	}
	return res, nil
}

func (r *run) beginMeasure() {
	now := time.Now()
	r.measureStart = now
	r.measureStartNs.Store(now.UnixNano())
	r.phase.Store(phaseMeasure)
}

func (r *run) endMeasure() {
	if r.phase.Load() != phaseStop {
		r.stopTime.Store(time.Now().UnixNano())
		r.phase.Store(phaseStop)
	}
}

func (r *run) measuring() bool { return r.phase.Load() == phaseMeasure }
func (r *run) stopping() bool  { return r.phase.Load() == phaseStop }

func (r *run) scrapeBroker(ctx context.Context) (float64, error) {
	if r.cfg.MetricsURL == "" {
		return 0, nil
	}
	return scrapeCPUSeconds(ctx, r.cfg.MetricsURL)
}

// progress prints a line every report interval until done closes.
func (r *run) progress(ctx context.Context, done <-chan struct{}) <-chan struct{} {
	finished := make(chan struct{})
	if r.cfg.ReportInterval <= 0 {
		close(finished)
		return finished
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(r.cfg.ReportInterval)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n, b, lat, failures := r.st.intervalSnapshot()
				secs := now.Sub(last).Seconds()
				last = now
				label := "measure"
				switch r.phase.Load() {
				case phaseWarmup:
					label = "warmup"
				case phaseStop:
					label = "drain"
				}
				fmt.Fprintf(r.out, "[%7.1fs] %-7s %10.0f msg/s %9.2f MB/s  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms  failures %d\n",
					now.Sub(r.start).Seconds(), label, float64(n)/secs, float64(b)/secs/(1<<20),
					lat.P50Ms, lat.P99Ms, lat.MaxMs, failures)
			}
		}
	}()
	return finished
}

// workerSet is the running workers of a run.
type workerSet struct {
	done    chan struct{} // closed when every worker returned
	stopFns []func()
	clients []*kgo.Client
	once    sync.Once
	// closeOnce: close runs when a stuck run is cut short and again deferred.
	closeOnce sync.Once
}

func (w *workerSet) stop() {
	w.once.Do(func() {
		for _, f := range w.stopFns {
			f()
		}
	})
}

func (w *workerSet) close() {
	w.closeOnce.Do(func() {
		for _, cl := range w.clients {
			cl.Close()
		}
	})
}

func (r *run) startWorkers(ctx context.Context, adm *kadm.Client) (*workerSet, error) {
	switch r.cfg.Mode {
	case ModeProduce:
		if r.cfg.PrebuiltBatches {
			return r.startRawProducers(ctx)
		}
		return r.startProducers(ctx, nil)
	case ModeConsume:
		if r.cfg.RawFetch {
			return r.startRawConsumers(ctx)
		}
		return r.startConsumers(ctx, adm, nil)
	case ModeMetadata:
		return r.startMetadata(ctx)
	}
	// Round-trip: consumers first (positioned at the current end), then
	// producers; consumers stop once the producers are done and every
	// acknowledged record has been seen, or drainTimeout later.
	producersDone := make(chan struct{})
	cons, err := r.startConsumers(ctx, adm, producersDone)
	if err != nil {
		return nil, err
	}
	prods, err := r.startProducers(ctx, producersDone)
	if err != nil {
		cons.stop()
		cons.close()
		return nil, err
	}
	all := &workerSet{done: make(chan struct{})}
	all.stopFns = append(prods.stopFns, cons.stopFns...)
	all.clients = append(prods.clients, cons.clients...)
	go func() {
		<-prods.done
		close(producersDone)
		<-cons.done
		close(all.done)
	}()
	return all, nil
}
