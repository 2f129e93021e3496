package leader

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/orchestrator"
	"github.com/foresight-nomad/foresight/telemetry"
)

// scale decides one group with the count asked, acting as a pass would.
func (d *decider) scale(ctx context.Context, group string, req leaderapi.ScaleRequest) (leaderapi.ScaleResponse, error) {
	if req.Count == nil {
		return leaderapi.ScaleResponse{}, badRequest("count is required")
	}
	if *req.Count < 0 {
		return leaderapi.ScaleResponse{}, badRequest("count cannot be negative, got %d", *req.Count)
	}
	ref, err := refOf(group)
	if err != nil {
		return leaderapi.ScaleResponse{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if req.Error {
		entry := leaderapi.Decision{Time: d.st.clock.Now(), Group: group, Error: "the autoscaler's policy failed: " + req.Reason}
		d.st.decisions.Add(entry)
		return leaderapi.ScaleResponse{Count: *req.Count, CountBefore: *req.Count, Reasons: []string{entry.Error}}, nil
	}
	if _, _, err := d.nomad.Jobs().Info(ref.Job, (&nomadapi.QueryOptions{Namespace: ref.Namespace}).WithContext(ctx)); err != nil {
		if strings.Contains(err.Error(), "404") {
			return leaderapi.ScaleResponse{}, notFound("job %q not found in namespace %q", ref.Job, ref.Namespace)
		}
		return leaderapi.ScaleResponse{}, err
	}
	ps, err := d.begin(ctx)
	if err != nil {
		return leaderapi.ScaleResponse{}, err
	}
	entry, logged := d.decideOne(ctx, d.act, ps, group, &ask{count: int(*req.Count), reason: req.Reason})
	if !logged {
		d.st.decisions.Add(entry)
	}
	// Capacity for this group is asked for now, against the larger of its
	// demand and the last full pass's per class: one group's demand alone
	// would look like spare.
	if len(ps.requests) > 0 {
		for class, r := range d.lastDemand {
			cur := ps.demand[class]
			ps.demand[class] = orchestrator.Resources{CPUMHz: max(cur.CPUMHz, r.CPUMHz), MemoryMB: max(cur.MemoryMB, r.MemoryMB)}
		}
		d.reconcile(ctx, ps)
	}
	if entry.Error != "" {
		return leaderapi.ScaleResponse{}, fmt.Errorf("%s", entry.Error)
	}
	dec := entry.Result.Decision
	return leaderapi.ScaleResponse{
		CountBefore: int64(dec.CurrentCount), Count: int64(dec.Count), Written: entry.Result.Written,
		Mode: string(dec.Mode), Held: entry.Result.Held, Reasons: dec.Reasons, Deployment: entry.Result.Deployment,
	}, nil
}

// scaleStatus reads the group's scale status from Nomad: not ready while
// the job is stopped or deploying.
func (d *decider) scaleStatus(ctx context.Context, group string) (leaderapi.ScaleStatus, error) {
	ref, err := refOf(group)
	if err != nil {
		return leaderapi.ScaleStatus{}, err
	}
	q := (&nomadapi.QueryOptions{Namespace: ref.Namespace}).WithContext(ctx)
	job, _, err := d.nomad.Jobs().Info(ref.Job, q)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return leaderapi.ScaleStatus{}, notFound("job %q not found in namespace %q", ref.Job, ref.Namespace)
		}
		return leaderapi.ScaleStatus{}, err
	}
	var tg *nomadapi.TaskGroup
	for _, g := range job.TaskGroups {
		if g.Name != nil && *g.Name == ref.Group {
			tg = g
		}
	}
	if tg == nil {
		return leaderapi.ScaleStatus{}, notFound("job %q has no group %q", ref.Job, ref.Group)
	}
	st, _, err := d.nomad.Jobs().ScaleStatus(ref.Job, q)
	if err != nil {
		return leaderapi.ScaleStatus{}, err
	}
	tgs, ok := st.TaskGroups[ref.Group]
	if !ok {
		return leaderapi.ScaleStatus{}, notFound("job %q has no group %q in its scale status", ref.Job, ref.Group)
	}
	dep, err := orchestrator.ActiveDeployment(ctx, d.nomad, ref.Namespace, job)
	if err != nil {
		return leaderapi.ScaleStatus{}, err
	}
	out := leaderapi.ScaleStatus{Count: int64(tgs.Running), Ready: !st.JobStopped && dep == nil, Deployment: dep}
	if len(tgs.Events) > 0 {
		out.LastEvent = int64(tgs.Events[0].Time)
	}
	d.mu.Lock()
	if damp := d.damping[group]; damp != nil && damp.LastScale.UnixNano() > out.LastEvent {
		out.LastEvent = damp.LastScale.UnixNano()
	}
	d.mu.Unlock()
	if pol, err := orchestrator.PolicyOf(d.cfg, job.Meta, tg.Meta); err != nil {
		out.Hold = err.Error()
	} else {
		out.Mode = string(pol.Mode)
	}
	return out, nil
}

// refOf splits "namespace/job/group".
func refOf(group string) (telemetry.GroupRef, error) {
	parts := strings.SplitN(group, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return telemetry.GroupRef{}, badRequest("group %q is not namespace/job/group", group)
	}
	return telemetry.GroupRef{Namespace: parts[0], Job: parts[1], Group: parts[2]}, nil
}

// registerScale serves the scale endpoints of foresight-target.
func (l *leaderAPI) registerScale(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/group/{ns}/{job}/{group}/scale", func(w http.ResponseWriter, r *http.Request) {
		if l.st.dec == nil {
			leaderapi.WriteJSON(w, nil, leaderapi.Errorf(http.StatusServiceUnavailable, "the leader is not deciding yet"))
			return
		}
		v, err := l.st.dec.scaleStatus(r.Context(), groupOf(r))
		leaderapi.WriteJSON(w, v, err)
	})
	mux.HandleFunc("POST /v1/group/{ns}/{job}/{group}/scale", func(w http.ResponseWriter, r *http.Request) {
		if l.st.dec == nil {
			leaderapi.WriteJSON(w, nil, leaderapi.Errorf(http.StatusServiceUnavailable, "the leader is not deciding yet"))
			return
		}
		var req leaderapi.ScaleRequest
		if err := decodeJSON(r, &req); err != nil {
			leaderapi.WriteJSON(w, nil, err)
			return
		}
		v, err := l.st.dec.scale(r.Context(), groupOf(r), req)
		leaderapi.WriteJSON(w, v, err)
	})
}

// decodeJSON reads a request body of at most 64 KiB into v, refusing
// unknown fields.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad request body: %v", err)
	}
	return nil
}
