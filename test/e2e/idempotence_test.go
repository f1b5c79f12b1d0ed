package e2e

// Idempotent-producer rules driven with hand-built record batches and raw
// Produce/InitProducerId requests, and their survival across a clean restart
// and a kill -9.

import (
	"context"
	bin "encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var idemCRCTable = crc32.MakeTable(crc32.Castagnoli)

// idemBatch builds an uncompressed v2 batch of n records for producer
// pid/epoch starting at sequence seq. Record values are "<tag>-<seq+i>".
func idemBatch(pid int64, epoch int16, seq int32, n int, tag string) []byte {
	return idemBatchAttrs(pid, epoch, seq, n, tag, 0)
}

// idemBatchAttrs is idemBatch with batch attributes (0x10: transactional).
func idemBatchAttrs(pid int64, epoch int16, seq int32, n int, tag string, attrs int16) []byte {
	ts := time.Now().UnixMilli()
	var body []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d", tag, int(seq)+i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 encodes as one byte
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: pid, ProducerEpoch: epoch,
		FirstSequence: seq, NumRecords: int32(n), Records: body,
	}
	raw := rb.AppendTo(nil)
	bin.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12)) // Length: bytes after the field
	// CRC-32C covers attributes (offset 21) to the end.
	bin.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], idemCRCTable))
	return raw
}

// idem talks to one broker with raw requests.
type idem struct {
	t       *testing.T
	b       *Broker
	cl      *kgo.Client
	topicID [16]byte
}

const idemTopic = "idem"

func newIdem(t *testing.T, b *Broker) *idem {
	t.Helper()
	cl := b.Client(t)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(idemTopic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %s: %v %+v", idemTopic, err, resp)
	}
	return &idem{t: t, b: b, cl: cl, topicID: resp.Topics[0].TopicID}
}

