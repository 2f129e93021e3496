package target

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"

	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/sim/consul"
)

// scaleLeader is a leader's scale endpoint over one group's count, in a
// mode, as the contract with the leader describes it.
type scaleLeader struct {
	mu        sync.Mutex
	mode      string
	count     int64
	lastEvent int64
	got       []leaderapi.ScaleRequest
	paths     []string
}

func (l *scaleLeader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paths = append(l.paths, r.Method+" "+r.URL.Path)
	if r.URL.Path != "/v1/group/prod/web/frontend/scale" {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"error": "no such group"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		json.NewEncoder(w).Encode(leaderapi.ScaleStatus{Count: l.count, Ready: true, LastEvent: l.lastEvent, Mode: l.mode})
	case http.MethodPost:
		var req leaderapi.ScaleRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Count == nil || *req.Count < 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "bad request"})
			return
		}
		l.got = append(l.got, req)
		res := leaderapi.ScaleResponse{CountBefore: l.count, Count: *req.Count, Mode: l.mode}
		if l.mode == "enforce" {
			res.Written = true
			l.count = *req.Count
			l.lastEvent = 1767609600000000000
		} else {
			res.Reasons = []string{"group is in recommend mode: count " + "not written"}
			res.Count = l.count
		}
		json.NewEncoder(w).Encode(res)
	}
}

func TestTargetStatusAndScale(t *testing.T) {
	l := &scaleLeader{mode: "enforce", count: 2}
	srv := httptest.NewServer(l)
	defer srv.Close()
	tg := New(hclog.NewNullLogger())
	if err := tg.SetConfig(map[string]string{"address": srv.URL}); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"namespace": "prod", "job": "web", "group": "frontend"}
	st, err := tg.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 2 || !st.Ready || st.Meta[metaKeyMode] != "enforce" {
		t.Fatalf("status %+v", st)
	}
	if _, ok := st.Meta[sdk.TargetStatusMetaKeyLastEvent]; ok {
		t.Fatalf("status %+v: a last event before any change", st)
	}
	err = tg.Scale(sdk.ScalingAction{Count: 5, Reason: "forecast p90 needs 5", Direction: sdk.ScaleDirectionUp,
		Meta: map[string]any{"nomad_autoscaler.count.original": 7}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.got) != 1 || *l.got[0].Count != 5 || l.got[0].Reason != "forecast p90 needs 5" || l.got[0].Meta["nomad_autoscaler.count.original"] != 7.0 {
		t.Fatalf("leader got %+v", l.got)
	}
	st, err = tg.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 5 || st.Meta[sdk.TargetStatusMetaKeyLastEvent] != "1767609600000000000" {
		t.Fatalf("status after scaling %+v: want the count and the last event for cooldowns", st)
	}
}

func TestTargetRecommendModeIsANoOp(t *testing.T) {
	l := &scaleLeader{mode: "recommend", count: 2}
	srv := httptest.NewServer(l)
	defer srv.Close()
	tg := New(hclog.NewNullLogger())
	// Config from a job's scaling stanza, as the Nomad policy source fills it.
	cfg := map[string]string{"address": srv.URL, "Namespace": "prod", "Job": "web", "Group": "frontend"}
	if err := tg.Scale(sdk.ScalingAction{Count: 4, Reason: "more"}, cfg); err != nil {
		t.Fatalf("recommend mode: %v, want a no-op", err)
	}
	if len(l.got) != 1 || l.count != 2 {
		t.Fatalf("leader got %+v and holds %d", l.got, l.count)
	}
	// A dry run is not handed over at all.
	if err := tg.Scale(sdk.ScalingAction{Count: sdk.StrategyActionMetaValueDryRunCount}, cfg); err != nil || len(l.got) != 1 {
		t.Fatalf("dry run: %v, leader got %d", err, len(l.got))
	}
}

func TestTargetErrors(t *testing.T) {
	l := &scaleLeader{mode: "enforce"}
	srv := httptest.NewServer(l)
	defer srv.Close()
	tg := New(hclog.NewNullLogger())
	if _, err := tg.Status(map[string]string{"address": srv.URL, "job": "web"}); err == nil || !strings.Contains(err.Error(), "needs `job` and `group`") {
		t.Fatalf("missing group: %v", err)
	}
	_, err := tg.Status(map[string]string{"address": srv.URL, "job": "api", "group": "g"})
	if err == nil || !strings.Contains(err.Error(), "default/api/g") || !strings.Contains(err.Error(), "no such group") {
		t.Fatalf("unknown group: %v", err)
	}
	err = tg.Scale(sdk.ScalingAction{Count: 3}, map[string]string{"address": srv.URL, "job": "api", "group": "g"})
	if err == nil || !strings.Contains(err.Error(), "scale default/api/g to 3: no such group") {
		t.Fatalf("scale unknown group: %v", err)
	}
	if err := tg.Scale(sdk.ScalingAction{Count: -2}, map[string]string{"address": srv.URL, "job": "api", "group": "g"}); err == nil {
		t.Fatal("a negative count was handed over")
	}
}

