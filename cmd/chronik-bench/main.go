// Command chronik-bench is the load tool for chronik-server and any other
// Kafka-compatible broker: produce, consume, round-trip and metadata runs
// with HDR-style latency percentiles, and the produce-profile matrix.
//
//	chronik-bench --bootstrap-servers localhost:9092 --mode produce -c 64 -d 30s -s 256
//	chronik-bench matrix --quick --out bench/results
//
// Exit status: 0 on success, 1 when the run failed or counted failures or
// validation errors, 2 on a bad command line, 130 when interrupted (after
// printing the summary of the part that ran).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chronik-stream/chronik/internal/bench"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "matrix" {
		return matrix(ctx, args[1:])
	}
	cfg, err := bench.ParseArgs(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(bench.Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chronik-bench: %v\n(chronik-bench --help lists the flags)\n", usageText(err))
		return 2
	}
	res, err := bench.Run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chronik-bench: %v\n", err)
		return 1
	}
	if !res.OK() {
		fmt.Fprintf(os.Stderr, "chronik-bench: %d failures, %d validation errors\n", res.Failures, validationErrors(res))
		return 1
	}
	if ctx.Err() != nil {
		return 130 // interrupted: the summary covers the part that ran
	}
	return 0
}

func matrix(ctx context.Context, args []string) int {
	mc, err := bench.ParseMatrixArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(bench.MatrixUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chronik-bench matrix: %v\n(chronik-bench matrix --help lists the flags)\n", usageText(err))
		return 2
	}
	rep, err := bench.RunMatrix(ctx, mc, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chronik-bench matrix: %v\n", err)
		return 1
	}
	if n := rep.FailedCells(); n > 0 {
		fmt.Fprintf(os.Stderr, "chronik-bench matrix: %d cells had failures or errors (see the report)\n", n)
		return 1
	}
	return 0
}

// usageText drops the package prefix from a usage error.
func usageText(err error) string {
	msg := err.Error()
	prefix := bench.ErrUsage.Error() + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

func validationErrors(r *bench.Result) int64 {
	if r.Validation == nil {
		return 0
	}
	return r.Validation.Errors()
}
