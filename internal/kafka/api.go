package kafka

import (
	"context"

	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc serves one request; ctx is the connection's (wire.Conn.Context).
type handlerFunc func(b *Broker, ctx context.Context, req *wire.Request) (wire.Reply, error)

type apiVersion struct {
	min, max int16
	handle   handlerFunc
}

// versions is the one table of what this broker serves. The minimums are the
// Kafka 4.0 baseline (KIP-896); the maximums are what kmsg (and so this code)
// knows. ApiVersions advertises exactly this table.
var versions map[int16]apiVersion

func init() {
	versions = map[int16]apiVersion{
		kmsg.Produce.Int16():          {3, 13, handleProduce}, // Reply.Ready, acks=0: its own path
		kmsg.Fetch.Int16():            {4, 18, deferred(handleFetch)},
		kmsg.ListOffsets.Int16():      {0, 11, immediate(handleListOffsets)}, // v0: sarama-based tools (Burrow)
		kmsg.Metadata.Int16():         {0, 13, immediate(handleMetadata)},
		kmsg.ApiVersions.Int16():      {0, 5, apiVersions},
		kmsg.CreateTopics.Int16():     {2, 7, immediate(handleCreateTopics)},
		kmsg.DeleteTopics.Int16():     {1, 6, immediate(handleDeleteTopics)},
		kmsg.InitProducerID.Int16():   {0, 5, immediate(handleInitProducerID)},
		kmsg.DescribeConfigs.Int16():  {1, 4, immediate(handleDescribeConfigs)},
		kmsg.CreatePartitions.Int16(): {0, 3, immediate(handleCreatePartitions)},
		kmsg.DescribeCluster.Int16():  {0, 2, immediate(handleDescribeCluster)},
		kmsg.OffsetCommit.Int16():     {2, 10, deferred(handleOffsetCommit)},
		kmsg.OffsetFetch.Int16():      {1, 10, immediate(handleOffsetFetch)},
		kmsg.FindCoordinator.Int16():  {0, 6, immediate(handleFindCoordinator)},
		kmsg.JoinGroup.Int16():        {2, 9, deferred(handleJoinGroup)},
		kmsg.Heartbeat.Int16():        {0, 4, deferred(handleHeartbeat)},
		kmsg.LeaveGroup.Int16():       {0, 5, deferred(handleLeaveGroup)},
		kmsg.SyncGroup.Int16():        {0, 5, deferred(handleSyncGroup)},
		kmsg.DescribeGroups.Int16():   {0, 6, deferred(handleDescribeGroups)},
		kmsg.ListGroups.Int16():       {0, 5, immediate(handleListGroups)},
		kmsg.DeleteGroups.Int16():     {0, 3, deferred(handleDeleteGroups)},
		kmsg.OffsetDelete.Int16():     {0, 0, deferred(handleOffsetDelete)},
		// KIP-848 consumer group protocol.
		kmsg.ConsumerGroupHeartbeat.Int16(): {0, 1, deferred(handleConsumerGroupHeartbeat)},
		kmsg.ConsumerGroupDescribe.Int16():  {0, 1, deferred(handleConsumerGroupDescribe)},

		// Log lifecycle (issue 7).
		kmsg.DeleteRecords.Int16():           {0, 2, immediate(handleDeleteRecords)},
		kmsg.AlterConfigs.Int16():            {0, 2, immediate(handleAlterConfigs)},
		kmsg.IncrementalAlterConfigs.Int16(): {0, 1, immediate(handleIncrementalAlterConfigs)},

		// Protocol completeness (issue 7).
		kmsg.OffsetForLeaderEpoch.Int16():       {2, 4, immediate(handleOffsetForLeaderEpoch)},
		kmsg.DescribeLogDirs.Int16():            {1, 5, immediate(handleDescribeLogDirs)},
		kmsg.ElectLeaders.Int16():               {0, 2, immediate(handleElectLeaders)},
		kmsg.AlterPartitionAssignments.Int16():  {0, 1, immediate(handleAlterPartitionReassignments)},
		kmsg.ListPartitionReassignments.Int16(): {0, 0, immediate(handleListPartitionReassignments)},
		kmsg.DescribeTopicPartitions.Int16():    {0, 0, immediate(handleDescribeTopicPartitions)},
		kmsg.DescribeQuorum.Int16():             {0, 2, immediate(handleDescribeQuorum)},

		// Transactions (issue 6; txn.go).
		kmsg.AddPartitionsToTxn.Int16(): {0, 5, immediate(handleAddPartitionsToTxn)},
		kmsg.AddOffsetsToTxn.Int16():    {0, 4, immediate(handleAddOffsetsToTxn)},
		kmsg.EndTxn.Int16():             {0, 5, immediate(handleEndTxn)},
		kmsg.TxnOffsetCommit.Int16():    {0, 6, immediate(handleTxnOffsetCommit)},
		kmsg.WriteTxnMarkers.Int16():    {1, 2, immediate(handleWriteTxnMarkers)}, // from other brokers' coordinators
		// Transaction admin (KIP-664, KIP-994).
		kmsg.DescribeProducers.Int16():    {0, 0, immediate(handleDescribeProducers)},
		kmsg.DescribeTransactions.Int16(): {0, 0, immediate(handleDescribeTransactions)},
		kmsg.ListTransactions.Int16():     {0, 2, immediate(handleListTransactions)},

		// KIP-714 client metrics (issue 12; client_metrics.go).
		kmsg.GetTelemetrySubscriptions.Int16(): {0, 0, deferred(handleGetTelemetrySubscriptions)},
		kmsg.PushTelemetry.Int16():             {0, 0, deferred(handlePushTelemetry)},
		kmsg.ListConfigResources.Int16():       {0, 1, immediate(handleListConfigResources)},
	}
}

// immediate adapts a handler that answers at once.
func immediate[Req kmsg.Request, Resp kmsg.Response](f func(b *Broker, req Req) (Resp, error)) handlerFunc {
	return func(b *Broker, _ context.Context, req *wire.Request) (wire.Reply, error) {
		r, ok := req.Body.(Req)
		if !ok {
			return wire.Reply{}, errWrongType
		}
		resp, err := f(b, r)
		if err != nil {
			return wire.Reply{}, err
		}
		resp.SetVersion(req.Version)
		return wire.Reply{Resp: resp}, nil
	}
}

// waitFunc is a deferred handler's second half: it runs in the reply's
// Later, on the connection's writer goroutine, and returns the response. ctx
// is cancelled when the connection closes or the broker ends waits
// (EndWaits, a graceful shutdown); a wait must then return promptly, with
// what it has. It may bound itself further (context.WithTimeout).
type waitFunc[Resp kmsg.Response] func(ctx context.Context) Resp

// deferred adapts a handler that may have to wait for its answer (a group's
// goroutine, a fetch long poll), or that needs the wire request (client id,
// connection). f runs on the connection's reader goroutine, so one
// connection's requests take effect in order; it gets the typed request and
// returns either the response, answered at once, or a wait. A wait's
// response is not sent when the connection closed meanwhile: nobody is left
// to read it, and the connection is done. The adapter sets the response's
// version either way.
//
// Produce does not use it: its Later carries Ready (see wire.Reply), and
// acks=0 answers nothing at all.
func deferred[Req kmsg.Request, Resp kmsg.Response](f func(b *Broker, req *wire.Request, r Req) (Resp, waitFunc[Resp], error)) handlerFunc {
	return func(b *Broker, ctx context.Context, req *wire.Request) (wire.Reply, error) {
		r, ok := req.Body.(Req)
		if !ok {
			return wire.Reply{}, errWrongType
		}
		resp, w, err := f(b, req, r)
		if err != nil {
			return wire.Reply{}, err
		}
		if w == nil {
			resp.SetVersion(req.Version)
			return wire.Reply{Resp: resp}, nil
		}
		return wire.Reply{Later: func() kmsg.Response {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(b.waits, cancel)
			defer stop()
			resp := w(wctx)
			if ctx.Err() != nil {
				if v, ok := any(resp).(wire.Vectored); ok {
					v.Release() // holds open files
				}
				return nil // the connection closed
			}
			resp.SetVersion(req.Version)
			return resp
		}}, nil
	}
}

// clientGone reports whether the request's connection closed, for a wait
// that must not act (commit fetch session state) for a client that left.
func clientGone(req *wire.Request) bool {
	return req.Conn.Context().Err() != nil
}
