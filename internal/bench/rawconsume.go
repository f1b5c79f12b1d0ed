package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sizes of the raw consumers: kgo's defaults (fetch.max.bytes,
// max.partition.fetch.bytes).
const (
	rawFetchMaxBytes     = 50 << 20
	rawFetchPartMaxBytes = 1 << 20
	rawFetchVersion      = 12 // by topic name, flexible
	rawFetchMaxWait      = 500 * time.Millisecond
)

// startRawConsumers runs --raw-fetch: each consumer opens its own TCP
// connection to the leader of its partitions (partition p goes to consumer
// p % n, as in consume mode; one broker per consumer, the leader of its
// first partition) and sends Fetch requests itself, one at a time. It reads
// each response frame into a reused buffer, decodes the response structure
// without copying the records (kmsg UnsafeReadFrom), counts the record
// bytes and walks only the batch headers: record counts, and the last
// batch's base offset and last offset delta give the next fetch offset. No
// record is decoded, so the run measures the broker's fetch capacity, not
// the client's. A partition that reaches its high watermark starts again
// at its log start: the run reads data already produced, for as long as
// it lasts. Bytes are record-batch bytes (headers included); latency is
// per Fetch request.
func (r *run) startRawConsumers(ctx context.Context) (*workerSet, error) {
	cl, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("bench: client: %w", err)
	}
	ws := &workerSet{done: make(chan struct{}), clients: []*kgo.Client{cl}}
	addrs, err := r.leaderAddrs(ctx)
	if err != nil {
		ws.close()
		return nil, err
	}
	n := min(r.cfg.Concurrency, len(r.partitions))
	r.consumers.Store(int32(n))
	pollCtx, cancel := context.WithCancel(ctx)
	ws.stopFns = append(ws.stopFns, cancel)
	var wg sync.WaitGroup
	for i := range n {
		var parts []int32
		for j, p := range r.partitions {
			if j%n == i {
				parts = append(parts, p)
			}
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addrs[parts[0]])
		if err != nil {
			cancel()
			wg.Wait()
			ws.close()
			return nil, fmt.Errorf("bench: raw fetch connection: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			context.AfterFunc(pollCtx, func() { conn.Close() })
			r.rawFetcher(pollCtx, conn, parts)
		}()
	}
	go func() { wg.Wait(); cancel(); close(ws.done) }()
	return ws, nil
}

// leaderAddrs maps each partition to its leader's host:port.
func (r *run) leaderAddrs(ctx context.Context) (map[int32]string, error) {
	cl, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("bench: client: %w", err)
	}
	defer cl.Close()
	resp, err := r.topicMetadata(ctx, cl, r.cfg.Topic)
	if err != nil {
		return nil, err
	}
	brokers := map[int32]string{}
	for _, b := range resp.Brokers {
		brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	out := map[int32]string{}
	for _, mt := range resp.Topics {
		for _, p := range mt.Partitions {
			addr, ok := brokers[p.Leader]
			if !ok {
				return nil, fmt.Errorf("bench: partition %d: leader %d not in metadata", p.Partition, p.Leader)
			}
			out[p.Partition] = addr
		}
	}
	return out, nil
}

// rawFetcher fetches parts over conn until ctx ends.
func (r *run) rawFetcher(ctx context.Context, conn net.Conn, parts []int32) {
	offsets := make(map[int32]int64, len(parts))
	br := bufio.NewReaderSize(conn, 64<<10)
	var frame, reqBuf []byte
	resp := kmsg.NewPtrFetchResponse()
	for corr := int32(1); ctx.Err() == nil; corr++ {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(rawFetchVersion)
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(rawFetchMaxWait/time.Millisecond), 1, rawFetchMaxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = r.cfg.Topic
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], rawFetchPartMaxBytes
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		reqBuf = appendRequestFrame(reqBuf[:0], req, corr)
		t0 := time.Now()
		if _, err := conn.Write(reqBuf); err != nil {
			r.rawFetchFailed(ctx, err)
			return
		}
		var err error
		if frame, err = readFrame(br, frame); err != nil {
			r.rawFetchFailed(ctx, err)
			return
		}
		now := time.Now()
		// Response header v1: correlation id, empty tagged fields.
		if len(frame) < 5 || int32(binary.BigEndian.Uint32(frame)) != corr {
			r.rawFetchFailed(ctx, fmt.Errorf("bad response frame for correlation id %d", corr))
			return
		}
		resp.SetVersion(rawFetchVersion)
		if err := resp.UnsafeReadFrom(frame[5:]); err != nil {
			r.rawFetchFailed(ctx, err)
			return
		}
		measured := r.measuring()
		var records, nbytes int64
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					if p.ErrorCode == kerr.OffsetOutOfRange.Code {
						offsets[p.Partition] = p.LogStartOffset
						continue
					}
					r.st.fail(fmt.Errorf("fetch %s[%d]: %w", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode)))
					continue
				}
				recs, next := scanBatches(p.RecordBatches)
				records += recs
				nbytes += int64(len(p.RecordBatches))
				if next > 0 {
					offsets[p.Partition] = next
				}
				if offsets[p.Partition] >= p.HighWatermark {
					offsets[p.Partition] = p.LogStartOffset // read it again
				}
			}
		}
		if records > 0 {
			r.st.add(measured, now.Sub(t0), records, nbytes, now)
		}
	}
}

func (r *run) rawFetchFailed(ctx context.Context, err error) {
	if ctx.Err() == nil {
		r.st.fail(fmt.Errorf("raw fetch: %w", err))
	}
}

// scanBatches walks the batch headers of records: the number of records in
// its complete batches and the offset after the last one (0 if none).
func scanBatches(b []byte) (records int64, next int64) {
	for len(b) >= 61 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 61 || size > len(b) {
			break // a partial batch at the end (allowed by the protocol)
		}
		base := int64(binary.BigEndian.Uint64(b))
		next = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		records += int64(int32(binary.BigEndian.Uint32(b[57:])))
		b = b[size:]
	}
	return records, next
}

// appendRequestFrame appends req as a client sends it: size, header v2
// (client id chronik-bench, no tagged fields), body.
func appendRequestFrame(b []byte, req kmsg.Request, corr int32) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len("chronik-bench")))
	b = append(b, "chronik-bench"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// readFrame reads one size-prefixed frame into buf (grown as needed).
func readFrame(br *bufio.Reader, buf []byte) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n > 1<<30 {
		return buf, fmt.Errorf("response frame of %d bytes", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(br, buf)
	return buf, err
}
