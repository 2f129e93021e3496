package netns

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"testing"
	"time"
)

const fixtureProc = "testdata/proc"

func TestParseDev(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	cases := []struct {
		name    string
		in      string
		want    Counters
		wantErr bool
	}{
		{"lo skipped", header + "    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n", Counters{100, 200}, false},
		{"summed over interfaces", header + "eth0: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\neth1: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n", Counters{101, 202}, false},
		{"no space after the colon", "eth0:4294967296000 3 0 0 0 0 0 0 7 1 0 0 0 0 0 0", Counters{4294967296000, 7}, false},
		{"only loopback is a real zero", header + "lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n", Counters{}, false},
		{"too few counters", "eth0: 100 1 0 0 0 0 0 0 200\n", Counters{}, true},
		{"too many counters", "eth0: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0 9\n", Counters{}, true},
		{"not a number", "eth0: x 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n", Counters{}, true},
		{"garbage line", "hello\n", Counters{}, true},
		{"empty name", " : 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n", Counters{}, true},
		{"malformed loopback still fails", "lo: x\n", Counters{}, true},
		{"overflow", "a: 18446744073709551615 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\nb: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n", Counters{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseDev([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestRead(t *testing.T) {
	cases := []struct {
		name       string
		pid        int
		want       Counters
		wantShared bool
	}{
		{"bridge-mode allocation", 4242, Counters{RxBytes: 52428800, TxBytes: 10485760}, false},
		{"old kernel format, two interfaces", 6000, Counters{RxBytes: 4294967296100, TxBytes: 1200}, false},
		{"host-mode task reports nothing", 5151, Counters{}, true},
	}
	r := NewReader(fixtureProc, "")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.Read(c.pid)
			if c.wantShared {
				if !errors.Is(err, ErrSharedNamespace) || got != (Counters{}) {
					t.Fatalf("Read = %+v, %v; want ErrSharedNamespace and nothing", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Read = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestOwnNamespace(t *testing.T) {
	for _, ref := range []string{"", "self"} {
		r := NewReader(fixtureProc, ref)
		if own, err := r.OwnNamespace(4242); err != nil || !own {
			t.Errorf("ref %q: OwnNamespace(4242) = %v, %v; want true", ref, own, err)
		}
		if own, err := r.OwnNamespace(5151); err != nil || own {
			t.Errorf("ref %q: OwnNamespace(5151) = %v, %v; want false", ref, own, err)
		}
	}
	if _, err := NewReader(fixtureProc, "").OwnNamespace(999); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OwnNamespace of a gone process = %v, want not-exist", err)
	}
	if _, err := NewReader(fixtureProc, "2").OwnNamespace(4242); err == nil {
		t.Error("an unreadable host reference went unreported")
	}
}

func TestRater(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	var rt Rater
	if _, ok := rt.Update(t0, Counters{1000, 2000}); ok {
		t.Fatal("first reading gave a rate")
	}
	r, ok := rt.Update(t0.Add(10*time.Second), Counters{1000 + 5120, 2000 + 1024})
	if !ok || math.Abs(r.RxBPS-512) > 1e-9 || math.Abs(r.TxBPS-102.4) > 1e-9 || r.Interval != 10*time.Second {
		t.Fatalf("Update = %+v, %v; want 512 and 102.4 B/s", r, ok)
	}
	if _, ok := rt.Update(t0.Add(20*time.Second), Counters{10, 10}); ok {
		t.Error("a counter reset gave a rate")
	}
	if r, ok := rt.Update(t0.Add(30*time.Second), Counters{110, 210}); !ok || r.RxBPS != 10 || r.TxBPS != 20 {
		t.Errorf("after a reset = %+v, %v; want 10 and 20 B/s", r, ok)
	}
	if _, ok := rt.Update(t0.Add(30*time.Second), Counters{200, 300}); ok {
		t.Error("a reading at the same time gave a rate")
	}
	rt.Reset()
	if _, ok := rt.Update(t0.Add(40*time.Second), Counters{300, 400}); ok {
		t.Error("the reading after Reset gave a rate")
	}
}

func FuzzParseDev(f *testing.F) {
	if b, err := os.ReadFile(fixtureProc + "/5151/net/dev"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("eth0:4294967296000 3 0 0 0 0 0 0 7 1 0 0 0 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDev(b)
		if err != nil && c != (Counters{}) {
			t.Fatalf("error %v came with a value %+v", err, c)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	r := NewReader(fixtureProc, "")
	var rt Rater
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		c, err := r.Counters(4242)
		if err != nil {
			b.Fatal(err)
		}
		at = at.Add(10 * time.Second)
		rt.Update(at, c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/alloc")
}
