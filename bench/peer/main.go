// Command peer runs franz-go's kfake, an in-memory Kafka-compatible broker,
// with disk persistence (DataDir) and per-batch fsync (SyncWrites), as the
// comparison peer for chronik-bench. It prints one line when ready:
//
//	peer ready addr=127.0.0.1:9192 data_dir=/tmp/chronik-peer-123
//
// and removes its data directory on exit (SIGINT/SIGTERM): under load kfake
// writes gigabytes in seconds.
//
//	go run ./bench/peer --port 9192 [--data-dir DIR] [--sync-writes=true]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	port := fs.Int("port", 9192, "Kafka port on 127.0.0.1 (0: any free port)")
	dataDir := fs.String("data-dir", "", "data directory; must not exist or be empty; removed on exit (default: a new temp dir)")
	syncWrites := fs.Bool("sync-writes", true, "fsync every batch (durable like chronik's acks); false relies on the page cache")
	partitions := fs.Int("partitions", 3, "partitions of auto-created topics")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(os.Stderr, "peer: --port %d out of range\n", *port)
		return 2
	}
	dir, err := prepareDir(*dataDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.DataDir(dir),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: starting kfake: %v\n", err)
		return 1
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("peer ready addr=%s data_dir=%s sync_writes=%v\n", c.ListenAddrs()[0], dir, *syncWrites)
	<-sig
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-sig: // a second signal: skip the orderly close, still remove the data
	}
	return 0
}

// prepareDir returns the data directory to use: a new temp dir when dir is
// empty, else dir, which must not exist or be empty (it is removed on exit,
// so it must hold nothing else).
func prepareDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "chronik-peer-")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return dir, os.MkdirAll(dir, 0o755)
	case err != nil:
		return "", err
	case len(entries) > 0:
		return "", fmt.Errorf("--data-dir %s is not empty (it is deleted on exit, so it must be fresh)", dir)
	}
	return dir, nil
}
