package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configure a Coordinator.
type Options struct {
	DataDir string
	Logger  *slog.Logger
	// OffsetsRetention: offsets of a group without members expire this long
	// after the later of their commit and the group becoming empty
	// (offsets.retention.minutes). 0 means 7 days.
	OffsetsRetention time.Duration
	// RetentionCheck is the period of the expiry sweep. 0 means 1 minute
	// (capped at OffsetsRetention).
	RetentionCheck time.Duration
	// Offsets are the partitions of __consumer_offsets (statelog), where
	// committed offsets and group metadata are kept. Required.
	Offsets []statelog.Partition
	// Session timeout bounds (group.min/max.session.timeout.ms); 0 means
	// Kafka's 6 s and 30 min.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// Consumer-protocol (KIP-848) session timeout and heartbeat interval
	// (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms);
	// 0 means Kafka's 45 s and 5 s.
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
	// InitialRebalanceDelay (group.initial.rebalance.delay.ms): the first
	// rebalance of an Empty classic group waits this long for more members,
	// extended by as much whenever one joins meanwhile, up to the largest
	// rebalance timeout in total. 0 (the zero value) means no delay; the
	// broker's default is Kafka's 3 s (internal/config).
	InitialRebalanceDelay time.Duration
	// Topics resolves topic ids when consumer groups (KIP-848) are restored
	// at Open: their records name partitions by topic id. Nil: consumer
	// groups are not restored (their members rejoin).
	Topics func() TopicView
	// Now replaces time.Now for the retention sweep (tests).
	Now func() time.Time
}

// MaxMetadataBytes is offset.metadata.max.bytes.
const MaxMetadataBytes = 4096

// Coordinator owns every group and the offsets log.
type Coordinator struct {
	opts Options
	// retention is opts.OffsetsRetention, changeable at runtime
	// (SetOffsetsRetention: the dynamic broker config).
	retention atomic.Int64
	lg        *slog.Logger
	offsets   *offsetStore
	groups    sync.Map // string -> *group
	quit      chan struct{}
	wg        sync.WaitGroup
	// createMu serialises group creation only (never taken on the
	// heartbeat path, which finds its group in the sync.Map).
	createMu sync.Mutex
	closed   sync.Once

	// initialDelay is opts.InitialRebalanceDelay, changeable at runtime
	// (SetInitialRebalanceDelay); read when a rebalance of an Empty group
	// starts.
	initialDelay atomic.Int64
}

// Open replays the offsets log and starts the retention sweep.
func Open(opts Options) (*Coordinator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OffsetsRetention <= 0 {
		opts.OffsetsRetention = 7 * 24 * time.Hour
	}
	if opts.RetentionCheck <= 0 {
		opts.RetentionCheck = min(time.Minute, opts.OffsetsRetention)
	}
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = 6 * time.Second
	}
	if opts.MaxSessionTimeout <= 0 {
		opts.MaxSessionTimeout = 30 * time.Minute
	}
	if opts.ConsumerSessionTimeout <= 0 {
		opts.ConsumerSessionTimeout = 45 * time.Second
	}
	if opts.ConsumerHeartbeatInterval <= 0 {
		opts.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Coordinator{opts: opts, lg: opts.Logger, quit: make(chan struct{})}
	c.retention.Store(int64(opts.OffsetsRetention))
	c.initialDelay.Store(int64(max(opts.InitialRebalanceDelay, 0)))
	var err error
	start := time.Now()
	if c.offsets, err = newOffsetStore(opts.Offsets, opts.Logger); err != nil {
		return nil, err
	}
	if err := c.offsets.replay(); err != nil {
		return nil, err
	}
	if opts.DataDir != "" {
		if err := c.migrateLegacy(); err != nil { // migrate.go
			return nil, err
		}
	}
	groups := c.offsets.groupsWithOffsets()
	for _, id := range groups {
		c.group(id, true)
	}
	restored := 0
	classic, consumer := c.offsets.takeLoaded(), c.offsets.takeLoadedCG()
	var view TopicView
	if opts.Topics != nil {
		view = opts.Topics()
	}
	for id, lc := range consumer {
		if !lc.live {
			continue
		}
		if lg := classic[id]; lg != nil && lg.v != nil && lg.seq > lc.seq {
			continue // turned classic later (written by an older release)
		}
		delete(classic, id)
		if view == nil {
			c.lg.Warn("consumer group not restored: no topic view", "group", id)
			continue
		}
		if c.do(id, true, func(g *group) { g.restoreConsumer(lc, view) }) {
			restored++
		}
	}
	for id, lg := range classic {
		if lg.v == nil {
			continue
		}
		v := lg.v
		if c.do(id, true, func(g *group) { g.restore(v) }) {
			restored++
		}
	}
	c.lg.Info("consumer offsets loaded", "groups_with_offsets", len(groups), "groups_restored", restored,
		"partitions", len(opts.Offsets), "duration", time.Since(start).Round(time.Millisecond))
	c.wg.Add(1)
	go c.sweepLoop()
	return c, nil
}

