package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Blocking query limits, as Nomad applies them.
const (
	defaultBlockingWait = 5 * time.Minute
	maxBlockingWait     = 10 * time.Minute
	// heartbeatInterval is how often an idle event stream sends `{}`.
	heartbeatInterval = 30 * time.Second
	// maxBody bounds what a write may send.
	maxBody = 16 << 20
)

// nomadAPI serves the Nomad HTTP API from a Cluster.
type nomadAPI struct {
	c      *Cluster
	writes atomic.Int64
}

// Handler serves the Nomad HTTP API, plus sim's own `/v1/sim/…` endpoints.
func (c *Cluster) Handler() http.Handler {
	h := &nomadAPI{c: c}
	c.api = h
	mux := http.NewServeMux()
	route := func(pattern string, fn http.HandlerFunc) { mux.HandleFunc(pattern, fn) }
	write := func(pattern string, fn http.HandlerFunc) {
		wrapped := func(w http.ResponseWriter, r *http.Request) {
			h.writes.Add(1)
			fn(w, r)
		}
		method, path, _ := strings.Cut(pattern, " ")
		if method == "WRITE" {
			mux.HandleFunc("PUT "+path, wrapped)
			mux.HandleFunc("POST "+path, wrapped)
			return
		}
		mux.HandleFunc(pattern, wrapped)
	}

	route("GET /v1/agent/self", h.agentSelf)
	route("GET /v1/agent/members", h.agentMembers)
	route("GET /v1/status/leader", h.statusLeader)
	route("GET /v1/status/peers", h.statusPeers)
	route("GET /v1/regions", h.regions)

	route("GET /v1/nodes", h.nodesList)
	route("GET /v1/node/pools", h.nodePools)
	route("GET /v1/node/{id}", h.node)
	// /v1/node/pool/<name> and /v1/node/<id>/allocations share a shape.
	route("GET /v1/node/{id}/{sub}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("id") == "pool":
			h.nodePool(w, r, r.PathValue("sub"))
		case r.PathValue("sub") == "allocations":
			h.nodeAllocations(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	route("GET /v1/client/metadata", h.metadataRead)
	write("WRITE /v1/client/metadata", h.metadataApply)
	route("GET /v1/client/stats", h.hostStats)
	route("GET /v1/client/allocation/{id}/stats", h.allocStats)

	route("GET /v1/jobs", h.jobsList)
	write("WRITE /v1/jobs", h.jobsRegister)
	write("WRITE /v1/jobs/parse", h.jobsParse)
	route("GET /v1/job/{id}", h.job)
	write("WRITE /v1/job/{id}", h.jobsRegister)
	write("DELETE /v1/job/{id}", h.jobDeregister)
	route("GET /v1/job/{id}/versions", h.jobVersions)
	route("GET /v1/job/{id}/summary", h.jobSummary)
	route("GET /v1/job/{id}/allocations", h.jobAllocations)
	route("GET /v1/job/{id}/evaluations", h.jobEvaluations)
	route("GET /v1/job/{id}/deployments", h.jobDeployments)
	route("GET /v1/job/{id}/deployment", h.jobDeployment)
	route("GET /v1/job/{id}/scale", h.jobScaleStatus)
	write("WRITE /v1/job/{id}/scale", h.jobScale)
	write("WRITE /v1/job/{id}/plan", h.jobPlan)

	route("GET /v1/scaling/policies", h.scalingPolicies)
	route("GET /v1/scaling/policy/{id}", h.scalingPolicy)

	route("GET /v1/allocations", h.allocsList)
	route("GET /v1/allocation/{id}", h.alloc)
	write("WRITE /v1/allocation/{id}/stop", h.allocStop)
	route("GET /v1/evaluations", h.evalsList)
	route("GET /v1/evaluation/{id}", h.eval)
	route("GET /v1/evaluation/{id}/allocations", h.evalAllocations)

	route("GET /v1/deployments", h.deploymentsList)
	route("GET /v1/deployment/{id}", h.deployment)
	route("GET /v1/deployment/allocations/{id}", h.deploymentAllocations)
	write("WRITE /v1/deployment/promote/{id}", h.deploymentPromote)
	write("WRITE /v1/deployment/pause/{id}", h.deploymentPause)
	write("WRITE /v1/deployment/fail/{id}", h.deploymentFail)

	route("GET /v1/event/stream", h.eventStream)
	route("GET /v1/services", h.servicesList)
	route("GET /v1/service/{name}", h.service)

	route("GET /v1/metrics", h.metrics)

	route("GET /v1/sim/nodegroups", h.simNodeGroups)
	route("GET /v1/sim/nodegroups/{name}", h.simNodeGroup)
	route("PUT /v1/sim/nodegroups/{name}", h.simNodeGroupScale)
	route("POST /v1/sim/nodegroups/{name}", h.simNodeGroupScale)
	route("GET /v1/sim/node/{id}/telemetry", h.simTelemetry)
	route("GET /v1/sim/status", h.simStatus)
	route("POST /v1/sim/advance", h.simAdvance)
	h.registerACL(mux)
	return h.withACL(mux)
}

// Writes counts the Nomad API write requests served (PUT, POST and DELETE
// outside /v1/sim), so tests can prove that something wrote nothing.
func (c *Cluster) Writes() int64 {
	if c.api == nil {
		return 0
	}
	return c.api.writes.Load()
}

// respond writes v as compact JSON, as Nomad does. index, when non-zero, is
// sent as X-Nomad-Index; reads also carry the leader headers.
func respond(w http.ResponseWriter, status int, body []byte, index uint64, read bool) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	if index > 0 {
		hdr.Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	}
	if read {
		hdr.Set("X-Nomad-Knownleader", "true")
		hdr.Set("X-Nomad-Lastcontact", "0")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sim: encode response: %v", err)) // api types always encode
	}
	return b
}

// fail answers an error in Nomad's style: a plain-text message and the
// status code its kind calls for.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := err.Error()
	for _, k := range []struct {
		err    error
		status int
	}{{ErrNotFound, http.StatusNotFound}, {ErrInvalid, http.StatusBadRequest}, {ErrConflict, http.StatusInternalServerError}} {
		if errors.Is(err, k.err) {
			status = k.status
			msg = strings.TrimPrefix(msg, k.err.Error()+": ")
		}
	}
	failText(w, status, msg)
}

