// Package server wires a broker together: it locks the data directory,
// recovers metadata and partition logs, starts the group committer, the Kafka
// listener and the HTTP listener (metrics, /health, /ready), and shuts all of
// it down in order.
//
// Shutdown order: stop accepting; stop reading from connections but let
// queued replies (produce acks waiting for fsync) finish; wait for the
// connections (bounded by ShutdownTimeout); run a last commit round; close
// the transaction coordinator and the group coordinator (their state is in
// the internal topics __transaction_state and __consumer_offsets); close
// partition logs (sync, indexes, clean markers); close the metadata log;
// release the directory lock.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/chronik-stream/chronik/internal/wal"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronik-stream/chronik/internal/commit"
	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/group"
	"github.com/chronik-stream/chronik/internal/kafka"
	"github.com/chronik-stream/chronik/internal/metadata"
	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/chronik-stream/chronik/internal/txn"
	"github.com/chronik-stream/chronik/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release, set by the linker (-X) for builds.
var Version = "0.1.0-dev"

// Server is one running broker.
type Server struct {
	cfg config.Config
	log *slog.Logger

	lockFile  *os.File
	meta      *metadata.Store
	wal, wal2 *wal.WAL
	committer *commit.Committer
	broker    *kafka.Broker
	groups    *group.Coordinator
	txn       *txn.Coordinator
	registry  *prometheus.Registry
	metrics   *metrics

	kafkaLn net.Listener
	httpLn  net.Listener
	httpSrv *http.Server

	ctx       context.Context
	cancel    context.CancelFunc
	commitEnd chan struct{}

	connMu     sync.Mutex
	conns      map[*wire.Conn]struct{}
	connsPerIP map[string]int // open connections by client IP, for max.connections.per.ip
	connWG     sync.WaitGroup
	wireLog    *slog.Logger // one for every connection: a With per connection costs memory

	// Refused connections are logged at most once per rejectLogEvery;
	// only the accept loop touches these.
	rejectLoggedAt time.Time
	rejectsQuiet   int

	ready    atomic.Bool
	shutOnce sync.Once
	shutErr  error
}

