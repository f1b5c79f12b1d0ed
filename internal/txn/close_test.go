package txn

import (
	"context"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/internal/statelog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stuckPartition accepts appends that never become durable, as after the
// broker's committer stopped.
type stuckPartition struct{ appended chan struct{} }

func (p *stuckPartition) Append([]kmsg.Record) (int64, func(context.Context) error, error) {
	p.appended <- struct{}{}
	return 0, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, nil
}

func (p *stuckPartition) Replay(func(int64, *kmsg.Record) error) error { return nil }

// TestCloseEndsDurabilityWaits: Close does not wait out a transition whose
// record cannot become durable; the transition fails and does not take
// effect, and later ones are refused.
func TestCloseEndsDurabilityWaits(t *testing.T) {
	p := &stuckPartition{appended: make(chan struct{}, 1)}
	c, err := Open(Options{State: []statelog.Partition{p}, Markers: &fakeMarkers{}, CheckEvery: -1, ExpireEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan *kerr.Error, 1)
	go func() {
		_, _, e := c.InitProducerID("a", 60000, -1, -1)
		res <- e
	}()
	<-p.appended
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	wantErr(t, "init during Close", <-res, kerr.CoordinatorNotAvailable)
	if st, _ := c.State("a"); st.PID >= 0 {
		t.Fatalf("a transition that was not durable took effect: %+v", st)
	}
	if err := c.appendRecord("a", nil); err != ErrClosed {
		t.Fatalf("append after Close: %v", err)
	}
}
