package leader

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/agent/leader/store"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// dashboardState is a leader's state with three hours of one group's
// telemetry, a decision and two capacity snapshots.
func dashboardState(t *testing.T) *leaderState {
	t.Helper()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(start)
	st, err := store.New(store.Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * 360 {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		for _, alloc := range []string{"a1", "a2"} {
			if err := st.Append(telemetry.Sample{Time: at, Group: "default/web/web", Alloc: alloc, Task: "srv", Metric: "cpu_mhz", Value: 400 + float64(i%30)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Advance(3*time.Hour + time.Minute)
	if err := st.Seal(); err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.New(profiles.Config{})
	if err != nil {
		t.Fatal(err)
	}
	consul, err := consulapi.NewClient(&consulapi.Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s := &leaderState{self: leaderapi.LeaderInfo{ID: "node-1"}, clock: clk, store: st, profiles: prof, pause: NewPauseSwitch(consul, "", nil),
		decisions: &DecisionLog{}, capacity: &CapacityLog{},
		freshest: func() (time.Time, bool) { return clk.Now(), true },
		agents:   func() []leaderapi.AgentStatus { return []leaderapi.AgentStatus{{ID: "node-1", Node: "node-1"}} }}
	s.decisions.Add(leaderapi.Decision{Time: clk.Now(), Group: "default/web/web", Result: orchestrator.Result{
		Decision: orchestrator.Decision{Mode: orchestrator.ModeRecommend, Count: 3, CurrentCount: 2, Reasons: []string{"p95 cpu demand 900 MHz"}},
		Changes:  []string{"~ count 2 → 3"}, Held: "foresight.mode = recommend: changes reported, not written",
	}})
	for i, free := range []float64{6000, 4000} {
		s.capacity.Add(CapacitySnapshot{Time: start.Add(time.Duration(i) * time.Minute), Classes: []profiles.Class{
			{ID: "ssd", Traits: profiles.Traits{Platform: "external"}, CPUMHz: 8000, FreeCPUMHz: free},
		}})
	}
	return s
}

func get200(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// points is the data-points of every chart on a page.
func points(page string) []int {
	var out []int
	for _, m := range regexp.MustCompile(`data-points="(\d+)"`).FindAllStringSubmatch(page, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func TestDashboardServesTheLeadersState(t *testing.T) {
	mux := http.NewServeMux()
	(&leaderAPI{st: dashboardState(t)}).register(mux)
	srv := httptest.NewServer(grantAll(mux))
	defer srv.Close()

	overview := get200(t, srv.URL+"/ui/")
	for _, want := range []string{`href="/ui/group/default/web/web"`, "~ count 2 → 3", "p95 cpu demand 900 MHz", `data-platform="external"`, `data-platform="provider"`} {
		if !strings.Contains(overview, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// Both platforms show; the external one charts two snapshots of
	// capacity and allocation, the provider one has no nodes yet.
	if got := points(overview); len(got) != 2 || got[0] != 4 || got[1] != 0 {
		t.Errorf("capacity charts plot %v points, want [4 0]", got)
	}

	group := get200(t, srv.URL+"/ui/group/default/web/web")
	if strings.Contains(group, "No forecast yet") || !strings.Contains(group, `data-banded="true"`) {
		t.Fatalf("the group page has no forecast bands:\n%s", group)
	}
	if got := points(group); len(got) == 0 || got[0] < 150 {
		t.Errorf("band chart plots %v points, want three hours of usage and the forecast", got)
	}

	resp, err := http.Get(srv.URL + "/ui/group/default/nope/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown group: %d %s, want a 404 page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if css := get200(t, srv.URL+"/ui/assets/style.css"); !strings.Contains(css, "svg.chart") {
		t.Error("the stylesheet is not served")
	}
}

func TestCapacityLogKeepsTheLatestSnapshots(t *testing.T) {
	var l CapacityLog
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := range capacityRingSize + 10 {
		l.Add(CapacitySnapshot{Time: start.Add(time.Duration(i) * time.Minute)})
	}
	got := l.List()
	if len(got) != capacityRingSize || !got[0].Time.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("kept %d snapshots from %v, want %d from the 11th", len(got), got[0].Time, capacityRingSize)
	}
}

func TestCapacityLogRecordsOnTheLeadersClock(t *testing.T) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(start)
	var l CapacityLog
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, clk, time.Minute, func() []profiles.Class { return []profiles.Class{{ID: "ssd", CPUMHz: 8000}} })
	}()
	wait.Until(t, time.Minute, "three snapshots, a virtual minute apart", func() bool {
		clk.Advance(time.Minute)
		return len(l.List()) >= 3
	})
	cancel()
	<-done
	got := l.List()
	for i := 1; i < len(got); i++ {
		if got[i].Time.Sub(got[i-1].Time) < time.Minute {
			t.Fatalf("snapshots at %v and %v: closer than the interval", got[i-1].Time, got[i].Time)
		}
	}
	if got[0].Time.Before(start.Add(time.Minute)) || got[0].Classes[0].ID != "ssd" {
		t.Fatalf("first snapshot %+v", got[0])
	}
}

func TestDecisionRowsNewestFirst(t *testing.T) {
	at := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	rows := decisionRows([]leaderapi.Decision{
		{Time: at, Group: "a", Error: "job not found"},
		{Time: at.Add(time.Minute), Group: "b", Result: orchestrator.Result{Written: true, Changes: []string{"~ count 1 → 2"}}},
		{Time: at.Add(2 * time.Minute), Group: "c", Result: orchestrator.Result{Decision: orchestrator.Decision{Hold: "mode off"}}},
	}, 2)
	if len(rows) != 2 || rows[0].Group != "c" || rows[1].Group != "b" {
		t.Fatalf("rows %+v, want c then b", rows)
	}
	if rows[0].Outcome != "held" || rows[0].Held != "mode off" || rows[1].Outcome != "written" {
		t.Fatalf("outcomes %+v", rows)
	}
	if got := decisionRows([]leaderapi.Decision{{Group: "a", Error: "boom"}}, 5); got[0].Outcome != "error" {
		t.Fatalf("an error reads as %q", got[0].Outcome)
	}
}