// New recovers storage and binds the listeners; call Serve to start serving.
func New(cfg config.Config, lg *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: lg, conns: map[*wire.Conn]struct{}{}, connsPerIP: map[string]int{},
		wireLog: lg.With("component", "wire"), commitEnd: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.closeStorage()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: create data dir %s: %w (check permissions or set --data-dir)", cfg.DataDir, err)
	}
	if err := s.lockDataDir(); err != nil {
		return nil, err
	}
	// HTTP first so /health answers during a long recovery.
	if cfg.MetricsPort >= 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.MetricsPort)))
		if err != nil {
			return nil, fmt.Errorf("server: metrics listener on port %d: %w (set --metrics-port, or -1 to disable)", cfg.MetricsPort, err)
		}
		s.httpLn = ln
	}
	s.registry = prometheus.NewRegistry()
	s.startHTTP()

	var err error
	// With --cluster-peers this waits until the quorum has a leader and
	// this node has caught up with it.
	if s.meta, err = metadata.OpenWith(metadata.Options{DataDir: cfg.DataDir, NodeID: cfg.NodeID, Peers: cfg.Peers(),
		BrokerSessionTimeout: cfg.BrokerSessionTimeout, Logger: lg.With("component", "metadata")}); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s.registry, cfg)
	// The WAL is opened even when disabled, so records left by a run with it
	// enabled are still replayed.
	walDir := filepath.Join(cfg.DataDir, "__wal")
	if s.wal, err = wal.Open(walDir, lg.With("component", "wal")); err != nil {
		return nil, err
	}
	if s.wal2, err = wal.OpenFile(walDir, wal.SecondFile, lg.With("component", "wal")); err != nil {
		s.wal.Close()
		return nil, err
	}
	commitWAL, commitWAL2 := s.wal, s.wal2
	if !cfg.GroupCommitWAL {
		commitWAL, commitWAL2 = nil, nil
	}
	s.committer = commit.New(commit.Options{
		Logger: lg.With("component", "commit"), Observe: s.metrics.observeRound,
		MaxBufferBytes: cfg.ProduceProfile.Bounds().MaxBufferBytes,
		WAL:            commitWAL, WAL2: commitWAL2,
		SyncFS: func() error { return storage.SyncFS(cfg.DataDir) },
	})
	ln, err := net.Listen("tcp", cfg.KafkaAddr())
	if err != nil {
		return nil, fmt.Errorf("server: kafka listener %s: %w (is another broker running? set --kafka-port or --listeners)", cfg.KafkaListener(), err)
	}
	s.kafkaLn = ln
	adv := cfg.AdvertisedListener(ln.Addr().(*net.TCPAddr).Port)
	host, port := adv.Host, int32(adv.Port)
	s.broker, err = kafka.New(kafka.Options{
		DataDir: cfg.DataDir, NodeID: cfg.NodeID, AdvertisedHost: host, AdvertisedPort: port,
		AutoCreateTopics: cfg.AutoCreateTopics, DefaultPartitions: cfg.DefaultPartitions,
		DefaultReplicationFactor: int16(cfg.DefaultReplicationFactor), ReplicaLagMax: cfg.ReplicaLagMax,
		Defaults: metadata.BrokerDefaults{
			MessageMaxBytes: cfg.MessageMaxBytes, SegmentBytes: cfg.SegmentBytes,
			SegmentMs: cfg.SegmentAge.Milliseconds(), RetentionMs: cfg.RetentionAge.Milliseconds(),
			RetentionBytes: cfg.RetentionBytes,
		},
		BrokerConfigs: brokerConfigs(cfg), MaxRequestBytes: cfg.MaxRequestBytes,
		Logger: lg.With("component", "kafka"),
		WAL:    s.wal, WAL2: s.wal2,
		OffsetsRetention:           cfg.OffsetsRetention,
		InitialRebalanceDelay:      cfg.GroupInitialRebalanceDelay,
		TransactionVersion:         int16(cfg.TransactionVersion),
		NoClientTelemetry:          !cfg.ClientMetrics,
		TelemetryMaxBytes:          cfg.TelemetryMaxBytes,
		DropBehind:                 cfg.DropBehind,
		ProducerIDExpiration:       cfg.ProducerIDExpiration,
		MaxOpenFiles:               openFilesBudget(cfg.MaxOpenFiles, cfg.MaxConnections, lg),
		RecoveryCheckpointInterval: cfg.RecoveryCheckpointInterval,
		NoFetchZeroCopy:            !cfg.FetchZeroCopy,
	}, s.meta, s.committer)
	if err != nil {
		return nil, err
	}
	// The broker registers with the metadata quorum (alone: with itself);
	// Metadata and DescribeCluster list the registered brokers.
	if err := s.meta.Register(metadata.BrokerOptions{Listeners: []metadata.Listener{{Name: adv.Name, Host: host, Port: port}},
		Rack: cfg.BrokerRack, HeartbeatInterval: cfg.BrokerHeartbeatInterval}); err != nil {
		return nil, fmt.Errorf("server: register with the metadata quorum: %w", err)
	}
	// A new cluster's internal topics are placed over the brokers
	// registered when the first broker creates them: wait (bounded) for
	// every voter, so coordinators spread over all of them.
	if peers := cfg.Peers(); len(peers) > 0 && s.meta.Image().Topics[kafka.TxnStateTopic] == nil {
		if !s.meta.WaitBrokers(len(peers), brokersWait) {
			lg.Warn("not every broker of --cluster-peers registered in time; internal topics are placed over the registered ones",
				"wait", brokersWait, "registered", len(s.meta.Image().Brokers), "voters", len(peers))
		}
	}
	// The committer runs before the coordinators open: their writes (the
	// offsets migration, transaction recovery's markers) wait for rounds.
	go func() {
		defer close(s.commitEnd)
		s.committer.Run(s.ctx)
	}()
	offsets, err := s.broker.EnsureInternalTopic(kafka.OffsetsTopic, cfg.OffsetsTopicPartitions)
	if err != nil {
		s.cancel()
		<-s.commitEnd
		return nil, err
	}
	if s.groups, err = group.Open(group.Options{
		DataDir: cfg.DataDir, Logger: lg.With("component", "group"), OffsetsRetention: cfg.OffsetsRetention,
		ConsumerSessionTimeout: cfg.ConsumerGroupSessionTimeout, ConsumerHeartbeatInterval: cfg.ConsumerGroupHeartbeatInterval,
		Offsets:               offsets,
		InitialRebalanceDelay: cfg.GroupInitialRebalanceDelay,
		Topics:                s.broker.GroupTopics,
	}); err != nil {
		s.cancel()
		<-s.commitEnd
		return nil, err
	}
	s.broker.SetGroups(s.groups)
	s.metrics.registerBroker(s.registry, s.broker, s.committer, s)
	s.broker.StartRetention(cfg.RetentionCheck)
	// After the committer runs: the migration waits for rounds and
	// recovery may write transaction markers.
	txnState, err := s.broker.EnsureInternalTopic(kafka.TxnStateTopic, cfg.TransactionStateLogPartitions)
	if err != nil {
		s.cancel()
		<-s.commitEnd
		return nil, err
	}
	if s.txn, err = txn.Open(txn.Options{
		State: txnState, DataDir: cfg.DataDir, Logger: lg.With("component", "txn"), Markers: s.broker.TxnMarkers(),
		IDExpiration: cfg.TransactionalIDExpiration,
	}); err != nil {
		s.cancel()
		<-s.commitEnd
		return nil, err
	}
	s.broker.SetTxn(s.txn)
	ok = true
	return s, nil
}

