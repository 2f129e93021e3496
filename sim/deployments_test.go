package sim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// latestDeployment reads the job's latest deployment through the official
// client.
func latestDeployment(t *testing.T, client *api.Client, job string) *api.Deployment {
	t.Helper()
	d, _, err := client.Jobs().LatestDeployment(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		t.Fatalf("job %s has no deployment", job)
	}
	return d
}

// liveAllocs lists the job's allocations that are not terminal.
func liveAllocs(t *testing.T, client *api.Client, job string) []*api.AllocationListStub {
	t.Helper()
	stubs, _, err := client.Jobs().Allocations(job, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.AllocationListStub
	for _, a := range stubs {
		if a.DesiredStatus == api.AllocDesiredStatusRun && a.ClientStatus != api.AllocClientStatusComplete &&
			a.ClientStatus != api.AllocClientStatusFailed {
			out = append(out, a)
		}
	}
	return out
}

// withEnv registers the job again with a changed environment: a
// destructive change that replaces every allocation.
func withEnv(t *testing.T, client *api.Client, job, value string, edit func(*api.Job)) {
	t.Helper()
	j, _, err := client.Jobs().Info(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.TaskGroups[0].Tasks[0].Env = map[string]string{"VERSION": value}
	if edit != nil {
		edit(j)
	}
	if _, _, err := client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
}

func statusCode(err error) int {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode()
	}
	return 0
}

func TestDeploymentRollsOutByHealthAndBlocksScaling(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")

	// Registering the service job started its first deployment; it runs
	// until both allocations have been healthy for min_healthy_time.
	first := latestDeployment(t, client, "app")
	if first.Status != api.DeploymentStatusRunning || first.JobVersion != 0 || first.TaskGroups["app"].DesiredTotal != 2 {
		t.Fatalf("first deployment: %s v%d %+v", first.Status, first.JobVersion, first.TaskGroups["app"])
	}
	count := 3
	_, _, err := client.Jobs().Scale("app", "app", &count, "too early", false, nil, nil)
	if statusCode(err) != http.StatusBadRequest || !strings.HasSuffix(err.Error(), "(job scaling blocked due to active deployment)") {
		t.Fatalf("scale during a deployment: %v, want Nomad's 400", err)
	}
	if job, _, _ := client.Jobs().Info("app", nil); *job.Version != 0 || *job.TaskGroups[0].Count != 2 {
		t.Fatal("a refused scale changed the job")
	}

	c.Advance(time.Minute)
	first, _, err = client.Deployments().Info(first.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != api.DeploymentStatusSuccessful || first.StatusDescription != "Deployment completed successfully" || first.TaskGroups["app"].HealthyAllocs != 2 {
		t.Fatalf("after a minute: %s (%s) %+v", first.Status, first.StatusDescription, first.TaskGroups["app"])
	}
	if job, _, _ := client.Jobs().Info("app", nil); !*job.Stable {
		t.Fatal("a successful deployment leaves its job version stable")
	}
	for _, a := range liveAllocs(t, client, "app") {
		if a.DeploymentStatus == nil || a.DeploymentStatus.Healthy == nil || !*a.DeploymentStatus.Healthy {
			t.Fatalf("allocation %s: deployment status %+v, want healthy", a.ID, a.DeploymentStatus)
		}
	}

	// A destructive change rolls out one allocation at a time (Nomad's
	// default max_parallel 1): the next replacement waits for the last one
	// to be healthy.
	withEnv(t, client, "app", "2", nil)
	second := latestDeployment(t, client, "app")
	if second.ID == first.ID || second.JobVersion != 1 || second.TaskGroups["app"].PlacedAllocs != 1 {
		t.Fatalf("second deployment: v%d %+v", second.JobVersion, second.TaskGroups["app"])
	}
	for range 20 {
		c.Advance(5 * time.Second)
		notHealthy := 0
		for _, a := range liveAllocs(t, client, "app") {
			if a.JobVersion == second.JobVersion && (a.DeploymentStatus == nil || a.DeploymentStatus.Healthy == nil) {
				notHealthy++
			}
		}
		if notHealthy > 1 {
			t.Fatalf("%d replacements not yet healthy at once, max_parallel is 1", notHealthy)
		}
	}
	second = latestDeployment(t, client, "app")
	if second.Status != api.DeploymentStatusSuccessful || second.TaskGroups["app"].HealthyAllocs != 2 {
		t.Fatalf("second deployment after the rollout: %s %+v", second.Status, second.TaskGroups["app"])
	}
	for _, a := range liveAllocs(t, client, "app") {
		if a.JobVersion != 1 {
			t.Fatalf("allocation %s still at version %d", a.ID, a.JobVersion)
		}
	}
	all, _, err := client.Jobs().Deployments("app", false, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("job deployments: %d (%v), want 2", len(all), err)
	}

	// Now the count may change.
	if _, _, err := client.Jobs().Scale("app", "app", &count, "after the rollout", false, nil, nil); err != nil {
		t.Fatalf("scale after the deployment: %v", err)
	}
}

func TestNewVersionCancelsTheRunningDeployment(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", nil)
	v1 := latestDeployment(t, client, "app")
	withEnv(t, client, "app", "3", nil)
	v1, _, err := client.Deployments().Info(v1.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Status != api.DeploymentStatusCancelled || v1.StatusDescription != "Cancelled due to newer version of job" {
		t.Fatalf("replaced deployment: %s (%s)", v1.Status, v1.StatusDescription)
	}
	if v2 := latestDeployment(t, client, "app"); v2.JobVersion != 2 || v2.Status != api.DeploymentStatusRunning {
		t.Fatalf("new deployment: v%d %s", v2.JobVersion, v2.Status)
	}
	if _, _, err := client.Jobs().Deregister("app", false, nil); err != nil {
		t.Fatal(err)
	}
	if d := latestDeployment(t, client, "app"); d.Status != api.DeploymentStatusCancelled || d.StatusDescription != "Cancelled because job is stopped" {
		t.Fatalf("deployment of a stopped job: %s (%s)", d.Status, d.StatusDescription)
	}
}

func TestCanariesHoldTheRolloutUntilPromoted(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", func(j *api.Job) { j.TaskGroups[0].Update.Canary = intPtr(1) })
	d := latestDeployment(t, client, "app")
	tg := d.TaskGroups["app"]
	if tg.DesiredCanaries != 1 || len(tg.PlacedCanaries) != 1 || d.StatusDescription != "Deployment is running but requires manual promotion" {
		t.Fatalf("canary deployment: %q %+v", d.StatusDescription, tg)
	}
	if n := len(liveAllocs(t, client, "app")); n != 3 {
		t.Fatalf("%d live allocations, want the 2 old ones and the canary", n)
	}
	if _, _, err := client.Deployments().PromoteAll(d.ID, nil); err == nil || !strings.Contains(err.Error(), "is not healthy") {
		t.Fatalf("promoting an unhealthy canary: %v, want refused", err)
	}

	// Healthy canaries still wait for the promotion.
	c.Advance(5 * time.Minute)
	d = latestDeployment(t, client, "app")
	if d.Status != api.DeploymentStatusRunning || d.TaskGroups["app"].HealthyAllocs != 1 {
		t.Fatalf("unpromoted deployment: %s %+v", d.Status, d.TaskGroups["app"])
	}
	old := 0
	for _, a := range liveAllocs(t, client, "app") {
		if a.JobVersion == 0 {
			old++
		}
	}
	if old != 2 {
		t.Fatalf("%d old allocations left before the promotion, want 2", old)
	}

	if _, _, err := client.Deployments().PromoteAll(d.ID, nil); err != nil {
		t.Fatalf("promote: %v", err)
	}
	c.Advance(2 * time.Minute)
	d = latestDeployment(t, client, "app")
	if d.Status != api.DeploymentStatusSuccessful {
		t.Fatalf("after the promotion: %s (%s) %+v", d.Status, d.StatusDescription, d.TaskGroups["app"])
	}
	live := liveAllocs(t, client, "app")
	if len(live) != 2 {
		t.Fatalf("%d live allocations after the rollout, want 2", len(live))
	}
	for _, a := range live {
		if a.JobVersion != 1 {
			t.Fatalf("allocation %s at version %d after the rollout", a.ID, a.JobVersion)
		}
	}
}

func TestAutoPromoteNeedsNoPromotion(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", func(j *api.Job) {
		j.TaskGroups[0].Update.Canary = intPtr(1)
		j.TaskGroups[0].Update.AutoPromote = boolPtr(true)
	})
	if d := latestDeployment(t, client, "app"); d.StatusDescription != "Deployment is running pending automatic promotion" {
		t.Fatalf("description %q", d.StatusDescription)
	}
	c.Advance(3 * time.Minute)
	if d := latestDeployment(t, client, "app"); d.Status != api.DeploymentStatusSuccessful || !d.TaskGroups["app"].Promoted {
		t.Fatalf("auto-promoted deployment: %s %+v", d.Status, d.TaskGroups["app"])
	}
}

func TestPausedDeploymentHoldsAndStaysActive(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", nil)
	d := latestDeployment(t, client, "app")
	if _, _, err := client.Deployments().Pause(d.ID, true, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(5 * time.Minute)
	d = latestDeployment(t, client, "app")
	if d.Status != api.DeploymentStatusPaused || d.TaskGroups["app"].PlacedAllocs != 1 {
		t.Fatalf("paused deployment: %s %+v, want 1 placed and no more", d.Status, d.TaskGroups["app"])
	}
	count := 3
	if _, _, err := client.Jobs().Scale("app", "app", &count, "", false, nil, nil); statusCode(err) != http.StatusBadRequest {
		t.Fatalf("scale while paused: %v, want 400", err)
	}
	if _, _, err := client.Deployments().Pause(d.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute)
	if d = latestDeployment(t, client, "app"); d.Status != api.DeploymentStatusSuccessful {
		t.Fatalf("resumed deployment: %s %+v", d.Status, d.TaskGroups["app"])
	}
}

func TestFailedDeploymentRevertsToTheStableVersion(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", func(j *api.Job) { j.TaskGroups[0].Update.AutoRevert = boolPtr(true) })
	d := latestDeployment(t, client, "app")
	res, _, err := client.Deployments().Fail(d.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.RevertedJobVersion == nil || *res.RevertedJobVersion != 0 {
		t.Fatalf("reverted to %v, want version 0", res.RevertedJobVersion)
	}
	d, _, _ = client.Deployments().Info(d.ID, nil)
	if d.Status != api.DeploymentStatusFailed || d.StatusDescription != "Deployment marked as failed - rolling back to job version 0" {
		t.Fatalf("failed deployment: %s (%s)", d.Status, d.StatusDescription)
	}
	job, _, _ := client.Jobs().Info("app", nil)
	if *job.Version != 2 || job.TaskGroups[0].Tasks[0].Env["VERSION"] != "" {
		t.Fatalf("job after the rollback: version %d env %v, want version 2 with version 0's spec", *job.Version, job.TaskGroups[0].Tasks[0].Env)
	}
}

func TestDeploymentFailsOnProgressDeadline(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	// A deadline shorter than start plus min_healthy_time: no allocation
	// can turn healthy in time.
	withEnv(t, client, "app", "2", func(j *api.Job) { j.TaskGroups[0].Update.ProgressDeadline = durationPtr(5 * time.Second) })
	c.Advance(time.Minute)
	d := latestDeployment(t, client, "app")
	if d.Status != api.DeploymentStatusFailed || d.StatusDescription != "Failed due to progress deadline" {
		t.Fatalf("deployment past its deadline: %s (%s)", d.Status, d.StatusDescription)
	}
	// A failed deployment replaces nothing more: one new allocation, one
	// old one.
	versions := map[uint64]int{}
	for _, a := range liveAllocs(t, client, "app") {
		versions[a.JobVersion]++
	}
	if versions[0] != 1 || versions[1] != 1 {
		t.Fatalf("live allocations by version: %v, want one of each", versions)
	}
}

func TestUnhealthyAllocationFailsTheDeployment(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	withEnv(t, client, "app", "2", func(j *api.Job) { j.TaskGroups[0].Update.HealthyDeadline = durationPtr(15 * time.Second) })
	c.Advance(time.Minute)
	d := latestDeployment(t, client, "app")
	if d.Status != api.DeploymentStatusFailed || d.StatusDescription != "Failed due to unhealthy allocations" || d.TaskGroups["app"].UnhealthyAllocs != 1 {
		t.Fatalf("deployment with an unhealthy allocation: %s (%s) %+v", d.Status, d.StatusDescription, d.TaskGroups["app"])
	}
}

// The plan reports what Nomad's reconciler wants, whatever placement then
// finds: a destructive change that fits nowhere still counts its
// replacements (max_parallel of them), and the old allocations keep running.
func TestPlanCountsWantedReplacementsThatDoNotFit(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	job, _, _ := client.Jobs().Info("app", nil)
	*job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 1 << 20
	plan, _, err := client.Jobs().Plan(job, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := plan.Annotations.DesiredTGUpdates["app"]
	if u.DestructiveUpdate != 1 || u.Ignore != 1 || u.Place != 0 || plan.FailedTGAllocs["app"] == nil {
		t.Fatalf("plan: %+v failed %v, want 1 destructive update (max_parallel), 1 ignored, and the failure", u, plan.FailedTGAllocs)
	}
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if n := len(liveAllocs(t, client, "app")); n != 2 {
		t.Fatalf("%d live allocations after an update that fits nowhere, want the 2 old ones", n)
	}
}

func TestDeploymentEventsOnTheStream(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	c.Advance(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
	defer cancel()
	stream, err := client.EventStream().Stream(ctx, map[api.Topic][]string{api.TopicDeployment: {"app"}}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for !types["PlanResult"] || !types["AllocationUpdated"] {
		select {
		case evs := <-stream:
			if evs.Err != nil {
				t.Fatal(evs.Err)
			}
			for _, e := range evs.Events {
				d, err := e.Deployment()
				if err != nil || d == nil || e.Key != d.ID || d.JobID != "app" {
					t.Fatalf("deployment event %s: %+v (%v)", e.Type, d, err)
				}
				types[e.Type] = true
			}
		case <-ctx.Done():
			t.Fatalf("deployment events seen: %v, want PlanResult and AllocationUpdated", types)
		}
	}
}

func durationPtr(d time.Duration) *time.Duration { return &d }

func TestOnlyServiceJobsDeploy(t *testing.T) {
	c, client := startCluster(t, "testdata/small.hcl")
	job, _, err := client.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A system job gets Nomad's default update block too, but Nomad 1.6's
	// system scheduler makes no deployments.
	job.ID, job.Name, job.Type = stringPtr("agent"), stringPtr("agent"), stringPtr(api.JobTypeSystem)
	job.Update, job.TaskGroups[0].Update = nil, nil
	job.TaskGroups[0].Count = intPtr(1)
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if got, _, _ := client.Jobs().Info("agent", nil); got.TaskGroups[0].Update == nil || *got.TaskGroups[0].Update.MaxParallel != 1 {
		t.Fatalf("the system job's update block: %+v, want Nomad's default", got.TaskGroups[0].Update)
	}
	if d, _, err := client.Jobs().LatestDeployment("agent", nil); err != nil || d != nil {
		t.Fatalf("a system job's deployment: %+v, %v; want none", d, err)
	}
}
