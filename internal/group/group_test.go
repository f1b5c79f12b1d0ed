package group

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog/statelogtest"
	"github.com/twmb/franz-go/pkg/kerr"
)

// testPartitions is the __consumer_offsets partition count of unit tests:
// small, but more than one so that partition mapping matters.
const testPartitions = 4

func openTest(t *testing.T, dir string, mod func(*Options)) *Coordinator {
	t.Helper()
	opts := Options{DataDir: dir, MinSessionTimeout: 10 * time.Millisecond, Offsets: statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)}
	if mod != nil {
		mod(&opts)
	}
	c, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// checkFor polls fn until it returns nil or timeout passes.
func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func joinReq(group, member string, protos ...string) *JoinRequest {
	r := &JoinRequest{
		Group: group, MemberID: member, ClientID: "c", SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 5 * time.Second, ProtocolType: "consumer", RequireKnownMemberID: true,
	}
	if len(protos) == 0 {
		protos = []string{"range"}
	}
	for _, p := range protos {
		r.Protocols = append(r.Protocols, Protocol{Name: p, Metadata: []byte(member + p)})
	}
	return r
}

func mustJoin(t *testing.T, c *Coordinator, r *JoinRequest) JoinResult {
	t.Helper()
	res, ok := c.Join(r)(ctx(t))
	if !ok {
		t.Fatal("join timed out")
	}
	return res
}

func code(t *testing.T, wait func(context.Context) (int16, bool)) int16 {
	t.Helper()
	v, ok := wait(ctx(t))
	if !ok {
		t.Fatal("timed out")
	}
	return v
}

func want(t *testing.T, what string, got int16, w *kerr.Error) {
	t.Helper()
	var wc int16
	if w != nil {
		wc = w.Code
	}
	if got != wc {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), w)
	}
}

// newMember does the KIP-394 two-step join and returns the assigned id.
func newMember(t *testing.T, c *Coordinator, group string) string {
	t.Helper()
	res := mustJoin(t, c, joinReq(group, ""))
	want(t, "first join", res.Err, kerr.MemberIDRequired)
	if res.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without an id")
	}
	return res.MemberID
}

func TestJoinSyncHeartbeatLeave(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	a, b := newMember(t, c, "g"), newMember(t, c, "g")
	// Both join; the group waits for both pending ids to join.
	wa, wb := c.Join(joinReq("g", a)), c.Join(joinReq("g", b))
	ra, _ := wa(ctx(t))
	rb, _ := wb(ctx(t))
	want(t, "join a", ra.Err, nil)
	want(t, "join b", rb.Err, nil)
	if ra.Generation != 1 || rb.Generation != 1 || ra.Leader != a || rb.Leader != a {
		t.Fatalf("generations %d/%d leaders %s/%s, want 1 and %s", ra.Generation, rb.Generation, ra.Leader, rb.Leader, a)
	}
	if len(ra.Members) != 2 || len(rb.Members) != 0 || string(ra.Members[1].Metadata) != b+"range" {
		t.Fatalf("leader got %d members, follower %d", len(ra.Members), len(rb.Members))
	}
	// The follower's sync waits for the leader's.
	sb := c.Sync(&SyncRequest{Group: "g", MemberID: b, Generation: 1})
	want(t, "heartbeat while completing", code(t, c.Heartbeat("g", MemberRef{MemberID: b}, 1)), nil)
	sa := c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: 1, Assignments: map[string][]byte{a: []byte("A"), b: []byte("B")}})
	resA, _ := sa(ctx(t))
	resB, _ := sb(ctx(t))
	if resA.Err != 0 || resB.Err != 0 || string(resA.Assignment) != "A" || string(resB.Assignment) != "B" || resB.Protocol != "range" {
		t.Fatalf("sync: %+v %+v", resA, resB)
	}
	d, _ := c.Describe("g")(ctx(t))
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	want(t, "heartbeat", code(t, c.Heartbeat("g", MemberRef{MemberID: a}, 1)), nil)
	// b leaves: a must rejoin.
	codes, _ := c.Leave("g", []MemberRef{{MemberID: b}, {MemberID: "ghost"}})(ctx(t))
	want(t, "leave b", codes[0], nil)
	want(t, "leave ghost", codes[1], kerr.UnknownMemberID)
	want(t, "heartbeat after leave", code(t, c.Heartbeat("g", MemberRef{MemberID: a}, 1)), kerr.RebalanceInProgress)
	ra = mustJoin(t, c, joinReq("g", a))
	if ra.Err != 0 || ra.Generation != 2 || len(ra.Members) != 1 {
		t.Fatalf("rejoin: %+v", ra)
	}
	want(t, "old generation", code(t, c.Heartbeat("g", MemberRef{MemberID: a}, 1)), kerr.IllegalGeneration)
	codes, _ = c.Leave("g", []MemberRef{{MemberID: a}})(ctx(t))
	want(t, "leave a", codes[0], nil)
	d, _ = c.Describe("g")(ctx(t))
	if d.State != "Empty" {
		t.Fatalf("after everyone left: %s", d.State)
	}
}