// brokersWait bounds how long a clustered broker waits at start for the
// other voters to register before creating internal topics.
const brokersWait = 15 * time.Second

// KafkaAddr is the bound Kafka listener address.
func (s *Server) KafkaAddr() string { return s.kafkaLn.Addr().String() }

// HTTPAddr is the bound metrics listener address ("" if disabled).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Serve accepts Kafka connections until Shutdown. It returns nil after a
// clean shutdown.
func (s *Server) Serve() error {
	s.ready.Store(true)
	s.log.Info("chronik-server ready", "kafka", s.KafkaAddr(), "http", s.HTTPAddr(),
		"data_dir", s.cfg.DataDir, "profile", s.cfg.ProduceProfile.String(), "version", Version)
	var tempDelay time.Duration
	for {
		nc, err := s.kafkaLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			if tempDelay == 0 {
				tempDelay = 5 * time.Millisecond
			} else if tempDelay *= 2; tempDelay > time.Second {
				tempDelay = time.Second
			}
			s.log.Error("accept failed", "err", err, "retry_in", tempDelay)
			time.Sleep(tempDelay)
			continue
		}
		tempDelay = 0
		s.serveConn(nc)
	}
}

// rejectLogEvery rate-limits the log line for refused connections: a client
// retrying in a loop must not flood the log.
const rejectLogEvery = 10 * time.Second

