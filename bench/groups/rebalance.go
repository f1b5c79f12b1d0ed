package main

// The rebalance benchmark: n classic-protocol members (raw JoinGroup,
// SyncGroup, Heartbeat; one client each, connected beforehand) start
// joining a fresh group at once. The time runs from the last member's first
// JoinGroup until every member holds the assignment of a generation that
// includes all n members and has had a heartbeat of that generation
// accepted. Members heartbeat every 50 ms and rejoin on
// REBALANCE_IN_PROGRESS, as real consumers do.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const rbHeartbeat = 50 * time.Millisecond

type rbGroup struct {
	cfg       config
	group     string
	n         int
	fullGen   atomic.Int32   // generation whose leader saw all n members
	confirmed []atomic.Int32 // per member: generation of its last accepted heartbeat
	started   []atomic.Int64 // per member: first JoinGroup send, unix ns
	maxGen    atomic.Int32
	errMu     sync.Mutex
	err       error
}

func benchRebalance(cfg config, n, run int) (time.Duration, int, error) {
	g := &rbGroup{cfg: cfg, n: n, confirmed: make([]atomic.Int32, n), started: make([]atomic.Int64, n),
		group: fmt.Sprintf("bench-rebalance-%d-%d-%s", n, run, strconv.FormatInt(time.Now().UnixNano(), 36))}
	clients := make([]*kgo.Client, n)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	// Connect every member to the coordinator before timing.
	for i := range clients {
		cl, err := newClient(cfg)
		if err != nil {
			return 0, 0, err
		}
		clients[i] = cl
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID = g.group, "warmup"
		if _, err := hb.RequestWith(context.Background(), cl); err != nil {
			return 0, 0, fmt.Errorf("warm up: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i] = g.member(ctx, clients[i], i) }()
	}
	var took time.Duration
	for {
		if err := g.failed(); err != nil {
			cancel()
			wg.Wait()
			return 0, 0, err
		}
		if g.converged() {
			took = time.Since(time.Unix(0, g.lastStart()))
			break
		}
		if ctx.Err() != nil {
			wg.Wait()
			return 0, 0, errors.New("no convergence within 60 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	wg.Wait()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = g.group
	for _, id := range ids {
		if id != "" {
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = id
			leave.Members = append(leave.Members, m)
		}
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	leave.RequestWith(lctx, clients[0]) // best effort: the group is never reused
	return took, int(g.maxGen.Load()), nil
}

func (g *rbGroup) fail(err error) {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	if g.err == nil {
		g.err = err
	}
}

func (g *rbGroup) failed() error {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return g.err
}

func (g *rbGroup) lastStart() int64 {
	var last int64
	for i := range g.started {
		last = max(last, g.started[i].Load())
	}
	return last
}

func (g *rbGroup) converged() bool {
	full := g.fullGen.Load()
	if full <= 0 {
		return false
	}
	for i := range g.confirmed {
		if g.confirmed[i].Load() != full {
			return false
		}
	}
	return true
}

// member runs one member until ctx ends; it returns its member id.
func (g *rbGroup) member(ctx context.Context, cl *kgo.Client, i int) string {
	meta := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{g.cfg.topic}}).AppendTo(nil)
	memberID := ""
	for ctx.Err() == nil {
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group, join.MemberID, join.ProtocolType = g.group, memberID, "consumer"
		join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", meta
		join.Protocols = append(join.Protocols, p)
		g.started[i].CompareAndSwap(0, time.Now().UnixNano())
		jr, err := join.RequestWith(ctx, cl)
		if err != nil {
			return memberID
		}
		switch err := kerr.ErrorForCode(jr.ErrorCode); {
		case errors.Is(err, kerr.MemberIDRequired):
			memberID = jr.MemberID
			continue
		case errors.Is(err, kerr.UnknownMemberID):
			memberID = ""
			continue
		case errors.Is(err, kerr.RebalanceInProgress):
			continue
		case err != nil:
			g.fail(fmt.Errorf("join: %w", err))
			return memberID
		}
		memberID = jr.MemberID
		g.maxGen.Store(max(g.maxGen.Load(), jr.Generation))
		if !g.sync(ctx, cl, jr) {
			continue
		}
		g.heartbeat(ctx, cl, memberID, jr.Generation, i)
	}
	return memberID
}

// sync sends SyncGroup (the leader with a round-robin assignment); false
// means rejoin.
func (g *rbGroup) sync(ctx context.Context, cl *kgo.Client, jr *kmsg.JoinGroupResponse) bool {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = g.group, jr.MemberID, jr.Generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), jr.Protocol
	if jr.LeaderID == jr.MemberID {
		parts := make([][]int32, len(jr.Members))
		for p := range g.cfg.partitions {
			parts[p%len(parts)] = append(parts[p%len(parts)], int32(p))
		}
		for k, m := range jr.Members {
			a := kmsg.NewConsumerMemberAssignment()
			t := kmsg.NewConsumerMemberAssignmentTopic()
			t.Topic, t.Partitions = g.cfg.topic, parts[k]
			a.Topics = append(a.Topics, t)
			sa := kmsg.NewSyncGroupRequestGroupAssignment()
			sa.MemberID, sa.MemberAssignment = m.MemberID, a.AppendTo(nil)
			req.GroupAssignment = append(req.GroupAssignment, sa)
		}
		if len(jr.Members) == g.n {
			g.fullGen.Store(jr.Generation)
		}
	}
	sr, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false
	}
	switch err := kerr.ErrorForCode(sr.ErrorCode); {
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID):
		return false
	case err != nil:
		g.fail(fmt.Errorf("sync: %w", err))
		return false
	}
	return true
}

// heartbeat heartbeats generation gen (the first at once) until the group
// rebalances or ctx ends.
func (g *rbGroup) heartbeat(ctx context.Context, cl *kgo.Client, memberID string, gen int32, i int) {
	for ctx.Err() == nil {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = g.group, memberID, gen
		resp, err := hb.RequestWith(ctx, cl)
		if err != nil {
			return
		}
		switch err := kerr.ErrorForCode(resp.ErrorCode); {
		case err == nil:
			g.confirmed[i].Store(gen)
		case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID):
			return
		default:
			g.fail(fmt.Errorf("heartbeat: %w", err))
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(rbHeartbeat):
		}
	}
}
