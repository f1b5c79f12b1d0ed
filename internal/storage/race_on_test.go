//go:build race

package storage

// raceEnabled: the race detector adds allocations, so allocation counts are
// only checked without it.
const raceEnabled = true
