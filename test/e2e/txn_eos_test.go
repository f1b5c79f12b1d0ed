package e2e

// The exactly-once acceptance test: franz-go GroupTransactSession processors
// (test/e2e/txnproc, separate processes) copy an input topic of 100,000
// records to an output topic while they are killed with SIGKILL and
// restarted, and the broker is killed (-9) and restarted once. In the end
// the output, read with read_committed, holds every input record exactly
// once and nothing else. The processors live through the broker's crash
// (it restarts on the same port).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// eosProc is one processor process (one transactional id); it is started
// again under the same id after each kill.
type eosProc struct {
	name   string
	log    string // all incarnations append here
	cmd    *exec.Cmd
	exited chan struct{}
	static bool // a static group member (KIP-345): a restart keeps its partitions
	killed bool // by the test: an exit is expected
	starts int
}

type eosProcs struct {
	t     *testing.T
	bin   string
	dir   string
	addr  string
	group string
	in    string
	out   string
	procs []*eosProc
	mu    sync.Mutex
}

func (ps *eosProcs) start(p *eosProc) {
	ps.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		ps.t.Fatal(err)
	}
	fmt.Fprintf(f, "===== start %d against %s\n", p.starts, ps.addr)
	instance := ""
	if p.static {
		instance = p.name
	}
	cmd := exec.Command(ps.bin, "-brokers", ps.addr, "-txn-id", p.name, "-instance", instance, "-group", ps.group,
		"-in", ps.in, "-out", ps.out, "-max-poll", "100", "-txn-delay", "20ms")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		ps.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }()
	ps.mu.Lock()
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.starts++
	ps.mu.Unlock()
}

func (ps *eosProcs) kill(p *eosProc) {
	ps.mu.Lock()
	p.killed = true
	cmd, exited := p.cmd, p.exited
	ps.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// crashed returns the processors that exited without being killed.
func (ps *eosProcs) crashed() []*eosProc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []*eosProc
	for _, p := range ps.procs {
		select {
		case <-p.exited:
			if !p.killed {
				out = append(out, p)
			}
		default:
		}
	}
	return out
}

func (ps *eosProcs) logTail(p *eosProc, n int) string {
	raw, _ := os.ReadFile(p.log)
	return tail(string(raw), n)
}

