// Command conns measures what idle connections cost a broker and how it
// serves connection storms. It talks raw Kafka over TCP (one ApiVersions v3
// request per connection, no client library), to 127.0.0.1 only.
//
// Idle mode opens -n connections, sends one ApiVersions on each, keeps them
// open and reports the broker's RSS growth per connection (VmRSS of -pid, or
// process_resident_memory_bytes from -metrics). Storm mode opens -rate
// connections per second for -duration, each doing one ApiVersions and
// closing, and reports successes, failures and latency percentiles.
//
//	go run ./bench/conns -addr 127.0.0.1:9092 -pid $(pgrep -n chronik-server) -n 10000
//	go run ./bench/conns -addr 127.0.0.1:9092 -mode storm -rate 1000 -duration 10s
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	maxConns    = 15000 // the client holds one fd per connection too
	maxRate     = 5000
	maxDuration = 2 * time.Minute
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9092", "broker Kafka address (127.0.0.1 only)")
	mode := flag.String("mode", "idle", "idle or storm")
	n := flag.Int("n", 2000, "idle: connections to open")
	pid := flag.Int("pid", 0, "idle: broker pid, to read VmRSS from /proc/<pid>/status")
	metrics := flag.String("metrics", "", "idle: broker metrics URL (http://127.0.0.1:9093/metrics), if no -pid")
	hold := flag.Duration("hold", 0, "idle: keep the connections open this long after measuring")
	rate := flag.Int("rate", 1000, "storm: connects per second")
	duration := flag.Duration("duration", 10*time.Second, "storm: how long")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		fail("conns: -addr must be 127.0.0.1:PORT")
	}
	switch *mode {
	case "idle":
		if *n < 1 || *n > maxConns {
			fail(fmt.Sprintf("conns: -n must be 1-%d", maxConns))
		}
		idle(*addr, *n, *pid, *metrics, *hold)
	case "storm":
		if *rate < 1 || *rate > maxRate || *duration <= 0 || *duration > maxDuration {
			fail(fmt.Sprintf("conns: -rate 1-%d, -duration up to %v", maxRate, maxDuration))
		}
		storm(*addr, *rate, *duration)
	default:
		fail("conns: -mode is idle or storm")
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}

// apiVersions is one ApiVersions v3 request frame (header v2).
func apiVersions(corr int32) []byte {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "chronik-bench-conns"
	req.ClientSoftwareVersion = "1"
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.Version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 5)
	b = append(b, "conns"...)
	b = append(b, 0) // header tagged fields
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// roundTrip sends one ApiVersions on c and reads the whole response.
func roundTrip(c net.Conn, corr int32) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(apiVersions(corr)); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	if size < 4 || size > 1<<20 {
		return fmt.Errorf("response size %d", size)
	}
	_, err := io.CopyN(io.Discard, c, int64(size-4))
	return err
}

func rss(pid int, metricsURL string) (int64, error) {
	if pid > 0 {
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return 0, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				return kb << 10, err
			}
		}
		return 0, errors.New("no VmRSS")
	}
	if metricsURL == "" {
		return 0, errors.New("set -pid or -metrics")
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(rest, 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no process_resident_memory_bytes")
}

func idle(addr string, n, pid int, metricsURL string, hold time.Duration) {
	before, err := rss(pid, metricsURL)
	if err != nil {
		fail("conns: " + err.Error())
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	failed := 0
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err == nil {
			err = roundTrip(c, int32(i))
		}
		if err != nil {
			failed++
			if c != nil {
				c.Close()
			}
			if failed <= 3 {
				fmt.Fprintln(os.Stderr, "conns:", err)
			}
			continue
		}
		conns = append(conns, c)
	}
	opened := time.Since(start)
	time.Sleep(2 * time.Second) // let the broker settle (GC, scavenger)
	after, err := rss(pid, metricsURL)
	if err != nil {
		fail("conns: " + err.Error())
	}
	// Every connection is still served after the measurement.
	alive := 0
	for i, c := range conns {
		if roundTrip(c, int32(n+i)) == nil {
			alive++
		}
	}
	fmt.Printf("idle: %d connections open (%d failed) in %v; RSS %.1f -> %.1f MB: %.1f KB per connection; %d answered a second ApiVersions\n",
		len(conns), failed, opened.Round(time.Millisecond), float64(before)/1e6, float64(after)/1e6,
		float64(after-before)/float64(max(len(conns), 1))/1024, alive)
	time.Sleep(hold)
}

func storm(addr string, rate int, duration time.Duration) {
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr atomic.Value
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(duration)
	var corr int32
	for now := time.Now(); now.Before(end); now = <-tick.C {
		corr++
		wg.Add(1)
		go func(corr int32) {
			defer wg.Done()
			start := time.Now()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err == nil {
				err = roundTrip(c, corr)
				c.Close()
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			d := time.Since(start)
			ok.Add(1)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}(corr)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("storm: %d connects/s for %v: %d started (the ticker drops ticks when the client lags), %d ok, %d failed; connect+ApiVersions p50 %v p99 %v max %v\n",
		rate, duration, corr, ok.Load(), failed.Load(), pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if e := firstErr.Load(); e != nil {
		fmt.Println("first error:", e)
	}
}
