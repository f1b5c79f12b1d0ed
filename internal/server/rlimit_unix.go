//go:build unix

package server

import "syscall"

func getFileLimit() (fileLimit, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fileLimit{}, err
	}
	return fileLimit{cur: uint64(l.Cur), max: uint64(l.Max)}, nil
}

func setFileLimit(fl fileLimit) error {
	var l syscall.Rlimit
	setRlim(&l.Cur, fl.cur)
	setRlim(&l.Max, fl.max)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// setRlim assigns v to a Rlimit field: int64 on some BSDs, uint64 elsewhere
// (RLIM_INFINITY round-trips through the conversion either way).
func setRlim[T ~int64 | ~uint64](p *T, v uint64) { *p = T(v) }