func TestTxnExactlyOnceChaos(t *testing.T) {
	t.Parallel()
	const (
		total      = 100_000
		partitions = 4
		in         = "eos-in"
		out        = "eos-out"
		group      = "eos-group"
	)
	dir := t.TempDir()
	bin := filepath.Join(dir, "txnproc")
	if outb, err := exec.Command("go", "build", "-o", bin, "./txnproc").CombinedOutput(); err != nil {
		t.Fatalf("building txnproc: %v\n%s", err, outb)
	}

	b := StartBroker(t)
	adm := kadm.NewClient(b.Client(t))
	clientsCreateTopic(t, adm, in, partitions, nil)
	clientsCreateTopic(t, adm, out, partitions, nil)

	// The input: unique values, partition i % partitions.
	start := time.Now()
	ctx := Ctx(t, 3*time.Minute)
	prod := b.Client(t, kgo.DefaultProduceTopic(in), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(total))
	var perr error
	var perrMu sync.Mutex
	for i := 0; i < total; i++ {
		prod.Produce(ctx, &kgo.Record{Partition: int32(i % partitions), Value: fmt.Appendf(nil, "in-%06d", i)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					perrMu.Lock()
					perr = err
					perrMu.Unlock()
				}
			})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatalf("producing the input: %v", perr)
	}
	prod.Close()
	inEnd := endOffsets(t, b.Client(t), in, partitions)
	var inTotal int64
	for _, o := range inEnd {
		inTotal += o
	}
	if inTotal != total {
		t.Fatalf("input holds %d records, want %d", inTotal, total)
	}
	t.Logf("input produced in %v", time.Since(start))

	ps := &eosProcs{t: t, bin: bin, dir: dir, addr: b.Addr, group: group, in: in, out: out}
	// eos-a is a static member: its restarts rejoin without a rebalance.
	// eos-b is dynamic: its restarts move partitions between the two
	// (once its old member's session timed out) while eos-a is mid-
	// transaction.
	ps.procs = []*eosProc{
		{name: "eos-a", static: true, log: filepath.Join(dir, "eos-a.log")},
		{name: "eos-b", log: filepath.Join(dir, "eos-b.log")},
	}
	t.Cleanup(func() {
		for _, p := range ps.procs {
			ps.kill(p)
		}
		if t.Failed() {
			for _, p := range ps.procs {
				t.Logf("processor %s log tail:\n%s", p.name, ps.logTail(p, 60))
			}
		}
	})
	for _, p := range ps.procs {
		ps.start(p)
	}

	// committed sums the group's committed offsets of the input.
	committed := func(adm *kadm.Client) (int64, error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(cctx, group)
		if err != nil {
			return 0, err
		}
		if err := offs.Error(); err != nil {
			return 0, err
		}
		var sum int64
		for p := int32(0); p < partitions; p++ {
			if o, ok := offs.Lookup(in, p); ok && o.At > 0 {
				sum += o.At
			}
		}
		return sum, nil
	}

	// The chaos: kill a random processor at these fractions of the
	// progress (jittered, and a random moment after the threshold so the
	// kill lands mid-transaction); the broker once.
	type event struct {
		at     float64
		broker bool
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	jitter := func(f float64) float64 { return f + (rng.Float64()-0.5)*0.04 }
	events := []event{{jitter(0.08), false}, {jitter(0.2), false}, {jitter(0.38), true}, {jitter(0.55), false}, {jitter(0.7), false}, {jitter(0.82), false}}
	kills, brokerKills, crashes := 0, 0, 0
	deadline := time.Now().Add(100 * time.Second)
	var progress int64
	lastLog := time.Now()
	for {
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets reached %d of %d by the deadline (%d processor kills, %d broker kills)", progress, total, kills, brokerKills)
		}
		sum, err := committed(adm)
		if err == nil {
			progress = sum
		}
		if progress >= total {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			t.Logf("progress %d/%d (last offset fetch error: %v)", progress, total, err)
			lastLog = time.Now()
		}
		for _, p := range ps.crashed() {
			crashes++
			t.Logf("processor %s exited by itself; restarting it. Log tail:\n%s", p.name, ps.logTail(p, 15))
			ps.start(p)
		}
		if len(events) > 0 && float64(progress) >= events[0].at*total {
			ev := events[0]
			events = events[1:]
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			if ev.broker {
				// The broker comes back on the same port, so the
				// processors live through its crash: their open
				// transactions are aborted under them.
				t.Logf("progress %d/%d: kill -9 the broker", progress, total)
				b.Kill()
				if logs := b.Logs(); strings.Contains(logs, "DATA RACE") { // CHRONIK_E2E_RACE
					t.Errorf("the broker reported a data race before its kill:\n%s", tail(logs, 200))
				}
				brokerKills++
				_, port, _ := strings.Cut(b.Addr, ":")
				b = StartBrokerIn(t, b.DataDir, "--kafka-port", port)
				adm = kadm.NewClient(b.Client(t))
			} else {
				p := ps.procs[rng.IntN(len(ps.procs))]
				t.Logf("progress %d/%d: kill -9 processor %s", progress, total, p.name)
				ps.kill(p)
				kills++
				ps.start(p)
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d input records committed after %v: %d processor kills, %d broker kill, %d processor self-exits",
		total, time.Since(start), kills, brokerKills, crashes)
	if kills < 3 || brokerKills < 1 {
		t.Errorf("the chaos did not happen: %d processor kills, %d broker kills (the processors ran ahead of it)", kills, brokerKills)
	}
	for _, p := range ps.procs {
		ps.kill(p)
	}

	// No transaction stays open on the output once the processors are gone:
	// the last incarnations ended theirs.
	CheckFor(t, 30*time.Second, func() error {
		hwm, err := adm.ListEndOffsets(ctx, out)
		if err != nil {
			return err
		}
		lso, err := adm.ListCommittedOffsets(ctx, out)
		if err != nil {
			return err
		}
		for p := int32(0); p < partitions; p++ {
			h, _ := hwm.Lookup(out, p)
			l, _ := lso.Lookup(out, p)
			if h.Err != nil || l.Err != nil || h.Offset != l.Offset {
				return fmt.Errorf("%s-%d: hwm %d (%v) lso %d (%v)", out, p, h.Offset, h.Err, l.Offset, l.Err)
			}
		}
		return nil
	})

	got := eosReadAll(t, b, out, kgo.ReadCommitted(), total)
	var missing, dups, extra, misplaced []string
	nMissing, nDup := 0, 0
	for i := 0; i < total; i++ {
		v := fmt.Sprintf("out-in-%06d", i)
		rs := got[v]
		switch {
		case len(rs) == 0:
			nMissing++
			if len(missing) < 10 {
				missing = append(missing, v)
			}
		case len(rs) > 1:
			nDup++
			if len(dups) < 10 {
				dups = append(dups, fmt.Sprintf("%s x%d at %v", v, len(rs), rs))
			}
		}
		for _, r := range rs {
			if r.partition != int32(i%partitions) && len(misplaced) < 10 {
				misplaced = append(misplaced, fmt.Sprintf("%s in partition %d", v, r.partition))
			}
		}
		delete(got, v)
	}
	for v, rs := range got {
		if len(extra) < 10 {
			extra = append(extra, fmt.Sprintf("%q at %v", v, rs))
		}
	}
	if nMissing > 0 || nDup > 0 || len(got) > 0 || len(misplaced) > 0 {
		t.Errorf("read_committed output is not exactly once: %d missing (e.g. %v), %d duplicated (e.g. %v), %d unexpected values (e.g. %v), misplaced: %v",
			nMissing, missing, nDup, dups, len(got), extra, misplaced)
	}

	all := eosReadAll(t, b, out, kgo.ReadUncommitted(), total)
	n := 0
	for _, rs := range all {
		n += len(rs)
	}
	t.Logf("read_uncommitted: %d records, %d distinct values (%d from aborted transactions)", n, len(all), n-total)
}

type eosPos struct {
	partition int32
	offset    int64
}

func (p eosPos) String() string { return fmt.Sprintf("%d@%d", p.partition, p.offset) }

// eosReadAll reads topic from the start with isolation level iso until at
// least want records arrived and nothing more comes for two seconds (or 30 s
// pass), and returns where each value was seen.
func eosReadAll(t *testing.T, b *Broker, topic string, iso kgo.IsolationLevel, want int) map[string][]eosPos {
	t.Helper()
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	got := map[string][]eosPos{}
	n := 0
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Now()
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(tp string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("read %s-%d: %v", tp, p, err)
			}
		})
		k := 0
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)] = append(got[string(r.Value)], eosPos{r.Partition, r.Offset})
			k++
		})
		n += k
		if k > 0 {
			quiet = time.Now()
		} else if n >= want && time.Since(quiet) > 2*time.Second {
			break
		}
	}
	if n < want {
		t.Logf("read %d records of %s by the deadline, %d wanted", n, topic, want)
	}
	return got
}

