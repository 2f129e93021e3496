package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

func TestDeploymentActiveFollowsNomad(t *testing.T) {
	for status, want := range map[string]bool{
		api.DeploymentStatusRunning: true, api.DeploymentStatusPaused: true, api.DeploymentStatusPending: true,
		api.DeploymentStatusBlocked: true, api.DeploymentStatusUnblocking: true, "initializing": true,
		api.DeploymentStatusSuccessful: false, api.DeploymentStatusFailed: false, api.DeploymentStatusCancelled: false,
	} {
		if got := DeploymentActive(status); got != want {
			t.Errorf("DeploymentActive(%q) = %v, want %v", status, got, want)
		}
	}
}

// The user rolls out a new image; while Nomad's deployment of it runs (or
// is paused), an enforced decision is held, naming the deployment, and
// Nomad is not written; once it is done, the same decision is written.
func TestNothingIsWrittenWhileTheJobDeploys(t *testing.T) {
	c, client := startSim(t)
	job := readApp(t, client)
	job.TaskGroups[0].Tasks[0].Config["image"] = "app:2"
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	dep, _, err := client.Jobs().LatestDeployment("app", nil)
	if err != nil || dep == nil || dep.Status != api.DeploymentStatusRunning {
		t.Fatalf("the user's deployment: %+v, %v", dep, err)
	}

	d := &decider{cfg: Config{Mode: ModeEnforce}, room: simRoom(), demand: cpu(2800), scores: scores("fast", 50)}
	act := NewActuator(client)
	held := func(status string) {
		t.Helper()
		version, writes := *readApp(t, client).Version, c.Writes()
		res, err := act.Apply(context.Background(), appRef, d.decide)
		if err != nil {
			t.Fatal(err)
		}
		if res.Written || res.Deployment == nil || res.Deployment.ID != dep.ID || res.Deployment.Status != status ||
			!strings.Contains(res.Held, "deployment "+dep.ID[:8]) || !strings.Contains(res.Held, " is "+status+" ") {
			t.Fatalf("written %v, held %q, deployment %+v; want held by deployment %s %s", res.Written, res.Held, res.Deployment, dep.ID[:8], status)
		}
		if len(res.Changes) == 0 {
			t.Fatal("a held decision still reports what it would change")
		}
		if c.Writes() != writes || *readApp(t, client).Version != version {
			t.Fatalf("%d API writes during the deployment", c.Writes()-writes)
		}
	}
	held(api.DeploymentStatusRunning)

	if _, _, err := client.Deployments().Pause(dep.ID, true, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	held(api.DeploymentStatusPaused)
	if _, _, err := client.Deployments().Pause(dep.ID, false, nil); err != nil {
		t.Fatal(err)
	}

	c.Advance(2 * time.Minute)
	if dep, _, _ = client.Deployments().Info(dep.ID, nil); dep.Status != api.DeploymentStatusSuccessful {
		t.Fatalf("the user's deployment did not finish: %s", dep.Status)
	}
	res, err := act.Apply(context.Background(), appRef, d.decide)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || res.Deployment != nil || res.Held != "" {
		t.Fatalf("after the deployment: %+v", res)
	}
	if got := readApp(t, client); *got.TaskGroups[0].Count != 5 || got.TaskGroups[0].Tasks[0].Config["image"] != "app:2" {
		t.Fatalf("written job: count %d image %v", *got.TaskGroups[0].Count, got.TaskGroups[0].Tasks[0].Config["image"])
	}
}

func TestMigrateStopsNothingWhileTheJobDeploys(t *testing.T) {
	c, client := startMigrateSim(t)
	job, _, err := client.Jobs().Info("api", nil)
	if err != nil {
		t.Fatal(err)
	}
	job.TaskGroups[0].Tasks[0].Env = map[string]string{"V": "2"}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	m := &Migrator{Nomad: client, Clock: c.Clock()}
	writes := c.Writes()
	res, err := m.Step(context.Background(), apiRef, "b", classOf(t, client), Resources{CPUMHz: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "" || res.Deployment == nil || !strings.Contains(res.Held, "is running") || c.Writes() != writes {
		t.Fatalf("step during a deployment: %+v, %d writes", res, c.Writes()-writes)
	}

	// Once the rollout is done the migrator moves allocations again.
	c.Advance(5 * time.Minute)
	res, err = m.Step(context.Background(), apiRef, "b", classOf(t, client), Resources{CPUMHz: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment != nil || res.Held != "" || res.Stopped == "" && !res.Done {
		t.Fatalf("step after the deployment: %+v", res)
	}
}
