package orchestrator

import (
	"context"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// deploymentStatusInitializing is the first status of a multiregion
// deployment in Nomad's server; the api package has no constant for it.
const deploymentStatusInitializing = "initializing"

// DeploymentActive reports whether Nomad still works on a deployment in
// this status: running, paused, pending, blocked, unblocking or
// initializing. Nomad refuses to scale a job then, and a register cancels
// the deployment to start another, so Foresight writes nothing to the job.
func DeploymentActive(status string) bool {
	switch status {
	case api.DeploymentStatusRunning, api.DeploymentStatusPaused, api.DeploymentStatusPending,
		api.DeploymentStatusBlocked, api.DeploymentStatusUnblocking, deploymentStatusInitializing:
		return true
	}
	return false
}

// Deployment is a deployment of a group's job that Nomad has not finished:
// what held a write, and why a group is not ready to scale.
type Deployment struct {
	ID          string `json:"id"`
	JobVersion  uint64 `json:"job_version"`
	Status      string `json:"status"`
	Description string `json:"description"`
}

// String names the deployment, the version it rolls out and its status.
func (d *Deployment) String() string {
	return fmt.Sprintf("deployment %s of job version %d is %s (%s)", shortID(d.ID), d.JobVersion, d.Status, d.Description)
}

// hold is the reason a write waits for d.
func (d *Deployment) hold() string {
	return d.String() + ": Foresight writes nothing to the job until it ends"
}

// ActiveDeployment returns the deployment of job (as read from Nomad, in
// namespace ns) that Nomad still works on, nil when there is none: its
// latest deployment, when active and of this incarnation of the job (the
// same test as Nomad's own refusal to scale).
func ActiveDeployment(ctx context.Context, nomad *api.Client, ns string, job *api.Job) (*Deployment, error) {
	d, _, err := nomad.Jobs().LatestDeployment(*job.ID, (&api.QueryOptions{Namespace: ns}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read the deployment of job %q: %w", *job.ID, err)
	}
	if d == nil || !DeploymentActive(d.Status) || job.CreateIndex != nil && d.JobCreateIndex != *job.CreateIndex {
		return nil, nil
	}
	return &Deployment{ID: d.ID, JobVersion: d.JobVersion, Status: d.Status, Description: d.StatusDescription}, nil
}