func failText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// decode reads a JSON request body as Nomad does, answering 400 with the
// decoder's message on bad input.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && syn.Offset >= int64(len(body)) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF // what Nomad's streaming decoder says of a cut body
		}
		failText(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func namespace(r *http.Request) string {
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		return ns
	}
	return "default"
}

// blocking serves a read with Nomad's blocking query semantics: with
// ?index=N it waits (up to ?wait) until one of tables moves past N, then
// answers with what read returns. read runs under the cluster lock.
func (h *nomadAPI) blocking(w http.ResponseWriter, r *http.Request, tables []string, read func() (any, error)) {
	q := r.URL.Query()
	var minIndex uint64
	if s := q.Get("index"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			failText(w, http.StatusBadRequest, "Invalid index: "+err.Error())
			return
		}
		minIndex = v
	}
	wait := defaultBlockingWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			failText(w, http.StatusBadRequest, "Invalid wait time")
			return
		}
		wait = min(d, maxBlockingWait)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	expired := false
	c := h.c
	for {
		c.mu.Lock()
		idx := c.tableIndex(tables...)
		if minIndex == 0 || idx > minIndex || expired {
			v, err := read()
			var body []byte
			if err == nil {
				body = mustJSON(v)
			}
			c.mu.Unlock()
			if err != nil {
				w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
				w.Header().Set("X-Nomad-Knownleader", "true")
				w.Header().Set("X-Nomad-Lastcontact", "0")
				fail(w, err)
				return
			}
			respond(w, http.StatusOK, body, idx, true)
			return
		}
		ch := c.notify
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			expired = true
		case <-r.Context().Done():
			return
		}
	}
}

