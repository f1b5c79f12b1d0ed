package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTimes is this process's user and system CPU time.
type cpuTimes struct{ user, sys time.Duration }

func processCPU() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	return cpuTimes{user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano())}
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes { return cpuTimes{a.user - b.user, a.sys - b.sys} }

// scrapeCPUSeconds reads process_cpu_seconds_total from a Prometheus text
// endpoint (the broker's /metrics).
func scrapeCPUSeconds(ctx context.Context, url string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: scraping %s: HTTP %d", url, resp.StatusCode)
	}
	return parseCPUSeconds(bufio.NewScanner(resp.Body))
}

func parseCPUSeconds(sc *bufio.Scanner) (float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "process_cpu_seconds_total") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || (fields[0] != "process_cpu_seconds_total" && !strings.HasPrefix(fields[0], "process_cpu_seconds_total{")) {
			continue
		}
		return strconv.ParseFloat(fields[1], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("bench: no process_cpu_seconds_total in metrics")
}