func TestGenerationAndMemberErrors(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	a := newMember(t, c, "g")
	r := mustJoin(t, c, joinReq("g", a))
	want(t, "unknown member join", mustJoin(t, c, joinReq("g", "nobody")).Err, kerr.UnknownMemberID)
	s, _ := c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: r.Generation + 1})(ctx(t))
	want(t, "sync wrong generation", s.Err, kerr.IllegalGeneration)
	s, _ = c.Sync(&SyncRequest{Group: "g", MemberID: "nobody", Generation: r.Generation})(ctx(t))
	want(t, "sync unknown member", s.Err, kerr.UnknownMemberID)
	want(t, "commit while completing", code(t, c.CommitOffsets("g", MemberRef{MemberID: a}, r.Generation, []Commit{{TP: TP{"t", 0}, Offset: 1}})), kerr.RebalanceInProgress)
	c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: r.Generation})(ctx(t))
	want(t, "commit wrong generation", code(t, c.CommitOffsets("g", MemberRef{MemberID: a}, 9, []Commit{{TP: TP{"t", 0}, Offset: 1}})), kerr.IllegalGeneration)
	want(t, "commit unknown member", code(t, c.CommitOffsets("g", MemberRef{MemberID: "x"}, r.Generation, []Commit{{TP: TP{"t", 0}, Offset: 1}})), kerr.UnknownMemberID)
	want(t, "standalone commit into live group", code(t, c.CommitOffsets("g", MemberRef{}, -1, []Commit{{TP: TP{"t", 0}, Offset: 1}})), kerr.UnknownMemberID)
	want(t, "commit into unknown group with a generation", code(t, c.CommitOffsets("other", MemberRef{MemberID: "x"}, 3, nil)), kerr.IllegalGeneration)
	if got := c.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("rejected commits stored %v", got)
	}
	want(t, "member commit", code(t, c.CommitOffsets("g", MemberRef{MemberID: a}, r.Generation, []Commit{{TP: TP{"t", 0}, Offset: 7}})), nil)
	if got := c.FetchOffsets("g", nil); got[TP{"t", 0}].Offset != 7 {
		t.Fatalf("offsets %v", got)
	}
	bad := joinReq("g", "")
	bad.SessionTimeout = time.Millisecond
	want(t, "session timeout too small", mustJoin(t, c, bad).Err, kerr.InvalidSessionTimeout)
	want(t, "delete non-empty", code(t, c.Delete("g")), kerr.NonEmptyGroup)
	want(t, "delete unknown", code(t, c.Delete("nope")), kerr.GroupIDNotFound)
}