// read serves a non-blocking read under the cluster lock.
func (h *nomadAPI) read(w http.ResponseWriter, tables []string, read func() (any, error)) {
	c := h.c
	c.mu.Lock()
	idx := uint64(0)
	if len(tables) > 0 {
		idx = c.tableIndex(tables...)
	}
	v, err := read()
	var body []byte
	if err == nil {
		body = mustJSON(v)
	}
	c.mu.Unlock()
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, body, idx, len(tables) > 0)
}

func (h *nomadAPI) agentSelf(w http.ResponseWriter, _ *http.Request) {
	c := h.c
	dc := c.cfg.NodeGroups[0].Datacenter
	self := map[string]any{
		"config": map[string]any{
			"Region": c.cfg.Region, "Datacenter": dc, "NodeName": "sim", "Version": map[string]any{"Version": "1.6.5", "VersionPrerelease": "", "VersionMetadata": ""},
			"Server": map[string]any{"Enabled": true}, "Client": map[string]any{"Enabled": true},
			"ACL": map[string]any{"Enabled": false},
		},
		"member": h.member(map[string]string{"region": c.cfg.Region, "dc": dc, "role": "nomad", "build": "1.6.5"}),
		"stats": map[string]any{"nomad": map[string]string{
			"leader": "true", "server": "true", "leader_addr": "127.0.0.1:4647", "bootstrap": "true", "known_regions": "1",
		}},
	}
	respond(w, http.StatusOK, mustJSON(self), 0, false)
}

// member is sim's one server as Serf describes it, with the protocol
// versions a Nomad 1.6 server speaks.
func (h *nomadAPI) member(tags map[string]string) *api.AgentMember {
	return &api.AgentMember{
		Name: "sim." + h.c.cfg.Region, Addr: "127.0.0.1", Port: 4648, Status: "alive", Tags: tags,
		ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
	}
}

func (h *nomadAPI) agentMembers(w http.ResponseWriter, _ *http.Request) {
	c := h.c
	dc := c.cfg.NodeGroups[0].Datacenter
	members := map[string]any{
		"ServerName": "sim", "ServerRegion": c.cfg.Region, "ServerDC": dc,
		"Members": []*api.AgentMember{h.member(map[string]string{"region": c.cfg.Region, "dc": dc, "role": "nomad", "build": "1.6.5", "leader": "true"})},
	}
	respond(w, http.StatusOK, mustJSON(members), 0, false)
}

func (h *nomadAPI) statusLeader(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, mustJSON("127.0.0.1:4647"), 0, false)
}

func (h *nomadAPI) statusPeers(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, mustJSON([]string{"127.0.0.1:4647"}), 0, false)
}

func (h *nomadAPI) regions(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, mustJSON([]string{h.c.cfg.Region}), 0, false)
}

func (h *nomadAPI) nodesList(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	withResources := r.URL.Query().Get("resources") == "true"
	h.blocking(w, r, []string{tableNodes}, func() (any, error) {
		out := []*nodeStubWire{}
		for _, n := range h.c.nodeList {
			if !strings.HasPrefix(n.api.ID, prefix) {
				continue
			}
			s := &api.NodeListStub{
				Address: n.api.Attributes["unique.network.ip-address"], ID: n.api.ID, Datacenter: n.api.Datacenter,
				Name: n.api.Name, NodeClass: n.api.NodeClass, NodePool: n.api.NodePool, Version: "1.6.5",
				Drain: n.api.Drain, SchedulingEligibility: n.api.SchedulingEligibility, Status: n.api.Status,
				StatusDescription: n.api.StatusDescription, Drivers: n.api.Drivers, LastDrain: n.api.LastDrain,
				CreateIndex: n.api.CreateIndex, ModifyIndex: n.api.ModifyIndex,
			}
			if withResources {
				s.NodeResources, s.ReservedResources = n.api.NodeResources, n.api.ReservedResources
			}
			out = append(out, &nodeStubWire{NodeListStub: s})
		}
		return out, nil
	})
}

func (h *nomadAPI) node(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableNodes}, func() (any, error) {
		n := h.c.nodes[id]
		if n == nil {
			return nil, fmt.Errorf("%w: node not found", ErrNotFound)
		}
		return n.wire(), nil
	})
}

