//go:build !linux

package cpuclock

import "time"

// Thread is unavailable off Linux; eval falls back to wall time.
func Thread() (clock func() time.Duration, ok bool) { return nil, false }
