package server

import "log/slog"

// fileLimit is the soft and hard RLIMIT_NOFILE. unlimited marks a hard
// limit of RLIM_INFINITY.
type fileLimit struct {
	cur, max uint64
}

// RaiseFileLimit raises the soft limit on open files to the hard limit and
// logs both at Info. Every partition keeps its active segment open (and
// sealed segments while readers use them), so with tens of thousands of
// partitions a soft limit of 1024 or 4096 fails topic creation and the next
// start part-way. The Go runtime (1.19+) already raises the soft limit at
// init on most Unix systems; this makes it explicit, covers the cases it
// does not (a cap below the hard limit), and puts the limit in the log.
// It never fails start: an error is logged and the broker runs with the
// limit it has.
func RaiseFileLimit(lg *slog.Logger) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	before, after, err := raiseFileLimit(getFileLimit, setFileLimit)
	switch {
	case err != nil:
		lg.Warn("could not raise the open file limit", "soft", before.cur, "hard", before.max, "err", err)
	case before.cur != after.cur:
		lg.Info("raised the open file limit", "soft_before", before.cur, "soft", after.cur, "hard", after.max)
	default:
		lg.Info("open file limit", "soft", after.cur, "hard", after.max)
	}
}

// raiseFileLimit sets the soft limit to the hard one. If the system refuses
// that (macOS refuses RLIM_INFINITY and anything above kern.maxfilesperproc),
// it tries fallbackFileLimit. It returns the limits before and after.
func raiseFileLimit(get func() (fileLimit, error), set func(fileLimit) error) (before, after fileLimit, err error) {
	before, err = get()
	if err != nil {
		return before, before, err
	}
	if before.cur >= before.max {
		return before, before, nil
	}
	want := fileLimit{cur: before.max, max: before.max}
	if err = set(want); err != nil {
		fb := min(before.max, fallbackFileLimit)
		if fb <= before.cur {
			return before, before, err
		}
		want.cur = fb
		if err = set(want); err != nil {
			return before, before, err
		}
	}
	after, err = get()
	if err != nil {
		return before, want, err
	}
	return before, after, nil
}

// fallbackFileLimit is tried when the hard limit is refused: macOS's
// OPEN_MAX-sized default for kern.maxfilesperproc.
const fallbackFileLimit = 10240

// openFilesBudget is --max-open-files, or derived from the soft open-file
// limit when that is 0: the limit less a reserve for connections, the WAL
// and the metadata log (a quarter of the limit, at least half of it up to
// 256, and at least --max-connections plus 256 when that is set); at
// least minOpenFiles, and defaultOpenFiles if the limit cannot be read or
// is unlimited.
func openFilesBudget(configured, maxConns int, lg *slog.Logger) int {
	if configured > 0 {
		return configured
	}
	n := defaultOpenFiles
	if l, err := getFileLimit(); err == nil && l.cur > 0 && l.cur < 1<<31 {
		n = budgetFor(int(l.cur), maxConns)
	}
	if lg != nil {
		lg.Info("partition open-file budget", "max_open_files", n)
	}
	return n
}

// budgetFor is the derived budget for a file limit.
func budgetFor(limit, maxConns int) int {
	reserve := max(limit/4, min(256, limit/2))
	if maxConns > 0 {
		reserve = max(reserve, maxConns+256)
	}
	return max(limit-reserve, minOpenFiles)
}

const (
	// defaultOpenFiles is the budget when the limit cannot be read.
	defaultOpenFiles = 4096
	// minOpenFiles keeps a tiny limit from closing partitions on every use.
	minOpenFiles = 64
)