func (h *nomadAPI) nodeAllocations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableAllocs}, func() (any, error) {
		if h.c.nodes[id] == nil {
			return nil, fmt.Errorf("%w: node not found", ErrNotFound)
		}
		out := []*allocWire{}
		for _, a := range h.c.allocList {
			if a.api.NodeID == id {
				out = append(out, wireAlloc(a.api))
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) nodePools(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableNodePools}, func() (any, error) {
		pools := h.c.pools()
		out := make([]*nodePoolWire, len(pools))
		for i, p := range pools {
			out[i] = wirePool(p)
		}
		return out, nil
	})
}

func (h *nomadAPI) nodePool(w http.ResponseWriter, _ *http.Request, name string) {
	h.read(w, []string{tableNodePools}, func() (any, error) {
		for _, p := range h.c.pools() {
			if p.Name == name {
				return wirePool(p), nil
			}
		}
		return nil, fmt.Errorf("%w: node pool not found", ErrNotFound)
	})
}

// pools lists the built-in pools and those the node groups use.
func (c *Cluster) pools() []*api.NodePool {
	idx := c.tableIndex(tableNodePools)
	out := []*api.NodePool{
		{Name: "all", Description: "Node pool with all nodes in the cluster.", CreateIndex: 1, ModifyIndex: 1},
		{Name: "default", Description: "Default node pool.", CreateIndex: 1, ModifyIndex: 1},
	}
	seen := map[string]bool{"all": true, "default": true}
	for _, g := range c.groups {
		if !seen[g.cfg.NodePool] {
			seen[g.cfg.NodePool] = true
			out = append(out, &api.NodePool{Name: g.cfg.NodePool, CreateIndex: idx, ModifyIndex: idx})
		}
	}
	return out
}

// nodeMetaResponse is Nomad's reply to metadata reads and writes.
type nodeMetaResponse struct {
	Dynamic map[string]*string
	Meta    map[string]string
	Static  map[string]string
}

func (c *Cluster) metaResponse(n *simNode) nodeMetaResponse {
	return nodeMetaResponse{Dynamic: n.dynamic, Meta: n.api.Meta, Static: n.static}
}

func (h *nomadAPI) metadataRead(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("node_id")
	h.read(w, nil, func() (any, error) {
		n, err := h.c.nodeByID(id)
		if err != nil {
			return nil, err
		}
		return h.c.metaResponse(n), nil
	})
}

func (h *nomadAPI) metadataApply(w http.ResponseWriter, r *http.Request) {
	var req api.NodeMetaApplyRequest
	if !decode(w, r, &req) {
		return
	}
	if req.NodeID == "" {
		req.NodeID = r.URL.Query().Get("node_id")
	}
	resp, err := h.c.ApplyNodeMeta(req.NodeID, req.Meta)
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, resp, 0, false)
}

// ApplyNodeMeta sets (or, with a nil value, unsets) dynamic metadata on a
// node, as `POST /v1/client/metadata` does, and returns the encoded reply.
func (c *Cluster) ApplyNodeMeta(nodeID string, meta map[string]*string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.nodeByID(nodeID)
	if err != nil {
		return nil, err
	}
	if len(meta) == 0 {
		return nil, fmt.Errorf("%w: missing required Meta object", ErrInvalid)
	}
	for k := range meta {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("%w: invalid metadata key %q", ErrInvalid, k)
		}
	}
	idx := c.bump(tableNodes)
	if n.dynamic == nil {
		n.dynamic = map[string]*string{}
	}
	for k, v := range meta {
		n.dynamic[k] = v
	}
	n.refreshMeta()
	n.api.ModifyIndex = idx
	c.events.add(c.clock.Now(), idx, event{Topic: "Node", Type: "NodeMetadata", Key: n.api.ID, Payload: map[string]any{"Node": n.wire()}})
	return mustJSON(c.metaResponse(n)), nil
}

func (h *nomadAPI) hostStats(w http.ResponseWriter, r *http.Request) {
	hs, err := h.c.HostStats(r.URL.Query().Get("node_id"))
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(hs), 0, false)
}