// Close stops every group and closes the offsets log.
func (c *Coordinator) Close() error {
	var err error
	c.closed.Do(func() {
		close(c.quit)
		c.wg.Wait()
	})
	return err
}

func (c *Coordinator) newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

// group returns the group, creating it if create is set (nil otherwise).
func (c *Coordinator) group(id string, create bool) *group {
	if v, ok := c.groups.Load(id); ok {
		return v.(*group)
	}
	if !create {
		return nil
	}
	c.createMu.Lock()
	defer c.createMu.Unlock()
	if v, ok := c.groups.Load(id); ok {
		return v.(*group)
	}
	g := newGroup(c, id)
	c.groups.Store(id, g)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); g.loop() }()
	return g
}

// forget removes g from the registry (it is Dead).
func (c *Coordinator) forget(g *group) { c.groups.CompareAndDelete(g.id, g) }

// do runs f on the group's goroutine, creating the group if create is set.
// false: no such group, or the coordinator is closing.
func (c *Coordinator) do(id string, create bool, f func(g *group)) bool {
	for range 3 {
		g := c.group(id, create)
		if g == nil {
			return false
		}
		if g.post(func() { f(g) }) {
			return true
		}
		c.forget(g) // its goroutine ended: a Dead group that lingered out
		select {
		case <-c.quit:
			return false
		default:
		}
	}
	return false
}

// Requests are posted to the group's goroutine when the method is called
// (so one connection's pipelined requests reach a group in order) and the
// returned function waits for the answer. It returns ok=false if ctx ended
// first; the caller then answers COORDINATOR_NOT_AVAILABLE (or nothing if
// the client is gone).

// ask posts f to group id and returns the wait for its result; missing is
// the result when there is no such group (create unset) or the coordinator
// is closing.
func ask[T any](c *Coordinator, id string, create bool, missing T, f func(g *group) T) func(ctx context.Context) (T, bool) {
	ch := make(chan T, 1)
	if !c.do(id, create, func(g *group) { ch <- f(g) }) {
		ch <- missing
	}
	return func(ctx context.Context) (T, bool) {
		select {
		case v := <-ch:
			return v, true
		case <-ctx.Done():
			var zero T
			return zero, false
		}
	}
}

func ready[T any](v T) func(ctx context.Context) (T, bool) {
	return func(context.Context) (T, bool) { return v, true }
}

// Join handles a JoinGroup; the answer may wait for the rebalance (at most
// the rebalance timeout).
func (c *Coordinator) Join(req *JoinRequest) func(ctx context.Context) (JoinResult, bool) {
	if req.Group == "" {
		return ready(JoinResult{Err: kerr.InvalidGroupID.Code, Generation: -1, MemberID: req.MemberID})
	}
	ch := make(chan JoinResult, 1)
	if !c.do(req.Group, true, func(g *group) { g.join(req, ch) }) {
		ch <- JoinResult{Err: kerr.CoordinatorNotAvailable.Code, Generation: -1, MemberID: req.MemberID}
	}
	return waitChan(ch)
}

func waitChan[T any](ch chan T) func(ctx context.Context) (T, bool) {
	return func(ctx context.Context) (T, bool) {
		select {
		case v := <-ch:
			return v, true
		case <-ctx.Done():
			var zero T
			return zero, false
		}
	}
}

// Sync handles a SyncGroup; followers' answers wait for the leader's.
func (c *Coordinator) Sync(req *SyncRequest) func(ctx context.Context) (SyncResult, bool) {
	if req.Group == "" {
		return ready(SyncResult{Err: kerr.InvalidGroupID.Code})
	}
	ch := make(chan SyncResult, 1)
	if !c.do(req.Group, false, func(g *group) { g.sync(req, ch) }) {
		ch <- SyncResult{Err: kerr.UnknownMemberID.Code}
	}
	return waitChan(ch)
}

