package config

import (
	"fmt"
	"strings"
	"time"
)

// Profile is a produce flush profile (CHRONIK_PRODUCE_PROFILE). It bounds a
// group-commit round: how many produce batches one fsync may cover, how long
// the committer may linger for more, and how many unsynced bytes may be
// buffered before producers are made to wait.
type Profile int

// The profiles, numbered as the chronik_produce_profile_active gauge reports them.
const (
	ProfileLowLatency Profile = iota
	ProfileBalanced
	ProfileHighThroughput
	ProfileExtreme
)

var profileNames = [...]string{"low-latency", "balanced", "high-throughput", "extreme"}

func (p Profile) String() string {
	if p < 0 || int(p) >= len(profileNames) {
		return fmt.Sprintf("profile(%d)", int(p))
	}
	return profileNames[p]
}

// ParseProfile accepts the profile names (case-insensitive, '_' for '-').
func ParseProfile(s string) (Profile, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	for i, name := range profileNames {
		if n == name {
			return Profile(i), nil
		}
	}
	return 0, fmt.Errorf("unknown produce profile %q (valid: %s)", s, strings.Join(profileNames[:], ", "))
}

// ProfileBounds are the limits of one group-commit round.
type ProfileBounds struct {
	MaxBatchesPerFlush int
	MaxLinger          time.Duration
	MaxBufferBytes     int64
}

// Bounds returns the profile's limits (see chronik-reference.md).
func (p Profile) Bounds() ProfileBounds {
	switch p {
	case ProfileLowLatency:
		return ProfileBounds{1, time.Millisecond, 16 << 20}
	case ProfileBalanced:
		return ProfileBounds{10, 100 * time.Millisecond, 32 << 20}
	case ProfileExtreme:
		return ProfileBounds{500, 2000 * time.Millisecond, 512 << 20}
	default:
		return ProfileBounds{100, 500 * time.Millisecond, 128 << 20}
	}
}