func (h *nomadAPI) allocStats(w http.ResponseWriter, r *http.Request) {
	st, err := h.c.AllocStats(r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(st), 0, false)
}

func (h *nomadAPI) jobsList(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	prefix := r.URL.Query().Get("prefix")
	h.blocking(w, r, []string{tableJobs, tableSummaries}, func() (any, error) {
		out := []*jobStubWire{}
		for _, j := range h.c.sortedJobs() {
			job := j.current()
			if ns != "*" && *job.Namespace != ns || !strings.HasPrefix(*job.ID, prefix) {
				continue
			}
			h.c.refreshStatus(j)
			out = append(out, &jobStubWire{JobListStub: &api.JobListStub{
				ID: *job.ID, ParentID: *job.ParentID, Name: *job.Name, Namespace: *job.Namespace, Datacenters: job.Datacenters,
				Type: *job.Type, Priority: *job.Priority, Periodic: job.IsPeriodic(), ParameterizedJob: job.IsParameterized(),
				Stop: *job.Stop, Status: *job.Status, StatusDescription: *job.StatusDescription, JobSummary: h.c.summary(j),
				CreateIndex: *job.CreateIndex, ModifyIndex: *job.ModifyIndex, JobModifyIndex: *job.JobModifyIndex,
				SubmitTime: *job.SubmitTime, Meta: job.Meta,
			}, Multiregion: job.Multiregion, NodePool: *job.NodePool})
		}
		return out, nil
	})
}

// registerResponse is Nomad's reply to a job write.
type registerResponse struct {
	EvalCreateIndex uint64
	EvalID          string
	Index           uint64
	JobModifyIndex  uint64
	KnownLeader     bool
	LastContact     int
	NextToken       string
	Warnings        string
}

func (h *nomadAPI) jobsRegister(w http.ResponseWriter, r *http.Request) {
	var req api.JobRegisterRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Job == nil {
		failText(w, http.StatusBadRequest, "Job must be specified")
		return
	}
	if id := r.PathValue("id"); id != "" && (req.Job.ID == nil || *req.Job.ID != id) {
		failText(w, http.StatusBadRequest, "Job ID does not match name")
		return
	}
	if req.Job.Namespace == nil || *req.Job.Namespace == "" {
		ns := namespace(r)
		req.Job.Namespace = &ns
	}
	res, err := h.c.Register(req.Job, req.EnforceIndex, req.JobModifyIndex)
	if err != nil {
		fail(w, err)
		return
	}
	h.writeResult(w, res, false)
}

// writeResult answers a job write. Nomad's register reply says KnownLeader
// false and its scale reply true; knownLeader keeps that difference.
func (h *nomadAPI) writeResult(w http.ResponseWriter, res RegisterResult, knownLeader bool) {
	respond(w, http.StatusOK, mustJSON(registerResponse{
		EvalCreateIndex: res.EvalCreateIndex, EvalID: res.EvalID, Index: res.Index, JobModifyIndex: res.JobModifyIndex,
		KnownLeader: knownLeader,
	}), res.Index, false)
}

func (h *nomadAPI) jobsParse(w http.ResponseWriter, _ *http.Request) {
	failText(w, http.StatusNotImplemented, "sim does not parse HCL jobspecs: submit the job as JSON (nomad job run -output job.nomad.hcl)")
}

// lookupJob finds a job in the request's namespace; call under the lock.
func (h *nomadAPI) lookupJob(r *http.Request) (*simJob, error) {
	j := h.c.jobs[jobKey{namespace(r), r.PathValue("id")}]
	if j == nil {
		return nil, fmt.Errorf("%w: job not found", ErrNotFound)
	}
	return j, nil
}

func (h *nomadAPI) job(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableJobs, tableAllocs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		h.c.refreshStatus(j)
		return j.current(), nil
	})
}

func (h *nomadAPI) jobDeregister(w http.ResponseWriter, r *http.Request) {
	res, err := h.c.Deregister(namespace(r), r.PathValue("id"), r.URL.Query().Get("purge") == "true")
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(map[string]any{
		"EvalCreateIndex": res.EvalCreateIndex, "EvalID": res.EvalID, "Index": res.Index, "JobModifyIndex": res.JobModifyIndex,
		"KnownLeader": false, "LastContact": 0, "NextToken": "", "VolumeEvalID": "", "VolumeEvalIndex": 0,
	}), res.Index, false)
}

