// Command chronik-server runs a Kafka-compatible broker.
//
//	chronik-server start [flags]      run the broker (alias: standalone)
//	chronik-server version            print the version
//	chronik-server config [flags]     print the effective settings and exit
//	chronik-server cluster status [HOST:PORT]
//	                                  what a running broker says of its cluster
//
// Flags may come before or after the subcommand; every flag also has a
// CHRONIK_* environment variable (see README.md).
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chronik-stream/chronik/internal/config"
	"github.com/chronik-stream/chronik/internal/server"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }

const usage = `chronik-server: a Kafka-compatible streaming broker

Usage:
  chronik-server start [flags]     run the broker (alias: standalone)
  chronik-server version           print the version
  chronik-server config [flags]    print the effective settings and exit
  chronik-server cluster status [HOST:PORT]
                                   the brokers and the metadata quorum, as a running broker
                                   (default: this config's own address) describes them

Flags (each also settable by the CHRONIK_* variable shown):
`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, pos, err := config.Load(args, getenv, io.Discard)
	cmd := ""
	if len(pos) > 0 {
		cmd = pos[0]
	}
	if err != nil {
		if strings.Contains(err.Error(), "help requested") {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "chronik-server: %v\n", err)
		fmt.Fprintln(stderr, "run 'chronik-server --help' for the list of settings")
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "chronik-server %s\n", server.Version)
		return 0
	case "config":
		for _, s := range config.Settings() {
			v, _ := cfg.Value(s.Flags[0])
			fmt.Fprintf(stdout, "--%-26s %-28s %-14q default %q\n", s.Flags[0], s.Envs[0], v, s.Default)
		}
		return 0
	case "cluster":
		if len(pos) < 2 || pos[1] != "status" || len(pos) > 3 {
			fmt.Fprintln(stderr, "chronik-server: usage: chronik-server cluster status [HOST:PORT]")
			return 2
		}
		addr := ""
		if len(pos) == 3 {
			addr = pos[2]
		}
		return clusterStatus(&cfg, addr, stdout, stderr)
	case "start", "standalone":
	case "", "help":
		printUsage(stdout)
		if cmd == "" {
			return 2
		}
		return 0
	default:
		fmt.Fprintf(stderr, "chronik-server: unknown command %q (want start, standalone, version, config or cluster)\n", cmd)
		return 2
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "chronik-server: unexpected argument %q\n", pos[1])
		return 2
	}
	lg := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	server.RaiseFileLimit(lg)
	srv, err := server.New(cfg, lg)
	if err != nil {
		lg.Error("start failed", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		lg.Info("shutting down", "signal", sig.String())
		go func() {
			<-sigs
			lg.Warn("second signal: exiting without a clean shutdown")
			os.Exit(1)
		}()
		srv.Shutdown()
	}()
	if err := srv.Serve(); err != nil {
		lg.Error("serve failed", "err", err)
		srv.Shutdown()
		return 1
	}
	if err := srv.Shutdown(); err != nil {
		return 1
	}
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	for _, s := range config.Settings() {
		names := "--" + strings.Join(s.Flags, ", --")
		names = strings.Replace(names, "--d,", "-d,", 1)
		if strings.HasSuffix(names, "--d") {
			names = strings.TrimSuffix(names, "--d") + "-d"
		}
		fmt.Fprintf(w, "  %s (%s, default %q)\n      %s\n", names, strings.Join(s.Envs, ", "), s.Default, s.Usage)
	}
	fmt.Fprintf(w, "  --config FILE (CHRONIK_CONFIG)\n      TOML file with the same keys, '-' as '_' (e.g. kafka_port = 9092)\n")
}
