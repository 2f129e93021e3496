package cpuclock

import (
	"runtime"
	"testing"
)

func TestThreadClockCountsWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock, ok := Thread()
	if !ok {
		t.Skip("no thread CPU clock on this system")
	}
	c0 := clock()
	x := 0.0
	for i := 0; i < 20_000_000; i++ {
		x += float64(i) * 1e-9
	}
	c1 := clock()
	if c1 <= c0 {
		t.Fatalf("clock did not advance over busy work: %v → %v (x=%v)", c0, c1, x)
	}
}