// Heartbeat answers a Heartbeat's error code.
func (c *Coordinator) Heartbeat(gid string, ref MemberRef, generation int32) func(ctx context.Context) (int16, bool) {
	if gid == "" {
		return ready(kerr.InvalidGroupID.Code)
	}
	return ask(c, gid, false, kerr.UnknownMemberID.Code, func(g *group) int16 { return g.heartbeat(ref, generation) })
}

// Leave removes members; it answers a code per member.
func (c *Coordinator) Leave(gid string, refs []MemberRef) func(ctx context.Context) ([]int16, bool) {
	missing := make([]int16, len(refs))
	for i := range missing {
		missing[i] = kerr.UnknownMemberID.Code
		if gid == "" {
			missing[i] = kerr.InvalidGroupID.Code
		}
	}
	if gid == "" {
		return ready(missing)
	}
	return ask(c, gid, false, missing, func(g *group) []int16 { return g.leave(refs) })
}

// Describe returns a group's state; State is "" if there is no such group.
func (c *Coordinator) Describe(gid string) func(ctx context.Context) (Description, bool) {
	return ask(c, gid, false, Description{}, func(g *group) Description {
		if g.state == stateDead {
			return Description{}
		}
		return g.describe()
	})
}

// Listing is one ListGroups entry.
type Listing struct {
	Group, ProtocolType, State string
	Type                       string // "classic" or "consumer"
}