func (h *nomadAPI) jobVersions(w http.ResponseWriter, r *http.Request) {
	withDiffs := r.URL.Query().Get("diffs") == "true"
	h.blocking(w, r, []string{tableJobs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		versions := make([]*api.Job, 0, len(j.versions))
		for i := len(j.versions) - 1; i >= 0; i-- {
			versions = append(versions, j.versions[i])
		}
		var diffs []*api.JobDiff
		if withDiffs {
			for i := 0; i+1 < len(versions); i++ {
				diffs = append(diffs, jobDiff(versions[i+1], versions[i]))
			}
		}
		// Nomad's reply carries its query metadata in the body too.
		return map[string]any{
			"Diffs": diffs, "Versions": versions,
			"Index": h.c.tableIndex(tableJobs), "KnownLeader": true, "LastContact": 0, "NextToken": "",
		}, nil
	})
}

func (h *nomadAPI) jobSummary(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableSummaries, tableAllocs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		return h.c.summary(j), nil
	})
}

func (h *nomadAPI) jobAllocations(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "true"
	h.blocking(w, r, []string{tableAllocs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		job := j.current()
		out := []*allocStubWire{}
		for _, a := range h.c.allocList {
			if a.api.JobID == *job.ID && a.api.Namespace == *job.Namespace && (all || a.api.Job == nil || *a.api.Job.CreateIndex == *job.CreateIndex) {
				out = append(out, a.stub(false))
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) jobEvaluations(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableEvals}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		out := []*api.Evaluation{}
		for _, e := range h.c.evalList {
			if e.JobID == *j.current().ID && e.Namespace == *j.current().Namespace {
				out = append(out, e)
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) jobScaleStatus(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableJobs, tableAllocs, tableScaling}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		job := j.current()
		st := &api.JobScaleStatusResponse{
			JobID: *job.ID, Namespace: *job.Namespace, JobCreateIndex: *job.CreateIndex,
			JobModifyIndex: *job.ModifyIndex, JobStopped: *job.Stop, TaskGroups: map[string]api.TaskGroupScaleStatus{},
		}
		for _, tg := range job.TaskGroups {
			s := api.TaskGroupScaleStatus{Desired: *tg.Count, Events: j.scalingEvents[*tg.Name]}
			live, _ := h.c.groupAllocs(*job.Namespace, *job.ID, *tg.Name)
			for _, a := range live {
				s.Placed++
				if a.running() {
					s.Running++
				}
				if ds := a.api.DeploymentStatus; ds != nil && ds.Healthy != nil {
					if *ds.Healthy {
						s.Healthy++
					} else {
						s.Unhealthy++
					}
				}
			}
			st.TaskGroups[*tg.Name] = s
		}
		return st, nil
	})
}

func (h *nomadAPI) jobScale(w http.ResponseWriter, r *http.Request) {
	var req api.ScalingRequest
	if !decode(w, r, &req) {
		return
	}
	group := req.Target["Group"]
	if group == "" {
		failText(w, http.StatusBadRequest, "missing task group name for scaling action")
		return
	}
	res, err := h.c.Scale(namespace(r), r.PathValue("id"), group, req.Count, req.Message, req.Error, req.Meta, req.JobModifyIndex)
	if err != nil {
		fail(w, err)
		return
	}
	h.writeResult(w, res, true)
}

// planResponse is Nomad's reply to a plan.
type planResponse struct {
	Annotations        *planAnnotations
	CreatedEvals       []*api.Evaluation
	Diff               *api.JobDiff
	FailedTGAllocs     map[string]*api.AllocationMetric
	Index              uint64
	JobModifyIndex     uint64
	NextPeriodicLaunch *time.Time
	Warnings           string
}

func (h *nomadAPI) jobPlan(w http.ResponseWriter, r *http.Request) {
	var req api.JobPlanRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Job == nil {
		failText(w, http.StatusBadRequest, "Job must be specified")
		return
	}
	if req.Job.ID == nil || *req.Job.ID != r.PathValue("id") {
		failText(w, http.StatusBadRequest, "Job ID does not match")
		return
	}
	if req.Job.Namespace == nil || *req.Job.Namespace == "" {
		ns := namespace(r)
		req.Job.Namespace = &ns
	}
	res, err := h.c.Plan(req.Job, req.Diff)
	if err != nil {
		fail(w, err)
		return
	}
	out := planResponse{
		Annotations:    wireAnnotations(res.DesiredTGUpdates),
		Diff:           res.Diff,
		FailedTGAllocs: res.FailedTGAllocs,
		Index:          res.Index,
		JobModifyIndex: res.JobModifyIndex,
	}
	if len(res.FailedTGAllocs) > 0 {
		// Registering would leave a blocked evaluation behind; the plan
		// shows it as Nomad does, without creating it.
		now := h.c.Now().UnixNano()
		out.CreatedEvals = []*api.Evaluation{{
			CreateTime: now, ModifyTime: now,
			Namespace: *req.Job.Namespace, JobID: *req.Job.ID, Priority: *req.Job.Priority, Type: *req.Job.Type,
			Status: evalBlocked, StatusDescription: "created to place remaining allocations",
			TriggeredBy: "queued-allocs", FailedTGAllocs: res.FailedTGAllocs, JobModifyIndex: res.JobModifyIndex,
			ClassEligibility: res.ClassEligibility,
		}}
	}
	respond(w, http.StatusOK, mustJSON(out), res.Index, false)
}

func (h *nomadAPI) scalingPolicies(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	job := r.URL.Query().Get("job")
	typ := r.URL.Query().Get("type")
	h.blocking(w, r, []string{tableScaling}, func() (any, error) {
		out := []*api.ScalingPolicyListStub{}
		for _, id := range slices.Sorted(maps.Keys(h.c.policies)) {
			p := h.c.policies[id]
			if ns != "*" && p.Namespace != ns || job != "" && p.Target["Job"] != job || typ != "" && p.Type != typ {
				continue
			}
			out = append(out, &api.ScalingPolicyListStub{ID: p.ID, Enabled: *p.Enabled, Type: p.Type, Target: p.Target, CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex})
		}
		return out, nil
	})
}

func (h *nomadAPI) scalingPolicy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableScaling}, func() (any, error) {
		p := h.c.policies[id]
		if p == nil {
			return nil, fmt.Errorf("%w: scaling policy not found", ErrNotFound)
		}
		return p, nil
	})
}

