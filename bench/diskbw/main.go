// Command diskbw measures the sequential write bandwidth of the disk under a
// directory, three ways (bench/RESULTS.md compares chronik's durable produce
// bandwidth with each):
//
//   - buffered (default): 1 MiB write(2)s of incompressible data through the
//     page cache, an fsync every --sync-every-mib (0: only at the end), the
//     way a log without group commit writes;
//
//   - --direct: O_DIRECT 1 MiB writes at --depth writes in flight (like
//     fio --direct=1 --bs=1M --iodepth=N --rw=write), an fdatasync every
//     --sync-every-mib (0: once at the end, like fio --end_fsync=1): the
//     device's own sequential bandwidth, free of page-cache copies and of
//     the CPU the broker competes for. With a sync every few MiB it is what
//     a durable log could reach on the device: each fdatasync also flushes
//     the device's write cache, and writes wait for it.
//
//     go run ./bench/diskbw --dir /work --size-mib 3072 --sync-every-mib 4 --runs 3
//     go run ./bench/diskbw --dir /work --size-mib 3072 --direct --depth 4 --sync-every-mib 0
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const chunk = 1 << 20

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure")
	sizeMiB := flag.Int64("size-mib", 3072, "MiB written per run")
	syncMiB := flag.Int64("sync-every-mib", 8, "fsync (fdatasync with --direct) after this many MiB (0: only at the end)")
	direct := flag.Bool("direct", false, "O_DIRECT writes (the device's bandwidth, no page cache)")
	depth := flag.Int("depth", 4, "with --direct: writes in flight")
	runs := flag.Int("runs", 3, "runs")
	flag.Parse()
	// 256 MiB of random data, 4 KiB aligned for O_DIRECT.
	raw := make([]byte, 256<<20+4096)
	pad := (4096 - int(uintptr(unsafe.Pointer(&raw[0]))%4096)) % 4096
	buf := raw[pad : pad+256<<20]
	rand.Read(buf)
	for r := 0; r < *runs; r++ {
		path := filepath.Join(*dir, fmt.Sprintf("diskbw-%d.tmp", os.Getpid()))
		var el time.Duration
		var n int64
		var err error
		if *direct {
			n, el, err = runDirect(path, buf, *sizeMiB<<20, *syncMiB<<20, *depth)
		} else {
			n, el, err = runBuffered(path, buf, *sizeMiB<<20, *syncMiB<<20)
		}
		os.Remove(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "diskbw:", err)
			os.Exit(1)
		}
		how := fmt.Sprintf("fsync every %d MiB", *syncMiB)
		if *direct {
			how = fmt.Sprintf("O_DIRECT, %d in flight, fdatasync every %d MiB", *depth, *syncMiB)
		}
		if *syncMiB == 0 {
			how = strings.Replace(how, fmt.Sprintf("every %d MiB", *syncMiB), "at the end", 1)
		}
		fmt.Printf("run %d: %d MiB in %.2f s = %.0f MB/s (%s)\n", r+1, n>>20, el.Seconds(), float64(n)/el.Seconds()/1e6, how)
	}
}

func runBuffered(path string, buf []byte, size, syncEvery int64) (int64, time.Duration, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	start := time.Now()
	var n, since int64
	for n < size {
		off := n % int64(len(buf))
		if _, err := f.Write(buf[off : off+chunk]); err != nil {
			return n, 0, err
		}
		n += chunk
		since += chunk
		if syncEvery > 0 && since >= syncEvery {
			if err := f.Sync(); err != nil {
				return n, 0, err
			}
			since = 0
		}
	}
	if err := f.Sync(); err != nil {
		return n, 0, err
	}
	return n, time.Since(start), nil
}

// runDirect writes size bytes sequentially with O_DIRECT in rounds of
// syncEvery bytes (0: one round), depth writers each taking the next 1 MiB
// offset of the round, and fdatasyncs after each round.
func runDirect(path string, buf []byte, size, syncEvery int64, depth int) (int64, time.Duration, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_DIRECT, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("%w (does the file system support O_DIRECT?)", err)
	}
	defer f.Close()
	if syncEvery <= 0 {
		syncEvery = size
	}
	start := time.Now()
	for from := int64(0); from < size; from += syncEvery {
		to := min(from+syncEvery, size)
		var next atomic.Int64
		next.Store(from)
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range max(depth, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					off := next.Add(chunk) - chunk
					if off >= to {
						return
					}
					b := off % int64(len(buf))
					if _, err := f.WriteAt(buf[b:b+chunk], off); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, err
		}
	}
	return size, time.Since(start), nil
}
