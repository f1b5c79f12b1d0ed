package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSmokeProduceConsume(t *testing.T) {
	b := StartBroker(t)
	cl := b.Client(t, kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := Ctx(t, 30*time.Second)
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "smoke", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 10 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if code, body := b.Get(t, "/ready"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/ready = %d %s", code, body)
	}
}