func (h *nomadAPI) allocsList(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	prefix := r.URL.Query().Get("prefix")
	withResources := r.URL.Query().Get("resources") == "true"
	h.blocking(w, r, []string{tableAllocs}, func() (any, error) {
		out := []*allocStubWire{}
		for _, a := range h.c.allocList {
			if (ns == "*" || a.api.Namespace == ns) && strings.HasPrefix(a.api.ID, prefix) {
				out = append(out, a.stub(withResources))
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) alloc(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableAllocs}, func() (any, error) {
		a := h.c.allocs[id]
		if a == nil {
			return nil, fmt.Errorf("%w: alloc not found", ErrNotFound)
		}
		return wireAlloc(a.api), nil
	})
}

func (h *nomadAPI) allocStop(w http.ResponseWriter, r *http.Request) {
	evalID, idx, err := h.c.StopAlloc(r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(map[string]any{"EvalID": evalID, "Index": idx}), idx, false)
}

func (h *nomadAPI) evalsList(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	job := r.URL.Query().Get("job")
	status := r.URL.Query().Get("status")
	h.blocking(w, r, []string{tableEvals}, func() (any, error) {
		out := []*api.Evaluation{}
		for _, e := range h.c.evalList {
			if (ns == "*" || e.Namespace == ns) && (job == "" || e.JobID == job) && (status == "" || e.Status == status) {
				out = append(out, e)
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) eval(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableEvals}, func() (any, error) {
		e := h.c.evals[id]
		if e == nil {
			return nil, fmt.Errorf("%w: eval not found", ErrNotFound)
		}
		return e, nil
	})
}

func (h *nomadAPI) evalAllocations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableAllocs}, func() (any, error) {
		out := []*allocStubWire{}
		for _, a := range h.c.allocList {
			if a.api.EvalID == id {
				out = append(out, a.stub(false))
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) servicesList(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	h.blocking(w, r, []string{tableServices}, func() (any, error) {
		byNS := map[string]map[string][]string{}
		for _, id := range slices.Sorted(maps.Keys(h.c.services)) {
			s := h.c.services[id]
			if ns != "*" && s.Namespace != ns {
				continue
			}
			if byNS[s.Namespace] == nil {
				byNS[s.Namespace] = map[string][]string{}
			}
			byNS[s.Namespace][s.ServiceName] = mergeTags(byNS[s.Namespace][s.ServiceName], s.Tags)
		}
		out := []*api.ServiceRegistrationListStub{}
		for _, n := range slices.Sorted(maps.Keys(byNS)) {
			stub := &api.ServiceRegistrationListStub{Namespace: n}
			for _, name := range slices.Sorted(maps.Keys(byNS[n])) {
				stub.Services = append(stub.Services, &api.ServiceRegistrationStub{ServiceName: name, Tags: byNS[n][name]})
			}
			out = append(out, stub)
		}
		return out, nil
	})
}

func mergeTags(have, add []string) []string {
	if have == nil {
		have = []string{}
	}
	for _, t := range add {
		found := false
		for _, h := range have {
			found = found || h == t
		}
		if !found {
			have = append(have, t)
		}
	}
	return have
}

func (h *nomadAPI) service(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	name := r.PathValue("name")
	h.blocking(w, r, []string{tableServices}, func() (any, error) {
		out := []*api.ServiceRegistration{}
		for _, id := range slices.Sorted(maps.Keys(h.c.services)) {
			if s := h.c.services[id]; s.ServiceName == name && (ns == "*" || s.Namespace == ns) {
				out = append(out, s)
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) simNodeGroups(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, mustJSON(h.c.NodeGroups()), 0, false)
}

func (h *nomadAPI) simNodeGroup(w http.ResponseWriter, r *http.Request) {
	st, err := h.c.NodeGroup(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(st), 0, false)
}

// nodeGroupScaleRequest is the body of a node group resize.
type nodeGroupScaleRequest struct {
	Count *int
}

func (h *nomadAPI) simNodeGroupScale(w http.ResponseWriter, r *http.Request) {
	var req nodeGroupScaleRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Count == nil {
		failText(w, http.StatusBadRequest, `body must be {"Count": N}`)
		return
	}
	st, err := h.c.ScaleNodeGroup(r.PathValue("name"), *req.Count)
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(st), 0, false)
}

func (h *nomadAPI) simTelemetry(w http.ResponseWriter, r *http.Request) {
	t, err := h.c.Telemetry(r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(t), 0, false)
}

// SimStatus is what `/v1/sim/status` reports: the virtual time, what the
// workload model has counted and how many API writes were served.
type SimStatus struct {
	Now    time.Time
	Totals Totals
	Writes int64
}

func (h *nomadAPI) simStatus(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, mustJSON(SimStatus{Now: h.c.Now(), Totals: h.c.Totals(), Writes: h.c.Writes()}), 0, false)
}

// advanceRequest is the body of `POST /v1/sim/advance`.
type advanceRequest struct {
	// Duration is how far to move the virtual clock, e.g. "10m".
	Duration string
}

func (h *nomadAPI) simAdvance(w http.ResponseWriter, r *http.Request) {
	var req advanceRequest
	if !decode(w, r, &req) {
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d < 0 {
		failText(w, http.StatusBadRequest, fmt.Sprintf("Duration %q is not a non-negative duration such as \"10m\"", req.Duration))
		return
	}
	h.c.Advance(d)
	respond(w, http.StatusOK, mustJSON(SimStatus{Now: h.c.Now(), Totals: h.c.Totals(), Writes: h.c.Writes()}), 0, false)
}
