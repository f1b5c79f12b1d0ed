package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-stream/chronik/test/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions whose partitions are led by several brokers: the
// coordinator (wherever the transactional id's __transaction_state
// partition is) has the other leaders write their markers
// (WriteTxnMarkers), and each leader checks a transactional produce with
// the coordinator (AddPartitionsToTxn). Committed records are read once by
// read_committed consumers, aborted ones never; under transaction version 1
// (AddPartitionsToTxn from the client, verification by the leaders) and 2
// (partitions added by the leaders).
func TestClusterTransactionsAcrossBrokers(t *testing.T) {
	for _, tv := range []string{"1", "2"} {
		t.Run("transaction-version-"+tv, func(t *testing.T) {
			c := cluster.Start(t, 3, "--transaction-version", tv)
			seeds := c.Bootstrap()
			adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			ctx := cluster.Ctx(t, 60*time.Second)
			if _, err := kadm.NewClient(adm).CreateTopic(ctx, 6, 1, nil, "tx"); err != nil {
				t.Fatal(err)
			}
			// Several transactional ids, so coordinators sit on different
			// brokers; every transaction writes to all six partitions.
			want := map[string]bool{}
			for n := range 4 {
				id := fmt.Sprintf("tx-%d", n)
				p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
					kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(20*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for round := range 3 {
					if err := p.BeginTransaction(); err != nil {
						t.Fatal(err)
					}
					commit := round != 1
					for part := range int32(6) {
						v := fmt.Sprintf("%s-r%d-p%d", id, round, part)
						if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
							t.Fatalf("%s round %d partition %d: %v", id, round, part, err)
						}
						if commit {
							want[v] = true
						}
					}
					if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
						t.Fatalf("%s round %d end (commit %v): %v", id, round, commit, err)
					}
				}
				p.Close()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			seen := map[string]bool{}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			for len(seen) < len(want) && rctx.Err() == nil {
				cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					if !want[v] {
						t.Fatalf("read_committed consumer read %q (aborted or unknown)", v)
					}
					if seen[v] {
						t.Fatalf("%q read twice", v)
					}
					seen[v] = true
				})
			}
			if len(seen) != len(want) {
				t.Fatalf("read %d of %d committed records", len(seen), len(want))
			}
			// The last stable offset passed every transaction: nothing stays
			// open on any broker.
			offs, err := kadm.NewClient(adm).ListEndOffsets(ctx, "tx")
			if err != nil {
				t.Fatal(err)
			}
			committed, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, "tx") // read_committed LSO
			if err != nil {
				t.Fatal(err)
			}
			offs.Each(func(o kadm.ListedOffset) {
				lso, _ := committed.Lookup("tx", o.Partition)
				if lso.Offset != o.Offset {
					t.Errorf("partition %d: end %d, last stable %d: a transaction is still open", o.Partition, o.Offset, lso.Offset)
				}
			})
		})
	}
}

// Offsets in a transaction need the group and the transactional id on one
// broker until offsets travel as Kafka's transactional offset commits: a
// pair on different brokers is refused clearly, a pair on one broker works.
func TestClusterTxnOffsetsRefusedAcrossBrokers(t *testing.T) {
	c := cluster.Start(t, 3)
	seeds := c.Bootstrap()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := cluster.Ctx(t, 60*time.Second)
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 3, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	kadmc := kadm.NewClient(adm)
	coordOf := func(group bool, key string) int32 {
		t.Helper()
		var id int32
		cluster.WaitFor(t, 10*time.Second, func() error {
			var rs kadm.FindCoordinatorResponses
			if group {
				rs = kadmc.FindGroupCoordinators(ctx, key)
			} else {
				rs = kadmc.FindTxnCoordinators(ctx, key)
			}
			if err := rs.Error(); err != nil {
				return err
			}
			id = rs[key].NodeID
			return nil
		})
		return id
	}
	// A group whose coordinator differs from the transactional id's.
	txnID := "etl"
	tc := coordOf(false, txnID)
	var group string
	for i := range 100 {
		g := fmt.Sprintf("g%d", i)
		if coordOf(true, g) != tc {
			group = g
			break
		}
	}
	if group == "" {
		t.Fatal("no group with a coordinator other than the transaction's")
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// AddOffsetsToTxn (to the transaction's coordinator) and TxnOffsetCommit
	// (to the group's) both refuse, naming the state.
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = txnID, pid, epoch, group
	aor, err := ao.RequestWith(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(aor.ErrorCode); e != kerr.InvalidTxnState {
		t.Fatalf("AddOffsetsToTxn for group %s (broker %d), transaction on broker %d: %v, want INVALID_TXN_STATE", group, coordOf(true, group), tc, e)
	}
	tc2 := kmsg.NewPtrTxnOffsetCommitRequest()
	tc2.TransactionalID, tc2.ProducerID, tc2.ProducerEpoch, tc2.Group, tc2.Generation = txnID, pid, epoch, group, -1
	md, err := kadmc.Metadata(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = "in", md.Topics["in"].ID
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	tc2.Topics = append(tc2.Topics, rt)
	tcr, err := tc2.RequestWith(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(tcr.Topics[0].Partitions[0].ErrorCode); e != kerr.InvalidTxnState {
		t.Fatalf("TxnOffsetCommit across brokers: %v, want INVALID_TXN_STATE", e)
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort after the refusal: %v", err)
	}
}