func (s *Server) serveConn(nc net.Conn) {
	ip := remoteIP(nc)
	s.connMu.Lock()
	reason, limit := "", 0
	switch {
	case s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections:
		reason, limit = "max_connections", s.cfg.MaxConnections
	case s.cfg.MaxConnectionsPerIP > 0 && s.connsPerIP[ip] >= s.cfg.MaxConnectionsPerIP:
		reason, limit = "max_connections_per_ip", s.cfg.MaxConnectionsPerIP
	}
	if reason != "" {
		s.connMu.Unlock()
		s.refuse(nc, reason, limit)
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := wire.NewConn(nc, s.broker, wire.Options{
		MaxRequestBytes: s.cfg.MaxRequestBytes,
		IdleTimeout:     10 * time.Minute, // connections.max.idle.ms
		Logger:          s.wireLog,
		Hooks:           s.metrics.wireHooks(),
	})
	s.conns[c] = struct{}{}
	s.connsPerIP[ip]++
	s.connWG.Add(1)
	s.connMu.Unlock()
	s.metrics.connections.Inc()
	go func() {
		defer s.connWG.Done()
		defer s.metrics.connections.Dec()
		c.Serve(s.ctx)
		s.connMu.Lock()
		delete(s.conns, c)
		if s.connsPerIP[ip]--; s.connsPerIP[ip] <= 0 {
			delete(s.connsPerIP, ip)
		}
		s.connMu.Unlock()
	}()
}

// refuse closes a connection beyond a limit at once, as Kafka does: the
// client sees the connection closed and retries after its backoff.
func (s *Server) refuse(nc net.Conn, reason string, limit int) {
	nc.Close()
	s.metrics.rejected.WithLabelValues(reason).Inc()
	if now := time.Now(); now.Sub(s.rejectLoggedAt) >= rejectLogEvery {
		s.log.Warn("refusing connection: limit reached", "remote", nc.RemoteAddr().String(), "reason", reason,
			"limit", limit, "refused_unlogged", s.rejectsQuiet,
			"hint", "raise --max-connections / --max-connections-per-ip, or find the client opening so many")
		s.rejectLoggedAt, s.rejectsQuiet = now, 0
	} else {
		s.rejectsQuiet++
	}
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}

// Shutdown stops the broker cleanly (see the package comment). Safe to call
// more than once.
func (s *Server) Shutdown() error {
	s.shutOnce.Do(func() {
		start := time.Now()
		s.ready.Store(false)
		if s.kafkaLn != nil {
			s.kafkaLn.Close()
		}
		if s.meta != nil {
			// In a cluster: fenced now, so clients stop waiting on
			// this broker and its next start need not wait out the
			// session (a broker alone does nothing here).
			t0 := time.Now()
			if err := s.meta.Deregister(time.Second); err != nil {
				s.log.Warn("could not end this broker's session; the controller fences it after the session timeout", "err", err)
			} else if len(s.cfg.Peers()) > 0 {
				s.log.Info("broker session ended: fenced for shutdown", "duration", time.Since(t0).Round(time.Millisecond))
			}
		}
		s.connMu.Lock()
		for c := range s.conns {
			c.StopReading()
		}
		s.connMu.Unlock()
		if s.broker != nil {
			s.broker.EndWaits() // parked fetches answer now, not at their max wait
		}
		done := make(chan struct{})
		go func() { s.connWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.log.Warn("shutdown timeout: closing connections with requests still in flight", "timeout", s.cfg.ShutdownTimeout)
		}
		s.cancel() // closes remaining connections and runs the last commit round
		<-s.commitEnd
		s.connWG.Wait()
		s.shutErr = s.closeStorage()
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.httpSrv.Shutdown(ctx)
			cancel()
		}
		s.log.Info("chronik-server stopped", "duration", time.Since(start).Round(time.Millisecond), "err", s.shutErr)
	})
	return s.shutErr
}

func (s *Server) closeStorage() error {
	var errs []error
	if s.txn != nil { // first: completing a transaction uses groups and logs
		if s.broker != nil {
			s.broker.SetTxn(nil)
		}
		errs = append(errs, s.txn.Close())
		s.txn = nil
	}
	if s.groups != nil {
		if s.broker != nil {
			s.broker.SetGroups(nil)
		}
		errs = append(errs, s.groups.Close())
		s.groups = nil
	}
	if s.broker != nil {
		s.broker.StopRetention() // before Close: a pass may be deleting segments
		err := s.broker.Close()
		errs = append(errs, err)
		if err == nil && s.wal != nil {
			// Every log was fsynced by Close: the WAL holds nothing needed.
			errs = append(errs, s.wal.Reset(), s.wal2.Reset())
		}
		s.broker = nil
	}
	if s.wal != nil {
		errs = append(errs, s.wal.Close(), s.wal2.Close())
		s.wal, s.wal2 = nil, nil
	}
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
		s.meta = nil
	}
	if s.kafkaLn != nil {
		s.kafkaLn.Close()
	}
	if s.lockFile != nil {
		syscall.Flock(int(s.lockFile.Fd()), syscall.LOCK_UN)
		s.lockFile.Close()
		s.lockFile = nil
	}
	return errors.Join(errs...)
}

// lockDataDir takes an exclusive flock on <data>/.lock so two brokers can
// never write the same logs.
func (s *Server) lockDataDir() error {
	path := filepath.Join(s.cfg.DataDir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("server: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("server: data dir %s is in use by another chronik-server (lock %s: %w); stop it or use another --data-dir", s.cfg.DataDir, path, err)
	}
	s.lockFile = f
	return nil
}