// TestTxnBrokerRestartTornTxn: a transactional producer lives through a
// kill -9 of the broker (it comes back on the same port) in the middle of a
// transaction. The transaction stays open across the restart, as in Kafka:
// the producer carries on, commits, and read_committed readers see all of
// it, the record from before the restart and the one after. (It used to be
// aborted at the restart; the producer then had to be fenced so that it
// could not commit the second half alone, a torn transaction.)
func TestTxnBrokerRestartTornTxn(t *testing.T) {
	t.Parallel()
	b, _ := txnSetup(t, "txn-torn")
	ctx := Ctx(t, 60*time.Second)
	cl := b.Client(t, kgo.TransactionalID("torn"), kgo.DefaultProduceTopic("txn-torn"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(20*time.Second))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.Kill()
	_, port, _ := strings.Cut(b.Addr, ":")
	b = StartBrokerIn(t, b.DataDir, "--kafka-port", port)
	perr := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("after")}).FirstErr()
	eerr := cl.EndTransaction(ctx, kgo.TryCommit)
	t.Logf("after the restart: produce %v, commit %v", perr, eerr)
	seen := eosReadAll(t, b, "txn-torn", kgo.ReadCommitted(), 0)
	var got []string
	for v := range seen {
		got = append(got, v)
	}
	if perr != nil || eerr != nil {
		t.Fatalf("the transaction did not carry on across the restart: produce %v, commit %v", perr, eerr)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"after", "before"}) {
		t.Fatalf("read_committed sees %v, want both halves of the committed transaction", got)
	}
}