func TestProtocolSelection(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	ids := []string{newMember(t, c, "g"), newMember(t, c, "g"), newMember(t, c, "g")}
	protos := [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin", "sticky"}}
	var waits []func(context.Context) (JoinResult, bool)
	for i, id := range ids {
		waits = append(waits, c.Join(joinReq("g", id, protos[i]...)))
	}
	for _, w := range waits {
		r, _ := w(ctx(t))
		if r.Err != 0 || r.Protocol != "roundrobin" {
			t.Fatalf("join: %+v, want roundrobin chosen", r)
		}
	}
	r := mustJoin(t, c, joinReq("g", "", "sticky"))
	want(t, "no common protocol", r.Err, kerr.InconsistentGroupProtocol)
	other := joinReq("g", "")
	other.ProtocolType = "connect"
	want(t, "other protocol type", mustJoin(t, c, other).Err, kerr.InconsistentGroupProtocol)
}

func TestStaticMembership(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	inst := "i-1"
	req := joinReq("g", "")
	req.InstanceID = &inst
	r1 := mustJoin(t, c, req) // static members skip MEMBER_ID_REQUIRED
	want(t, "static join", r1.Err, nil)
	s, _ := c.Sync(&SyncRequest{Group: "g", MemberID: r1.MemberID, InstanceID: &inst, Generation: r1.Generation,
		Assignments: map[string][]byte{r1.MemberID: []byte("mine")}})(ctx(t))
	want(t, "sync", s.Err, nil)
	// The same instance restarts: new member id, same generation and
	// assignment, no rebalance; the old id is fenced.
	r2 := mustJoin(t, c, req)
	want(t, "static rejoin", r2.Err, nil)
	if r2.MemberID == r1.MemberID || r2.Generation != r1.Generation {
		t.Fatalf("rejoin: %+v after %+v", r2, r1)
	}
	s, _ = c.Sync(&SyncRequest{Group: "g", MemberID: r2.MemberID, InstanceID: &inst, Generation: r2.Generation})(ctx(t))
	if s.Err != 0 || string(s.Assignment) != "mine" {
		t.Fatalf("sync after replacement: %+v", s)
	}
	want(t, "old id heartbeat", code(t, c.Heartbeat("g", MemberRef{MemberID: r1.MemberID, InstanceID: &inst}, r1.Generation)), kerr.FencedInstanceID)
	want(t, "old id commit", code(t, c.CommitOffsets("g", MemberRef{MemberID: r1.MemberID, InstanceID: &inst}, r1.Generation, nil)), kerr.FencedInstanceID)
	old := joinReq("g", r1.MemberID)
	old.InstanceID = &inst
	want(t, "old id join", mustJoin(t, c, old).Err, kerr.FencedInstanceID)
	codes, _ := c.Leave("g", []MemberRef{{MemberID: r1.MemberID, InstanceID: &inst}})(ctx(t))
	want(t, "old id leave", codes[0], kerr.FencedInstanceID)
	want(t, "new id heartbeat", code(t, c.Heartbeat("g", MemberRef{MemberID: r2.MemberID, InstanceID: &inst}, r2.Generation)), nil)
	codes, _ = c.Leave("g", []MemberRef{{InstanceID: &inst}})(ctx(t))
	want(t, "leave by instance", codes[0], nil)
}

func TestSessionExpiry(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	a, b := newMember(t, c, "g"), newMember(t, c, "g")
	ja, jb := joinReq("g", a), joinReq("g", b)
	jb.SessionTimeout = 100 * time.Millisecond
	wa, wb := c.Join(ja), c.Join(jb)
	ra, _ := wa(ctx(t))
	wb(ctx(t))
	c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: ra.Generation})(ctx(t))
	// a keeps heartbeating, b does not: b is evicted, a must rejoin.
	var rebalancing atomic.Bool
	checkFor(t, 5*time.Second, func() error {
		switch code(t, c.Heartbeat("g", MemberRef{MemberID: a}, ra.Generation)) {
		case kerr.RebalanceInProgress.Code:
			rebalancing.Store(true)
			return nil
		case 0:
			return fmt.Errorf("no rebalance yet")
		default:
			return fmt.Errorf("unexpected heartbeat answer")
		}
	})
	r := mustJoin(t, c, ja)
	if r.Err != 0 || len(r.Members) != 1 || r.Members[0].MemberID != a {
		t.Fatalf("after expiry: %+v", r)
	}
	want(t, "expired member heartbeat", code(t, c.Heartbeat("g", MemberRef{MemberID: b}, r.Generation)), kerr.UnknownMemberID)
}

