package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader"
	"github.com/foresight-nomad/foresight/internal/wait"
	"github.com/foresight-nomad/foresight/leaderapi"
)

// scaleCall posts a scale request to the leader and decodes the answer.
func scaleCall(t *testing.T, addr, body string) (int, leaderapi.ScaleResponse, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v1/group/default/app/app/scale", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(resp.Body)
	var out leaderapi.ScaleResponse
	_ = json.Unmarshal(raw.Bytes(), &out)
	return resp.StatusCode, out, raw.String()
}

func scaleStatusOf(t *testing.T, addr string) leaderapi.ScaleStatus {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/group/default/app/app/scale")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st leaderapi.ScaleStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		t.Fatalf("scale status: HTTP %d", resp.StatusCode)
	}
	return st
}

// TestScaleRequestsFollowTheGroupsMode checks the endpoints foresight-target
// calls: recommend mode answers with the count it would set and writes
// nothing; enforce mode writes it within the group's bounds, and the status
// then shows Foresight's change as the last event.
func TestScaleRequestsFollowTheGroupsMode(t *testing.T) {
	for _, mode := range []string{"recommend", "enforce"} {
		t.Run(mode, func(t *testing.T) {
			agents, cluster, stop := startTestCluster(t, 1, 0, func(c *Config) {
				c.Orchestrator = &leader.OrchestratorConfig{Mode: mode, DecisionInterval: "1h"}
			})
			defer stop()
			addr := agents[0].HTTPAddr()
			wait.Until(t, time.Minute, "a leader", func() bool { return agents[0].term.Load() != nil })

			before := scaleStatusOf(t, addr)
			if before.Count != 2 || !before.Ready || before.Mode != mode {
				t.Fatalf("status before: %+v, want 2 running, ready, mode %s", before, mode)
			}
			for _, bad := range []string{`{}`, `{"count": -1}`, `{"count": 2, "extra": 1}`, `not json`} {
				if code, _, raw := scaleCall(t, addr, bad); code != http.StatusBadRequest || !strings.Contains(raw, "error") {
					t.Fatalf("%s: HTTP %d %s, want 400 with an error", bad, code, raw)
				}
			}
			code, res, raw := scaleCall(t, addr, `{"count": 3, "reason": "cpu above target"}`)
			if code != http.StatusOK || res.Count != 3 || res.CountBefore != 2 {
				t.Fatalf("scale: HTTP %d %s", code, raw)
			}
			switch mode {
			case "recommend":
				if res.Written || !strings.Contains(res.Held, "recommend") {
					t.Fatalf("recommend mode wrote or did not say why: %+v", res)
				}
				if st := scaleStatusOf(t, addr); st.LastEvent != 0 {
					t.Fatalf("recommend mode recorded a change: %+v", st)
				}
			case "enforce":
				if !res.Written {
					t.Fatalf("enforce mode did not write: %+v", res)
				}
				wait.Until(t, time.Minute, "3 allocations running", func() bool {
					cluster.Advance(10 * time.Second)
					return scaleStatusOf(t, addr).Count == 3
				})
				if st := scaleStatusOf(t, addr); time.Since(time.Unix(0, st.LastEvent)) > time.Minute {
					t.Fatalf("the change is not the last event: %+v", st)
				}
				// The job's scaling block says max 10; foresight.max is
				// the orchestrator's own bound (default 100).
				if _, res, _ := scaleCall(t, addr, `{"count": 1000}`); res.Count >= 1000 {
					t.Fatalf("a count beyond the bounds was accepted: %+v", res)
				}
			}
		})
	}
}
