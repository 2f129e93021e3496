package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkLoopbackFloor is the baseline for BenchmarkAllocStatsHTTP: the
// same clients and transport against a handler that writes a fixed body of
// the same size, so the ratio shows what sim itself costs per request.
func BenchmarkLoopbackFloor(b *testing.B) {
	cfg, err := LoadConfig("../examples/sim/hybrid.hcl")
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(cfg, Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	c.Advance(time.Minute)
	st, err := c.AllocStats(c.allocList[0].api.ID)
	if err != nil {
		b.Fatal(err)
	}
	body := mustJSON(st)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	benchGets(b, []string{srv.URL + "/"})
}

// BenchmarkAllocStatsHTTP measures alloc-stats requests served per second
// over loopback HTTP, with as many concurrent clients as GOMAXPROCS×4, the
// way agents poll it. Goal: ≥ 5,000/s on 2 cores.
func BenchmarkAllocStatsHTTP(b *testing.B) {
	cfg, err := LoadConfig("../examples/sim/hybrid.hcl")
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(cfg, Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	c.Advance(time.Minute)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	var urls []string
	for _, a := range c.allocList {
		if a.running() {
			urls = append(urls, srv.URL+"/v1/client/allocation/"+a.api.ID+"/stats")
		}
	}
	if len(urls) == 0 {
		b.Fatal("no running allocations")
	}
	benchGets(b, urls)
}

// benchGets issues GETs round-robin over urls from 4×GOMAXPROCS clients and
// reports requests per second.
func benchGets(b *testing.B, urls []string) {
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: transport}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			resp, err := client.Get(urls[i%len(urls)])
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkFourteenDays measures how long 14 simulated days of hybrid.hcl
// take with the clock stepped as fast as it goes. Goal: ≤ 60 s.
func BenchmarkFourteenDays(b *testing.B) {
	cfg, err := LoadConfig("../examples/sim/hybrid.hcl")
	if err != nil {
		b.Fatal(err)
	}
	var stepping time.Duration
	for b.Loop() {
		c, err := New(cfg, Options{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range 14 * 24 {
			c.Advance(time.Hour)
		}
		stepping += time.Since(start)
	}
	b.ReportMetric(stepping.Seconds()/float64(b.N), "s/14days")
}