// initPID sends InitProducerId (pid -1: a new producer; else an epoch bump).
func (c *idem) initPID(pid int64, epoch int16) (int64, int16) {
	c.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp, err := req.RequestWith(context.Background(), c.cl)
	if err != nil {
		c.t.Fatalf("InitProducerId: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		c.t.Fatalf("InitProducerId(%d, %d): %v", pid, epoch, err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// produce sends one batch (acks=all) to partition 0 and returns the error
// code and base offset.
func (c *idem) produce(batch []byte) (int16, int64) {
	c.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = idemTopic, c.topicID // v13+ addresses by id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := c.cl.Broker(1).Request(context.Background(), req)
	if err != nil {
		c.t.Fatalf("produce: %v", err)
	}
	resp := kresp.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		c.t.Fatalf("produce: unexpected response shape %+v", resp)
	}
	sp := resp.Topics[0].Partitions[0]
	return sp.ErrorCode, sp.BaseOffset
}

// expect produces batch and checks the answer and the log end afterwards.
func (c *idem) expect(what string, batch []byte, wantCode int16, wantBase, wantEnd int64) {
	c.t.Helper()
	code, base := c.produce(batch)
	if code != wantCode || (wantCode == 0 && base != wantBase) {
		c.t.Fatalf("%s: error %v base %d, want error %v base %d", what, kerr.ErrorForCode(code), base, kerr.ErrorForCode(wantCode), wantBase)
	}
	if end, _ := clientsListOffset(c.t, c.cl, idemTopic, 0, -1); end != wantEnd {
		c.t.Fatalf("%s: log end %d, want %d", what, end, wantEnd)
	}
}

var (
	codeOutOfOrder   = kerr.OutOfOrderSequenceNumber.Code // 45
	codeInvalidEpoch = kerr.InvalidProducerEpoch.Code     // 47
)

// TestIdempotenceRawProducerState checks duplicate, gap and epoch handling
// on one partition, then restarts the broker (clean stop, or kill -9 after a
// clean restart so recovery combines the snapshot with a log scan) and checks
// the producer state came back: duplicates still answer their original
// offset, the next sequence is accepted, old epochs stay fenced, and a new
// producer id was never issued before.
func TestIdempotenceRawProducerState(t *testing.T) {
	for _, mode := range []string{"clean-stop", "kill-9"} {
		t.Run(mode, func(t *testing.T) {
			b := StartBroker(t)
			clientsCreateTopic(t, clientsAdmin(t, b), idemTopic, 1, nil)
			c := newIdem(t, b)

			issued := map[int64]bool{}
			maxIssued := int64(-1)
			p1, e := c.initPID(-1, -1)
			if p1 < 0 || e != 0 {
				t.Fatalf("InitProducerId: pid %d epoch %d", p1, e)
			}
			for _, p := range []int64{p1, idemPID(c.initPID(-1, -1)), idemPID(c.initPID(-1, -1))} {
				if issued[p] {
					t.Fatalf("producer id %d issued twice", p)
				}
				issued[p] = true
				maxIssued = max(maxIssued, p)
			}
			var p2 int64
			for p := range issued {
				if p != p1 {
					p2 = p
					break
				}
			}

			batchA := idemBatch(p1, 0, 0, 3, "a")
			c.expect("first batch", batchA, 0, 0, 3)
			c.expect("duplicate of the first batch", batchA, 0, 0, 3)
			c.expect("sequence gap (5, want 3)", idemBatch(p1, 0, 5, 2, "gap"), codeOutOfOrder, -1, 3)
			c.expect("next sequence", idemBatch(p1, 0, 3, 2, "b"), 0, 3, 5)
			c.expect("duplicate of an older batch in the window", batchA, 0, 0, 5)

			// KIP-360 epoch bump: same id, epoch 1, sequences restart at 0.
			if pid, ep := c.initPID(p1, 0); pid != p1 || ep != 1 {
				t.Fatalf("epoch bump: pid %d epoch %d, want %d/1", pid, ep, p1)
			}
			batchC := idemBatch(p1, 1, 0, 2, "c")
			c.expect("first batch of epoch 1", batchC, 0, 5, 7)
			c.expect("old epoch", idemBatch(p1, 0, 5, 1, "old"), codeInvalidEpoch, -1, 7)
			c.expect("new epoch not starting at 0", idemBatch(p1, 2, 3, 1, "x"), codeOutOfOrder, -1, 7)
			batchD := idemBatch(p2, 0, 0, 1, "d")
			c.expect("second producer", batchD, 0, 7, 8)

			restart := func() {
				if mode == "kill-9" {
					b.Kill()
				} else {
					b.Stop()
				}
				b = StartBrokerIn(t, b.DataDir)
				c = newIdem(t, b)
			}
			if mode == "kill-9" {
				// A clean restart first writes a producer snapshot; the batch
				// after it is only in the log when the broker is killed.
				b.Stop()
				b = StartBrokerIn(t, b.DataDir)
				c = newIdem(t, b)
				c.expect("after a clean restart, duplicate", batchC, 0, 5, 8)
				batchE := idemBatch(p1, 1, 2, 1, "e")
				c.expect("after a clean restart, next sequence", batchE, 0, 8, 9)
				restart()
				c.expect("after kill -9, duplicate of the batch after the snapshot", batchE, 0, 8, 9)
				c.expect("after kill -9, duplicate from before the snapshot", batchC, 0, 5, 9)
				c.expect("after kill -9, second producer's duplicate", batchD, 0, 7, 9)
				c.expect("after kill -9, gap", idemBatch(p1, 1, 9, 1, "gap"), codeOutOfOrder, -1, 9)
				c.expect("after kill -9, old epoch", idemBatch(p1, 0, 5, 1, "old"), codeInvalidEpoch, -1, 9)
				c.expect("after kill -9, next sequence", idemBatch(p1, 1, 3, 2, "f"), 0, 9, 11)
				c.expect("after kill -9, second producer's next sequence", idemBatch(p2, 0, 1, 1, "g"), 0, 11, 12)
			} else {
				restart()
				c.expect("after restart, duplicate", batchC, 0, 5, 8)
				c.expect("after restart, second producer's duplicate", batchD, 0, 7, 8)
				c.expect("after restart, gap", idemBatch(p1, 1, 5, 1, "gap"), codeOutOfOrder, -1, 8)
				c.expect("after restart, old epoch", idemBatch(p1, 0, 5, 1, "old"), codeInvalidEpoch, -1, 8)
				c.expect("after restart, next sequence", idemBatch(p1, 1, 2, 2, "f"), 0, 8, 10)
				c.expect("after restart, second producer's next sequence", idemBatch(p2, 0, 1, 1, "g"), 0, 10, 11)
			}

			fresh, ep := c.initPID(-1, -1)
			if issued[fresh] || fresh <= maxIssued || ep != 0 {
				t.Fatalf("InitProducerId after restart gave pid %d epoch %d; issued before: %v", fresh, ep, issued)
			}

			// What a consumer sees: exactly the accepted batches, in order.
			want := []string{"a-0", "a-1", "a-2", "b-3", "b-4", "c-0", "c-1", "d-0"}
			if mode == "kill-9" {
				want = append(want, "e-2", "f-3", "f-4", "g-1")
			} else {
				want = append(want, "f-2", "f-3", "g-1")
			}
			recs := clientsConsumeKgo(t, b, idemTopic, len(want), 30*time.Second)
			for i, r := range clientsSorted(recs) {
				if r.Value != want[i] || r.Offset != int64(i) {
					t.Fatalf("record %d: %s, want value %s", i, r, want[i])
				}
			}
		})
	}
}

func idemPID(pid int64, _ int16) int64 { return pid }