// List returns every live group.
func (c *Coordinator) List() []Listing {
	var out []Listing
	c.groups.Range(func(k, v any) bool {
		g := v.(*group)
		if s := g.pub.Load(); s != nil && s.state != stateDead {
			l := Listing{Group: g.id, ProtocolType: s.protocolType, State: s.state.String(), Type: "classic"}
			if s.consumer != "" {
				l.State, l.Type = s.consumer, "consumer"
			}
			out = append(out, l)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// Delete deletes an empty group and its offsets.
func (c *Coordinator) Delete(gid string) func(ctx context.Context) (int16, bool) {
	if gid == "" {
		return ready(kerr.InvalidGroupID.Code)
	}
	wait := ask(c, gid, false, kerr.GroupIDNotFound.Code, func(g *group) int16 {
		switch g.state {
		case stateDead:
			return kerr.GroupIDNotFound.Code
		case stateEmpty:
			g.state = stateDead
			g.stopTimers()
			c.forget(g)
			return 0
		}
		return kerr.NonEmptyGroup.Code
	})
	return func(ctx context.Context) (int16, bool) {
		code, ok := wait(ctx)
		if !ok || code != 0 {
			return code, ok
		}
		var changes []change
		for tp := range c.offsets.fetch(gid, nil) {
			changes = append(changes, change{group: gid, tp: tp, del: true})
		}
		err := c.offsets.write(ctx, changes)
		if err == nil {
			err = c.offsets.syncGroup(ctx, gid)
		}
		if err != nil {
			c.lg.Error("deleting group offsets failed", "group", gid, "err", err)
			return kerr.CoordinatorNotAvailable.Code, true
		}
		return 0, true
	}
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat (KIP-848).
func (c *Coordinator) ConsumerHeartbeat(req *ConsumerHeartbeat) func(ctx context.Context) (ConsumerHeartbeatResult, bool) {
	if req.Group == "" {
		return ready(ConsumerHeartbeatResult{Err: kerr.InvalidGroupID.Code, MemberID: req.MemberID, Epoch: req.Epoch})
	}
	missing := ConsumerHeartbeatResult{Err: kerr.CoordinatorNotAvailable.Code, MemberID: req.MemberID, Epoch: req.Epoch}
	if req.Epoch != 0 {
		missing.Err = kerr.UnknownMemberID.Code
		if c.closing() {
			missing.Err = kerr.CoordinatorNotAvailable.Code
		}
	}
	// As Kafka does, the answer goes out after the records of the change
	// it reports are durable: a member told it left (or got an epoch)
	// must not come back otherwise after a crash.
	type answer struct {
		res   ConsumerHeartbeatResult
		waits []func(context.Context) error
	}
	ch := make(chan answer, 1)
	if !c.do(req.Group, req.Epoch == 0, func(g *group) {
		res := g.consumerHeartbeat(req)
		g.publish()
		g.persist()
		ch <- answer{res, g.cgWaits}
		g.cgWaits = nil
	}) {
		ch <- answer{res: missing}
	}
	return func(ctx context.Context) (ConsumerHeartbeatResult, bool) {
		select {
		case a := <-ch:
			for _, wait := range a.waits {
				if err := wait(ctx); err != nil {
					if ctx.Err() != nil {
						return ConsumerHeartbeatResult{}, false
					}
					c.lg.Warn("consumer group records not durable; the heartbeat is answered with an error", "group", req.Group, "err", err)
					return ConsumerHeartbeatResult{Err: kerr.CoordinatorNotAvailable.Code, MemberID: req.MemberID, Epoch: req.Epoch}, true
				}
			}
			return a.res, true
		case <-ctx.Done():
			return ConsumerHeartbeatResult{}, false
		}
	}
}

// ConsumerDescribe answers ConsumerGroupDescribe for one group.
func (c *Coordinator) ConsumerDescribe(gid string) func(ctx context.Context) (ConsumerDescription, bool) {
	missing := ConsumerDescription{Err: kerr.GroupIDNotFound.Code, ErrMsg: "group " + gid + " not found"}
	return ask(c, gid, false, missing, func(g *group) ConsumerDescription { return g.consumerDescribe() })
}

func (c *Coordinator) closing() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// Commit is one offset to commit.
type Commit struct {
	TP
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitOffsets validates the committer's membership and generation, then
// makes the offsets durable (fsynced) before answering 0; otherwise it
// answers the code for every partition.
func (c *Coordinator) CommitOffsets(gid string, ref MemberRef, generation int32, commits []Commit) func(ctx context.Context) (int16, bool) {
	if gid == "" {
		return ready(kerr.InvalidGroupID.Code)
	}
	wait := ask(c, gid, generation < 0, kerr.IllegalGeneration.Code, func(g *group) int16 {
		if g.cg != nil && g.state != stateDead {
			tps := make([]TP, len(commits))
			for i, cm := range commits {
				tps[i] = cm.TP
			}
			return g.checkConsumerCommit(ref, generation, tps)
		}
		return g.checkCommit(ref, generation)
	})
	return func(ctx context.Context) (int16, bool) {
		code, ok := wait(ctx)
		if !ok || code != 0 || len(commits) == 0 {
			return code, ok
		}
		now := c.opts.Now().UnixMilli()
		changes := make([]change, len(commits))
		for i, cm := range commits {
			changes[i] = change{group: gid, tp: cm.TP, off: Offset{Offset: cm.Offset, LeaderEpoch: cm.LeaderEpoch, Metadata: cm.Metadata, CommitMs: now}}
		}
		if err := c.offsets.write(ctx, changes); err != nil {
			c.lg.Error("offset commit failed", "group", gid, "err", err)
			return kerr.CoordinatorNotAvailable.Code, true
		}
		return 0, true
	}
}

// CommitTxnOffsets makes the offsets of a committed transaction durable and
// visible (TxnOffsetCommit staged them with the transaction coordinator,
// which checked the producer; there is no membership check here because the
// group may have rebalanced since).
func (c *Coordinator) CommitTxnOffsets(gid string, commits []Commit) error {
	if len(commits) == 0 {
		return nil
	}
	now := c.opts.Now().UnixMilli()
	changes := make([]change, len(commits))
	for i, cm := range commits {
		changes[i] = change{group: gid, tp: cm.TP, off: Offset{Offset: cm.Offset, LeaderEpoch: cm.LeaderEpoch, Metadata: cm.Metadata, CommitMs: now}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeWait)
	defer cancel()
	return c.offsets.write(ctx, changes)
}

// FetchOffsets returns the committed offsets of group gid (tps nil: all).
func (c *Coordinator) FetchOffsets(gid string, tps []TP) map[TP]Offset {
	return c.offsets.fetch(gid, tps)
}

// DeleteOffsets deletes committed offsets (OffsetDelete). It answers a
// group-level code, or a code per partition (GROUP_SUBSCRIBED_TO_TOPIC for
// topics the group's members consume).
func (c *Coordinator) DeleteOffsets(gid string, tps []TP) func(ctx context.Context) (int16, []int16, bool) {
	type res struct {
		code int16
		subs map[string]bool
	}
	if gid == "" {
		return func(context.Context) (int16, []int16, bool) { return kerr.InvalidGroupID.Code, nil, true }
	}
	wait := ask(c, gid, false, res{code: kerr.GroupIDNotFound.Code}, func(g *group) res {
		switch {
		case g.state == stateDead:
			return res{code: kerr.GroupIDNotFound.Code}
		case g.protocolType != "" && g.protocolType != "consumer" && g.state != stateEmpty:
			return res{code: kerr.NonEmptyGroup.Code}
		}
		return res{subs: g.subscribedTopics()}
	})
	return func(ctx context.Context) (int16, []int16, bool) {
		r, ok := wait(ctx)
		if !ok || r.code != 0 {
			return r.code, nil, ok
		}
		codes := make([]int16, len(tps))
		var changes []change
		for i, tp := range tps {
			if r.subs[tp.Topic] {
				codes[i] = kerr.GroupSubscribedToTopic.Code
				continue
			}
			changes = append(changes, change{group: gid, tp: tp, del: true})
		}
		if err := c.offsets.write(ctx, changes); err != nil {
			c.lg.Error("offset delete failed", "group", gid, "err", err)
			return kerr.CoordinatorNotAvailable.Code, nil, true
		}
		return 0, codes, true
	}
}

func (c *Coordinator) sweepLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.RetentionCheck)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
			c.ExpireOffsets()
		}
	}
}

// OffsetsRetention is the current offsets.retention.minutes.
func (c *Coordinator) OffsetsRetention() time.Duration { return time.Duration(c.retention.Load()) }

// SetOffsetsRetention changes offsets.retention.minutes at runtime; the next
// sweep applies it. d <= 0 is ignored.
func (c *Coordinator) SetOffsetsRetention(d time.Duration) {
	if d > 0 {
		c.retention.Store(int64(d))
	}
}

// InitialRebalanceDelay is the current group.initial.rebalance.delay.ms.
func (c *Coordinator) InitialRebalanceDelay() time.Duration {
	return time.Duration(c.initialDelay.Load())
}

// SetInitialRebalanceDelay changes group.initial.rebalance.delay.ms at
// runtime; rebalances of Empty groups that start later use it. d < 0 is
// ignored.
func (c *Coordinator) SetInitialRebalanceDelay(d time.Duration) {
	if d >= 0 {
		c.initialDelay.Store(int64(d))
	}
}

// ExpireOffsets deletes the offsets of groups without members whose
// retention has passed (Kafka's rule: measured from the later of the commit
// and the moment the group became empty), then removes groups left with
// neither members nor offsets. It returns the number of offsets expired.
func (c *Coordinator) ExpireOffsets() int {
	now := c.opts.Now().UnixMilli()
	ret := time.Duration(c.retention.Load()).Milliseconds()
	var changes []change
	emptied := map[string]bool{}
	for _, id := range c.offsets.groupsWithOffsets() {
		since := int64(0)
		if g := c.group(id, false); g != nil {
			if since = g.emptySince.Load(); since < 0 {
				continue // has members
			}
		}
		offs := c.offsets.fetch(id, nil)
		n := 0
		for tp, o := range offs {
			if now-max(o.CommitMs, since) >= ret {
				changes = append(changes, change{group: id, tp: tp, del: true})
				n++
			}
		}
		if n == len(offs) {
			emptied[id] = true
		}
	}
	wctx, cancel := context.WithTimeout(context.Background(), writeWait)
	err := c.offsets.write(wctx, changes)
	cancel()
	if err != nil {
		c.lg.Error("expiring offsets failed", "err", err)
		return 0
	}
	for id := range emptied {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ask(c, id, false, false, func(g *group) bool {
			if g.state == stateEmpty && len(c.offsets.fetch(id, nil)) == 0 {
				g.state = stateDead
				c.forget(g)
			}
			return true
		})(ctx)
		cancel()
	}
	if len(changes) > 0 {
		c.lg.Info("expired committed offsets", "offsets", len(changes), "groups", len(emptied))
	}
	return len(changes)
}

// consumerTopics parses the topics of consumer-protocol member metadata.
func consumerTopics(meta []byte) []string {
	var m kmsg.ConsumerMemberMetadata
	if err := m.ReadFrom(meta); err != nil {
		return nil
	}
	return m.Topics
}
