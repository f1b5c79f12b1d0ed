// Command diskbw measures the sequential write bandwidth of the disk under a
// directory the way a log uses it: 1 MiB writes of incompressible data, with
// an fsync every --sync-every bytes and at the end. bench/RESULTS.md compares
// chronik's produce bandwidth with it.
//
//	go run ./bench/diskbw --dir /work --size 3GiB --sync-every 8MiB --runs 3
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure")
	sizeMiB := flag.Int64("size-mib", 3072, "MiB written per run")
	syncMiB := flag.Int64("sync-every-mib", 8, "fsync after this many MiB (0: only at the end)")
	runs := flag.Int("runs", 3, "runs")
	flag.Parse()
	buf := make([]byte, 256<<20)
	rand.Read(buf)
	for r := 0; r < *runs; r++ {
		path := filepath.Join(*dir, fmt.Sprintf("diskbw-%d.tmp", os.Getpid()))
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		start := time.Now()
		var n, since int64
		for n < *sizeMiB<<20 {
			off := n % int64(len(buf))
			if _, err := f.Write(buf[off : off+1<<20]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			n += 1 << 20
			since += 1 << 20
			if *syncMiB > 0 && since >= *syncMiB<<20 {
				f.Sync()
				since = 0
			}
		}
		f.Sync()
		el := time.Since(start)
		f.Close()
		os.Remove(path)
		fmt.Printf("run %d: %d MiB in %.2f s = %.0f MB/s (fsync every %d MiB)\n", r+1, n>>20, el.Seconds(), float64(n)/el.Seconds()/1e6, *syncMiB)
	}
}
