// Package cpuclock reads the CPU time of the calling OS thread, to time work
// on a shared machine by what it costs rather than by the wall clock.
package cpuclock

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID of clock_gettime(2).
const clockThreadCPUTime = 3

// Thread returns a clock reading the CPU time of the calling OS
// thread, so that fits timed on a busy machine are charged only for their
// own work; the caller must keep the goroutine on one thread
// (runtime.LockOSThread). ok is false if the clock is unavailable.
func Thread() (clock func() time.Duration, ok bool) {
	read := func() (time.Duration, bool) {
		var ts syscall.Timespec
		_, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
		if e != 0 {
			return 0, false
		}
		return time.Duration(ts.Nano()), true
	}
	if _, ok := read(); !ok {
		return nil, false
	}
	return func() time.Duration { d, _ := read(); return d }, true
}