func TestRebalanceTimeoutDropsSilentMembers(t *testing.T) {
	c := openTest(t, t.TempDir(), nil)
	a, b := newMember(t, c, "g"), newMember(t, c, "g")
	ja, jb := joinReq("g", a), joinReq("g", b)
	ja.RebalanceTimeout, jb.RebalanceTimeout = 200*time.Millisecond, 200*time.Millisecond
	wa, wb := c.Join(ja), c.Join(jb)
	ra, _ := wa(ctx(t))
	wb(ctx(t))
	c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: ra.Generation})(ctx(t))
	// a rejoins (leader rejoin starts a rebalance); b never does (its
	// session is long): the join completes at the rebalance timeout without b.
	start := time.Now()
	r := mustJoin(t, c, ja)
	if r.Err != 0 || len(r.Members) != 1 || r.Generation != ra.Generation+1 {
		t.Fatalf("join: %+v", r)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("join completed after %v, before the rebalance timeout", d)
	}
}

func TestOffsetsDurableAcrossReopenAndCrash(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, nil)
	commits := []Commit{{TP: TP{"t", 0}, Offset: 10, LeaderEpoch: 3, Metadata: "m"}, {TP: TP{"t", 1}, Offset: 20, LeaderEpoch: -1}}
	want(t, "commit", code(t, c.CommitOffsets("g", MemberRef{}, -1, commits)), nil)
	want(t, "commit 2", code(t, c.CommitOffsets("g", MemberRef{}, -1, []Commit{{TP: TP{"t", 0}, Offset: 11, LeaderEpoch: 4}})), nil)
	check := func(c *Coordinator) {
		t.Helper()
		got := c.FetchOffsets("g", nil)
		if len(got) != 2 || got[TP{"t", 0}].Offset != 11 || got[TP{"t", 0}].LeaderEpoch != 4 || got[TP{"t", 1}].Offset != 20 || got[TP{"t", 1}].CommitMs == 0 {
			t.Fatalf("offsets %+v", got)
		}
		if l := c.List(); len(l) != 1 || l[0].Group != "g" || l[0].State != "Empty" {
			t.Fatalf("groups %+v", l)
		}
	}
	check(c)
	// Crash: open the same dir without closing (the fsynced log is all
	// that is guaranteed).
	c2, err := Open(Options{DataDir: dir, Offsets: statelogtest.Open(t, dir, "__consumer_offsets", testPartitions)})
	if err != nil {
		t.Fatal(err)
	}
	check(c2)
	c2.Close()
	c.Close()
	c3 := openTest(t, dir, nil)
	check(c3)
	want(t, "delete offsets", code2(t, c3.DeleteOffsets("g", []TP{{"t", 1}})), nil)
	c3.Close()
	c4 := openTest(t, dir, nil)
	if got := c4.FetchOffsets("g", nil); len(got) != 1 {
		t.Fatalf("after OffsetDelete and reopen: %+v", got)
	}
}

func code2(t *testing.T, wait func(context.Context) (int16, []int16, bool)) int16 {
	t.Helper()
	g, codes, ok := wait(ctx(t))
	if !ok {
		t.Fatal("timed out")
	}
	for _, c := range codes {
		if c != 0 {
			return c
		}
	}
	return g
}

