package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startMetadata starts cfg.Concurrency workers, each with one Metadata
// request (for the topic) in flight. Requests go straight to a broker
// (kgo.Broker.Request), bypassing the client's metadata cache, so every
// request is a real round trip.
func (r *run) startMetadata(ctx context.Context) (*workerSet, error) {
	ws := &workerSet{done: make(chan struct{})}
	for i := 0; i < r.cfg.clientCount(); i++ {
		cl, err := kgo.NewClient(r.baseOpts()...)
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("bench: metadata client: %w", err)
		}
		ws.clients = append(ws.clients, cl)
	}
	// Learn the broker ids once through the normal path.
	var ids []int32
	mctx, cancel := context.WithTimeout(ctx, setupTimeout)
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(mctx, ws.clients[0])
	cancel()
	if err != nil {
		ws.close()
		return nil, fmt.Errorf("bench: metadata: %w", err)
	}
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
	}
	if len(ids) == 0 {
		ws.close()
		return nil, fmt.Errorf("bench: metadata lists no brokers")
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	ws.stopFns = append(ws.stopFns, cancelWait)
	p := newPacer(r.cfg.RateLimit)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Concurrency; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			cl := ws.clients[id%len(ws.clients)]
			br := cl.Broker(int(ids[id%len(ids)]))
			r.metadataWorker(ctx, waitCtx, br, p)
		}(i)
	}
	go func() { wg.Wait(); cancelWait(); close(ws.done) }()
	return ws, nil
}

func (r *run) metadataWorker(ctx, waitCtx context.Context, br *kgo.Broker, p *pacer) {
	topic := r.cfg.Topic
	for {
		if !r.proceed(ctx, waitCtx, p) {
			return
		}
		measured := r.measuring()
		if measured && !r.budget.take() {
			return
		}
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &topic
		req.Topics = append(req.Topics, rt)
		t0 := time.Now()
		resp, err := req.RequestWith(ctx, br)
		done := time.Now()
		if err == nil && len(resp.Topics) == 1 {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		} else if err == nil {
			err = fmt.Errorf("metadata answered %d topics for 1", len(resp.Topics))
		}
		if err != nil && ctx.Err() != nil {
			r.cut.Add(1)
			return
		}
		if err != nil {
			r.st.fail(err)
			sleepUntil(waitCtx, done.Add(failureBackoff)) // no hot loop on a dead broker
			continue
		}
		r.st.add(measured, done.Sub(t0), 1, 0, done)
	}
}
