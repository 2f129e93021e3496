package clock

import (
	"testing"
	"time"
)

func TestVirtualFiresTimersInOrderOnlyWhenDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	late := v.After(2 * time.Minute)
	early := v.After(time.Minute)

	if n := v.Pending(); n != 2 {
		t.Fatalf("%d timers pending, want 2", n)
	}
	v.Advance(30 * time.Second)
	select {
	case <-early:
		t.Fatal("timer fired before its deadline")
	default:
	}

	v.Advance(time.Minute)
	if got := <-early; !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("early timer saw %v, want its deadline", got)
	}
	if n := v.Pending(); n != 1 {
		t.Fatalf("%d timers pending after the early one fired, want 1", n)
	}
	select {
	case <-late:
		t.Fatal("late timer fired early")
	default:
	}

	v.Set(start) // backwards: ignored
	if !v.Now().Equal(start.Add(90 * time.Second)) {
		t.Fatalf("clock ran backwards to %v", v.Now())
	}
	v.Advance(time.Hour)
	<-late
}

func TestVirtualAfterZeroFiresAtOnce(t *testing.T) {
	v := NewVirtual(time.Unix(0, 0))
	select {
	case <-v.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
}