func TestOffsetsRetention(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	c := openTest(t, t.TempDir(), func(o *Options) {
		o.OffsetsRetention = time.Hour
		o.Now = func() time.Time { return time.UnixMilli(now.Load()) }
	})
	want(t, "standalone", code(t, c.CommitOffsets("lonely", MemberRef{}, -1, []Commit{{TP: TP{"t", 0}, Offset: 1}})), nil)
	a := newMember(t, c, "busy")
	r := mustJoin(t, c, joinReq("busy", a))
	c.Sync(&SyncRequest{Group: "busy", MemberID: a, Generation: r.Generation})(ctx(t))
	want(t, "member commit", code(t, c.CommitOffsets("busy", MemberRef{MemberID: a}, r.Generation, []Commit{{TP: TP{"t", 0}, Offset: 2}})), nil)

	if n := c.ExpireOffsets(); n != 0 {
		t.Fatalf("expired %d offsets before the retention", n)
	}
	now.Add(time.Hour.Milliseconds() + 1)
	if n := c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets, want only the empty group's", n)
	}
	if len(c.FetchOffsets("lonely", nil)) != 0 || len(c.FetchOffsets("busy", nil)) != 1 {
		t.Fatal("wrong offsets expired")
	}
	if d, _ := c.Describe("lonely")(ctx(t)); d.State != "" {
		t.Fatalf("expired group still listed: %s", d.State)
	}
	// busy empties now: its retention starts now, not at the commit.
	codes, _ := c.Leave("busy", []MemberRef{{MemberID: a}})(ctx(t))
	want(t, "leave", codes[0], nil)
	checkFor(t, 5*time.Second, func() error {
		if d, _ := c.Describe("busy")(ctx(t)); d.State != "Empty" {
			return fmt.Errorf("busy is %s", d.State)
		}
		return nil
	})
	emptied := now.Load()
	now.Store(emptied + time.Hour.Milliseconds() - 60_000)
	if n := c.ExpireOffsets(); n != 0 {
		t.Fatalf("expired %d offsets of a group empty for less than the retention", n)
	}
	now.Store(emptied + time.Hour.Milliseconds() + 1000)
	if n := c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets, want 1", n)
	}
}

// TestExtendInitialJoin: Kafka's InitialDelayedJoin schedule. Each row is the
// sequence of timer waits for a rebalance timeout, the delay, and whether a
// member joined before each timer fired.
func TestExtendInitialJoin(t *testing.T) {
	s := time.Second
	for _, tt := range []struct {
		name           string
		delay, timeout time.Duration
		joined         []bool
		waits          []time.Duration
	}{
		{"nobody joins", 3 * s, 10 * s, []bool{false}, []time.Duration{3 * s}},
		{"joins keep coming: capped at the rebalance timeout", 3 * s, 10 * s, []bool{true, true, true, true, true}, []time.Duration{3 * s, 3 * s, 3 * s, s}},
		{"one extension", 3 * s, 10 * s, []bool{true, false}, []time.Duration{3 * s, 3 * s}},
		{"rebalance timeout below the delay: the delay alone", 3 * s, s, []bool{true, true}, []time.Duration{3 * s}},
		{"rebalance timeout 5s", 3 * s, 5 * s, []bool{true, true}, []time.Duration{3 * s, 2 * s}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wait, remaining := tt.delay, max(tt.timeout-tt.delay, 0)
			waits := []time.Duration{wait}
			for i := 0; ; i++ {
				next, left, ok := extendInitialJoin(tt.delay, wait, remaining, tt.joined[min(i, len(tt.joined)-1)])
				if !ok {
					break
				}
				wait, remaining = next, left
				waits = append(waits, wait)
				if len(waits) > 10 {
					t.Fatal("no end")
				}
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.waits) {
				t.Fatalf("waits %v, want %v", waits, tt.waits)
			}
		})
	}
}

