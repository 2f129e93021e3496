package sim

import (
	"net/http"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// jobDeployments serves `/v1/job/<id>/deployments`: the deployments of the
// job as now registered, or of every incarnation of its ID with ?all=true.
func (h *nomadAPI) jobDeployments(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "true"
	h.blocking(w, r, []string{tableDeployments, tableJobs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		job := j.current()
		out := []*simDeployment{}
		for _, d := range sortedDeployments(h.c.deploymentList) {
			if d.Namespace == *job.Namespace && d.JobID == *job.ID && (all || d.JobCreateIndex == *job.CreateIndex) {
				out = append(out, d)
			}
		}
		return out, nil
	})
}

// jobDeployment serves `/v1/job/<id>/deployment`: the job's latest
// deployment, null when it has none.
func (h *nomadAPI) jobDeployment(w http.ResponseWriter, r *http.Request) {
	h.blocking(w, r, []string{tableDeployments, tableJobs}, func() (any, error) {
		j, err := h.lookupJob(r)
		if err != nil {
			return nil, err
		}
		if d := h.c.latestDeployment(*j.current().Namespace, *j.current().ID); d != nil {
			return d, nil
		}
		return nil, nil
	})
}

// deploymentsList serves `/v1/deployments`, oldest first, filtered by
// ?namespace (* for all) and ?prefix.
func (h *nomadAPI) deploymentsList(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	prefix := r.URL.Query().Get("prefix")
	h.blocking(w, r, []string{tableDeployments}, func() (any, error) {
		out := []*simDeployment{}
		for _, d := range h.c.deploymentList {
			if (ns == "*" || d.Namespace == ns) && strings.HasPrefix(d.ID, prefix) {
				out = append(out, d)
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) deployment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableDeployments}, func() (any, error) {
		d := h.c.deployments[id]
		if d == nil {
			return nil, errDeploymentNotFound
		}
		return d, nil
	})
}

// deploymentAllocations serves `/v1/deployment/allocations/<id>`: the
// allocations the deployment placed or updated.
func (h *nomadAPI) deploymentAllocations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.blocking(w, r, []string{tableAllocs, tableDeployments}, func() (any, error) {
		if h.c.deployments[id] == nil {
			return nil, errDeploymentNotFound
		}
		out := []*allocStubWire{}
		for _, a := range h.c.allocList {
			if a.api.DeploymentID == id {
				out = append(out, a.stub(false))
			}
		}
		return out, nil
	})
}

func (h *nomadAPI) deploymentPromote(w http.ResponseWriter, r *http.Request) {
	var req api.DeploymentPromoteRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := h.c.PromoteDeployment(r.PathValue("id"), req.All, req.Groups)
	h.deploymentWritten(w, res, err)
}

func (h *nomadAPI) deploymentPause(w http.ResponseWriter, r *http.Request) {
	var req api.DeploymentPauseRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := h.c.PauseDeployment(r.PathValue("id"), req.Pause)
	h.deploymentWritten(w, res, err)
}

func (h *nomadAPI) deploymentFail(w http.ResponseWriter, r *http.Request) {
	res, err := h.c.FailDeployment(r.PathValue("id"))
	h.deploymentWritten(w, res, err)
}

func (h *nomadAPI) deploymentWritten(w http.ResponseWriter, res DeploymentUpdate, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	respond(w, http.StatusOK, mustJSON(res), res.Index, false)
}
