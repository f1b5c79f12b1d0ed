package kafka

// Requests one broker sends another (issue 14): transaction markers for
// partitions another broker leads (WriteTxnMarkers) and, on a partition
// leader, the enrolment check of a transactional produce against the
// transaction's coordinator elsewhere (AddPartitionsToTxn). Each peer is
// reached at the first listener of its registration through a franz-go
// client seeded with that one address, so a request goes to exactly that
// broker; the client is made on first use and replaced when the peer
// registers at another address.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// peers holds one client per other broker.
type peers struct {
	mu      sync.Mutex
	clients map[int32]*peerClient
	closed  bool
}

type peerClient struct {
	addr string
	cl   *kgo.Client
}

// peerTimeout bounds one inter-broker request.
const peerTimeout = 10 * time.Second

// askPeer sends req to broker id and returns its response.
func (b *Broker) askPeer(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	br := b.meta.Image().Brokers[id]
	if br == nil || len(br.Listeners) == 0 {
		return nil, fmt.Errorf("kafka: broker %d is not registered", id)
	}
	addr := net.JoinHostPort(br.Listeners[0].Host, strconv.Itoa(int(br.Listeners[0].Port)))
	b.peers.mu.Lock()
	if b.peers.closed {
		b.peers.mu.Unlock()
		return nil, fmt.Errorf("kafka: broker closing")
	}
	pc := b.peers.clients[id]
	if pc == nil || pc.addr != addr {
		if pc != nil {
			go pc.cl.Close()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("chronik-broker-"+strconv.Itoa(int(b.opts.NodeID))),
			kgo.DialTimeout(5*time.Second), kgo.RequestRetries(0))
		if err != nil {
			b.peers.mu.Unlock()
			return nil, err
		}
		if b.peers.clients == nil {
			b.peers.clients = map[int32]*peerClient{}
		}
		pc = &peerClient{addr: addr, cl: cl}
		b.peers.clients[id] = pc
	}
	b.peers.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	resp, err := pc.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("kafka: %s to broker %d at %s: %w", kmsg.NameForKey(req.Key()), id, addr, err)
	}
	return resp, nil
}

// closePeers closes every inter-broker client (Broker.Close).
func (b *Broker) closePeers() {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	b.peers.closed = true
	for _, pc := range b.peers.clients {
		pc.cl.Close()
	}
	b.peers.clients = nil
}
