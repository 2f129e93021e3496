package consul

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/internal/shared"
)

// fixture is one recorded exchange with a Consul 1.16.3 dev agent, in the
// format of /work/shared/fixtures/README.md.
type fixture struct {
	Request struct {
		Method     string
		Path       string
		Headers    map[string]string
		Body       json.RawMessage
		BodyFormat string `json:"body_format"`
	}
	Response struct {
		Status       int
		Headers      map[string]json.RawMessage
		Body         json.RawMessage
		BodyEncoding struct {
			Format string
		} `json:"body_encoding"`
	}
	CapturedAt time.Time `json:"captured_at"`
}

// header returns a recorded response header, or "" if absent.
func (f *fixture) header(name string) string {
	raw, ok := f.Response.Headers[name]
	if !ok {
		return ""
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return v
}

// fixturesDir is where the recorded Consul responses are; the test is
func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// skipped without them.
func fixturesDir(t *testing.T) string {
	t.Helper()
	return shared.Path(t, "fixtures", "consul-1.16.3")
}

// headersCompared are the headers whose presence and value must match the
// recording. X-Consul-Index and X-Consul-Contenthash must be present when
// recorded; their values are checked by meaning, not equality.
var headersCompared = []string{
	"Content-Type", "Vary", "X-Consul-Default-Acl-Policy", "X-Consul-Effective-Consistency",
	"X-Consul-Knownleader", "X-Consul-Lastcontact", "X-Consul-Query-Backend",
}

// volatileKeys hold values that legitimately differ between the recorded
// agent and sim: generated IDs, raft indexes, hashes, check output that
// came from real HTTP probes, and the node name (the files added on
// 2026-12-04 come from another cluster, whose node was "vm", and sim
// replays them all on one node).
var volatileKeys = map[string]bool{
	"ID": true, "Session": true, "CreateIndex": true, "ModifyIndex": true, "ContentHash": true,
	"Output": true, "CheckID": true, "Node": true,
}

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// replay carries what maps the recording's generated values onto sim's.
type replay struct {
	c        *testCluster
	sessions map[string]string    // recorded session ID -> sim's
	indexes  map[string]string    // recorded X-Consul-Index -> sim's
	captured map[string]time.Time // fixture -> when it was recorded
}

// before seeds what a fixture's recording relied on but did not capture,
// as its note and the fixtures README describe.
var before = map[string]func(t *testing.T, r *replay, f *fixture){
	"04-kv-get-recurse.json": func(t *testing.T, r *replay, _ *fixture) {
		r.c.do(t, http.MethodPut, "/v1/kv/app/config/port", "8080")
		r.c.do(t, http.MethodPut, "/v1/kv/app/config/flags?flags=42", "x")
	},
	"18-agent-services.json": seedNomadServices,
	// The session was left without renewal for as long as the recording
	// waited; sim's clock is virtual, so it moves by the same time.
	"35-session-info-after-expiry.json": func(t *testing.T, r *replay, f *fixture) {
		created := r.captured["32-session-create-ttl.json"]
		if created.IsZero() || f.CapturedAt.Before(created) {
			t.Fatal("35 needs 32's capture time")
		}
		r.c.clock.Advance(f.CapturedAt.Sub(created))
	},
}

// during runs while a fixture's blocking request is parked.
var during = map[string]func(t *testing.T, r *replay){
	"07-kv-get-blocking-early-return.json": func(t *testing.T, r *replay) {
		r.c.do(t, http.MethodPut, "/v1/kv/foo", "qux")
	},
}

// seedNomadServices registers, through the Go API the Nomad half of sim
// uses, the services the recorded Nomad agent had registered: its own
// server and client entries and job web's three allocations, each with a
// passing HTTP check every 5s (timeout 2s).
func seedNomadServices(t *testing.T, r *replay, f *fixture) {
	var services map[string]struct {
		ID, Service, Address string
		Tags                 []string
		Meta                 map[string]string
		Port                 int
	}
	if err := json.Unmarshal(f.Response.Body, &services); err != nil {
		t.Fatalf("read recorded agent services: %v", err)
	}
	for _, id := range slices.Sorted(maps.Keys(services)) {
		svc := services[id]
		rest, isTask := strings.CutPrefix(id, NomadTaskPrefix)
		if !isTask {
			reg := &api.AgentServiceRegistration{ID: id, Name: svc.Service, Tags: svc.Tags, Meta: svc.Meta, Port: svc.Port, Address: svc.Address}
			if err := r.c.sim.RegisterService(reg, false); err != nil {
				t.Fatalf("seed %s: %v", id, err)
			}
			continue
		}
		alloc, owner := rest[:36], rest[37:]
		portLabel := owner[strings.LastIndex(owner, "-")+1:]
		group := strings.TrimSuffix(strings.TrimPrefix(owner, "group-"), "-"+svc.Service+"-"+portLabel)
		meta := map[string]string{}
		for k, v := range svc.Meta {
			if k != ExternalSourceMetaKey {
				meta[k] = v
			}
		}
		reg, err := r.c.sim.RegisterNomadService(NomadService{
			AllocID: alloc, Group: group, Name: svc.Service, PortLabel: portLabel, Address: svc.Address, Port: svc.Port,
			Tags: svc.Tags, Meta: meta,
			Checks: []NomadCheck{{Type: "http", Path: "/", Interval: 5 * time.Second, Timeout: 2 * time.Second}},
		})
		if err != nil {
			t.Fatalf("seed %s: %v", id, err)
		}
		if reg.ServiceID != id {
			t.Fatalf("seeded ID %s, recorded %s", reg.ServiceID, id)
		}
		if err := r.c.sim.SetServiceHealth(id, StatusPassing, "HTTP GET: 200 OK"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFixturesReplay replays every recorded Consul exchange, in order,
// against one fresh sim and checks status, headers, content type, body
// encoding, and the JSON shape and stable values of each answer.
func TestFixturesReplay(t *testing.T) {
	dir := fixturesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Skipf("fixtures: none found in %s", dir)
	}
	sort.Strings(files)
	r := &replay{c: newTestCluster(t), sessions: map[string]string{}, indexes: map[string]string{}, captured: map[string]time.Time{}}
	for _, file := range files {
		name := filepath.Base(file)
		var f fixture
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r.captured[name] = f.CapturedAt
		if !t.Run(name, func(t *testing.T) { r.check(t, name, &f) }) {
			// Later exchanges build on earlier ones.
			return
		}
	}
}

func (r *replay) check(t *testing.T, name string, f *fixture) {
	if seed := before[name]; seed != nil {
		seed(t, r, f)
	}
	path := uuidPattern.ReplaceAllStringFunc(f.Request.Path, func(id string) string {
		if sim, ok := r.sessions[id]; ok {
			return sim
		}
		t.Fatalf("request names session %s, which no earlier fixture created", id)
		return id
	})
	// Recorded indexes become sim's; recorded waits are cut to keep the
	// replay fast (a timeout is a timeout, whatever its length).
	reqIndex := ""
	path = indexPattern.ReplaceAllStringFunc(path, func(m string) string {
		recorded := strings.TrimPrefix(m, "index=")
		sim, ok := r.indexes[recorded]
		if !ok {
			t.Fatalf("request waits on index %s, which no earlier fixture returned", recorded)
		}
		reqIndex = sim
		return "index=" + sim
	})
	if reqIndex != "" && f.header("X-Consul-Index") == indexParam(f.Request.Path) {
		path = waitPattern.ReplaceAllString(path, "wait=20ms")
	}
	body := string(f.Request.Body)
	if f.Request.BodyFormat == "text" {
		if err := json.Unmarshal(f.Request.Body, &body); err != nil {
			t.Fatal(err)
		}
	} else if body == "null" {
		body = ""
	}

	var resp rawResponse
	if act := during[name]; act != nil {
		done := make(chan rawResponse, 1)
		go func() { done <- r.c.do(t, f.Request.Method, path, body) }()
		r.c.waitBlocked(t, 1)
		act(t, r)
		resp = recv(t, "the blocking request", done)
	} else {
		resp = r.c.do(t, f.Request.Method, path, body)
	}

	if resp.status != f.Response.Status {
		t.Fatalf("status %d, recorded %d; body %q", resp.status, f.Response.Status, resp.body)
	}
	for _, h := range headersCompared {
		if got, want := resp.header.Get(h), f.header(h); got != want {
			t.Errorf("header %s = %q, recorded %q", h, got, want)
		}
	}
	for _, h := range []string{"X-Consul-Index", "X-Consul-Contenthash"} {
		if (resp.header.Get(h) == "") != (f.header(h) == "") {
			t.Errorf("header %s present=%v, recorded present=%v", h, resp.header.Get(h) != "", f.header(h) != "")
		}
	}
	if idx := resp.header.Get("X-Consul-Index"); idx != "" {
		r.checkIndexMeaning(t, f, reqIndex, idx)
		r.indexes[f.header("X-Consul-Index")] = idx
	}

	checkBody(t, f, resp.body)
	if f.Request.Path == "/v1/session/create" && f.Response.Status == http.StatusOK {
		var rec, got struct{ ID string }
		_ = json.Unmarshal(f.Response.Body, &rec)
		if err := json.Unmarshal([]byte(resp.body), &got); err != nil || got.ID == "" {
			t.Fatalf("session create answered %q", resp.body)
		}
		r.sessions[rec.ID] = got.ID
	}
}

var (
	indexPattern = regexp.MustCompile(`index=(\d+)`)
	waitPattern  = regexp.MustCompile(`wait=\w+`)
)

// indexParam is the ?index of a recorded path, or "".
func indexParam(path string) string {
	m := indexPattern.FindStringSubmatch(path)
	if m == nil {
		return ""
	}
	return m[1]
}

// checkIndexMeaning checks sim's index against what the recorded one
// meant for a blocking request: unchanged on a timeout, newer on an early
// return.
func (r *replay) checkIndexMeaning(t *testing.T, f *fixture, reqIndex, got string) {
	recordedReq := indexParam(f.Request.Path)
	if recordedReq == "" {
		return
	}
	g, _ := strconv.ParseUint(got, 10, 64)
	q, _ := strconv.ParseUint(reqIndex, 10, 64)
	if f.header("X-Consul-Index") == recordedReq && g != q {
		t.Errorf("timed-out blocking query returned index %d, want the requested %d", g, q)
	}
	if f.header("X-Consul-Index") != recordedReq && g <= q {
		t.Errorf("blocking query that returned on a change has index %d, want above %d", g, q)
	}
}

// checkBody compares sim's body with the recording: its wire format, then
// for JSON its shape and stable values, for text its exact message.
func checkBody(t *testing.T, f *fixture, body string) {
	t.Helper()
	switch format := f.Response.BodyEncoding.Format; format {
	case "empty":
		if body != "" {
			t.Errorf("body %q, recorded empty", body)
		}
	case "text":
		var want string
		if err := json.Unmarshal(f.Response.Body, &want); err != nil {
			t.Fatal(err)
		}
		if body != want {
			t.Errorf("body %q, recorded %q", body, want)
		}
	case "json-pretty", "json-compact":
		if !strings.HasSuffix(body, "\n") {
			t.Errorf("JSON body without its trailing newline: %q", body)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, []byte(strings.TrimSuffix(body, "\n")), "", "    "); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, body)
		}
		if pretty.String()+"\n" != body {
			t.Errorf("body is not indented by four spaces as Consul's dev agent does:\n%s", body)
		}
		var got, want any
		_ = json.Unmarshal([]byte(body), &got)
		if err := json.Unmarshal(f.Response.Body, &want); err != nil {
			t.Fatal(err)
		}
		for _, d := range diffShape("$", want, got) {
			t.Error(d)
		}
	default:
		t.Fatalf("unknown recorded body format %q", format)
	}
}

// diffShape lists where got differs from want in keys, JSON types, array
// lengths, or in values outside volatileKeys.
func diffShape(at string, want, got any) []string {
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return []string{fmt.Sprintf("%s: type %T, recorded %T (%v)", at, got, want, want)}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: missing key %q", at, k))
				continue
			}
			if volatileKeys[k] {
				if fmt.Sprintf("%T", w[k]) != fmt.Sprintf("%T", gv) {
					diffs = append(diffs, fmt.Sprintf("%s.%s: type %T, recorded %T", at, k, gv, w[k]))
				}
				continue
			}
			diffs = append(diffs, diffShape(at+"."+k, w[k], gv)...)
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: extra key %q", at, k))
			}
		}
	case []any:
		g := got.([]any)
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: %d elements, recorded %d", at, len(g), len(w))}
		}
		for i := range w {
			diffs = append(diffs, diffShape(fmt.Sprintf("%s[%d]", at, i), w[i], g[i])...)
		}
	default:
		if want != got {
			diffs = append(diffs, fmt.Sprintf("%s: %v, recorded %v", at, got, want))
		}
	}
	return diffs
}