func TestTargetFollowsStandbyRedirect(t *testing.T) {
	l := &scaleLeader{mode: "enforce", count: 1}
	leader := httptest.NewServer(l)
	defer leader.Close()
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leader.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer standby.Close()
	tg := New(hclog.NewNullLogger())
	cfg := map[string]string{"address": standby.URL, "namespace": "prod", "job": "web", "group": "frontend"}
	if err := tg.Scale(sdk.ScalingAction{Count: 3, Reason: "r"}, cfg); err != nil {
		t.Fatal(err)
	}
	if l.count != 3 {
		t.Fatalf("count %d after a redirected POST", l.count)
	}
}

func TestTargetFindsLeaderThroughConsul(t *testing.T) {
	t.Setenv("FORESIGHT_ADDR", "")
	l := &scaleLeader{mode: "enforce", count: 4}
	leader := httptest.NewServer(l)
	defer leader.Close()
	cs := consul.New(consul.Options{Datacenter: "dc1"})
	defer cs.Close()
	csrv := httptest.NewServer(cs.Handler())
	defer csrv.Close()
	cc, err := consulapi.NewClient(&consulapi.Config{Address: strings.TrimPrefix(csrv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	tg := New(hclog.NewNullLogger())
	cfg := map[string]string{"consul_address": strings.TrimPrefix(csrv.URL, "http://"), "namespace": "prod", "job": "web", "group": "frontend"}
	if _, err := tg.Status(cfg); err == nil || !strings.Contains(err.Error(), "no Foresight leader is elected") {
		t.Fatalf("before an election: %v", err)
	}
	// The lock as agent/election holds it: a session and the leader's record.
	sid, _, err := cc.Session().Create(&consulapi.SessionEntry{TTL: "15s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(leaderapi.Record{ID: "a1", HTTP: leader.URL, GRPC: "127.0.0.1:1"})
	if ok, _, err := cc.KV().Acquire(&consulapi.KVPair{Key: leaderapi.DefaultKey, Value: rec, Session: sid}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	st, err := tg.Status(cfg)
	if err != nil || st.Count != 4 {
		t.Fatalf("status through Consul: %+v, %v", st, err)
	}
}

func TestTargetStatusReportsHold(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(leaderapi.ScaleStatus{Count: 3, Ready: true, Hold: `foresight.mode "sometimes" is not off, recommend or enforce`})
	}))
	defer srv.Close()
	st, err := New(hclog.NewNullLogger()).Status(map[string]string{"address": srv.URL, "job": "web", "group": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 3 || !strings.Contains(st.Meta[metaKeyHold], `"sometimes"`) {
		t.Fatalf("status %+v", st)
	}
}

// While the group's job deploys, the leader says the group is not ready
// and holds a scale: the target reports both as the autoscaler expects,
// not ready with the deployment named, and a no-op scaling error.
func TestTargetWaitsForTheJobsDeployment(t *testing.T) {
	const deployment = `{"id":"5f25b525-4dad-e118-ffc1-feb0c5278b44","job_version":1,"status":"running","description":"Deployment is running"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, `{"count":2,"ready":false,"last_event":0,"mode":"enforce","deployment":`+deployment+`}`)
			return
		}
		io.WriteString(w, `{"count_before":2,"count":3,"written":false,"mode":"enforce","held":"deployment 5f25b525 of job version 1 is running","reasons":[],"deployment":`+deployment+`}`)
	}))
	defer srv.Close()
	tg := New(hclog.NewNullLogger())
	cfg := map[string]string{"address": srv.URL, "job": "web", "group": "web"}
	st, err := tg.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Meta[metaKeyDeployment] != "deployment 5f25b525 of job version 1 is running (Deployment is running)" {
		t.Fatalf("status %+v", st)
	}
	var noop *sdk.TargetScalingNoOpError
	if err := tg.Scale(sdk.ScalingAction{Count: 3}, cfg); !errors.As(err, &noop) || !strings.Contains(err.Error(), "5f25b525") {
		t.Fatalf("scale held by a deployment: %v, want the autoscaler's no-op error naming it", err)
	}
}