// TestInitialRebalanceDelay: the first rebalance of an Empty group waits the
// delay (although every member has joined), is extended because a second
// member joined meanwhile, and answers both in one generation; a later
// rebalance of the live group is not delayed; the delay can change at runtime.
func TestInitialRebalanceDelay(t *testing.T) {
	const delay = 400 * time.Millisecond
	c := openTest(t, t.TempDir(), func(o *Options) { o.InitialRebalanceDelay = delay })
	if c.InitialRebalanceDelay() != delay {
		t.Fatalf("delay %v", c.InitialRebalanceDelay())
	}
	start := time.Now()
	a := newMember(t, c, "g")
	wa := c.Join(joinReq("g", a))
	d, _ := c.Describe("g")(ctx(t))
	if d.State != "PreparingRebalance" || len(d.Members) != 1 {
		t.Fatalf("during the delay: %+v", d)
	}
	b := newMember(t, c, "g")
	wb := c.Join(joinReq("g", b))
	ra, _ := wa(ctx(t))
	rb, _ := wb(ctx(t))
	elapsed := time.Since(start)
	if ra.Err != 0 || rb.Err != 0 || ra.Generation != 1 || rb.Generation != 1 || len(ra.Members) != 2 || ra.Leader != a {
		t.Fatalf("joins: %+v / %+v", ra, rb)
	}
	// b joined within the first delay: one extension (timers never fire early).
	if elapsed < 2*delay {
		t.Fatalf("initial join completed after %v, want at least %v (delay plus one extension)", elapsed, 2*delay)
	}
	c.Sync(&SyncRequest{Group: "g", MemberID: a, Generation: 1})(ctx(t))

	// A third member joins the Stable group: the rebalance completes as soon
	// as everyone rejoined, without the initial delay.
	c.SetInitialRebalanceDelay(time.Minute)
	x := newMember(t, c, "g")
	wx := c.Join(joinReq("g", x))
	wa, wb = c.Join(joinReq("g", a)), c.Join(joinReq("g", b))
	for _, w := range []func(context.Context) (JoinResult, bool){wa, wb, wx} {
		if r, _ := w(ctx(t)); r.Err != 0 || r.Generation != 2 {
			t.Fatalf("rebalance of a live group: %+v", r)
		}
	}

	// The runtime value applies to the next Empty group; 0 turns it off.
	c.SetInitialRebalanceDelay(0)
	y := newMember(t, c, "h")
	if r := mustJoin(t, c, joinReq("h", y)); r.Err != 0 || r.Generation != 1 {
		t.Fatalf("join without delay: %+v", r)
	}
	c.SetInitialRebalanceDelay(-1) // ignored
	if c.InitialRebalanceDelay() != 0 {
		t.Fatalf("negative delay applied: %v", c.InitialRebalanceDelay())
	}
}

// TestInitialRebalanceDelayLeave: members leaving during the initial delay do
// not end it early; the survivors form generation 1 when it ends, and a group
// everyone left becomes Empty.
func TestInitialRebalanceDelayLeave(t *testing.T) {
	c := openTest(t, t.TempDir(), func(o *Options) { o.InitialRebalanceDelay = 200 * time.Millisecond })
	a, b := newMember(t, c, "g"), newMember(t, c, "g")
	wa, _ := c.Join(joinReq("g", a)), c.Join(joinReq("g", b))
	codes, _ := c.Leave("g", []MemberRef{{MemberID: b}})(ctx(t))
	want(t, "leave b", codes[0], nil)
	if d, _ := c.Describe("g")(ctx(t)); d.State != "PreparingRebalance" {
		t.Fatalf("after a leave during the delay: %s", d.State)
	}
	ra, _ := wa(ctx(t))
	if ra.Err != 0 || ra.Generation != 1 || len(ra.Members) != 1 {
		t.Fatalf("join of the survivor: %+v", ra)
	}

	x := newMember(t, c, "h")
	wx := c.Join(joinReq("h", x))
	codes, _ = c.Leave("h", []MemberRef{{MemberID: x}})(ctx(t))
	want(t, "leave x", codes[0], nil)
	if r, _ := wx(ctx(t)); r.Err != kerr.UnknownMemberID.Code {
		t.Fatalf("join of a member that left: %+v", r)
	}
	checkFor(t, 5*time.Second, func() error {
		if d, _ := c.Describe("h")(ctx(t)); d.State != "Empty" {
			return fmt.Errorf("state %s", d.State)
		}
		return nil
	})
}
