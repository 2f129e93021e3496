package orchestrator

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foresight-nomad/foresight/internal/shared"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/sim"
	"github.com/foresight-nomad/foresight/sim/simtest"
	"github.com/foresight-nomad/foresight/telemetry"
)

// startSim serves sim's small cluster (job "app": one group "app" of 2 ×
// 1000 MHz / 256 MB on two external nodes of 4000 MHz and an empty provider
// pool) to the official Nomad client, once the job's first deployment is
// done.
func startSim(t *testing.T) (*sim.Cluster, *api.Client) {
	t.Helper()
	s := simtest.Start(t, "../sim/testdata/small.hcl")
	s.Cluster.Advance(time.Minute)
	return s.Cluster, s.Client
}

var appRef = telemetry.GroupRef{Namespace: "default", Job: "app", Group: "app"}

// simRoom describes sim's small cluster as the profiler would, with room
// for what the tests ask.
func simRoom() *Room {
	return NewRoom([]profiles.Class{
		class("cloud", profiles.PlatformProvider, 1, 4),
		class("fast", profiles.PlatformExternal, 1, 4),
		class("slow", profiles.PlatformExternal, 1, 4),
	}, nil)
}

// decider decides from the job as read, as the leader will: the job's own
// state plus the given demand and scores. Every job it saw is kept.
type decider struct {
	cfg    Config
	room   *Room
	demand *Resources
	scores []profiles.Score
	seen   []*api.Job
}

func (d *decider) decide(job *api.Job, tg *api.TaskGroup) Decision {
	d.seen = append(d.seen, job)
	in := InputFrom(job, tg, d.room)
	in.Demand, in.Scores, in.Now = d.demand, d.scores, t0
	return Decide(d.cfg, in)
}

func readApp(t *testing.T, client *api.Client) *api.Job {
	t.Helper()
	job, _, err := client.Jobs().Info("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// userRegister writes the user's edit of the job and lets its deployment
// roll out.
func userRegister(t *testing.T, c *sim.Cluster, client *api.Client, job *api.Job) {
	t.Helper()
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("user's register: %v", err)
	}
	c.Advance(time.Minute)
}

func TestEnforceRewritesOnlyWhatForesightOwns(t *testing.T) {
	c, client := startSim(t)

	// The user steers with their own affinity and constraint; an older
	// Foresight decision steered to slow.
	job := readApp(t, client)
	tg := job.TaskGroups[0]
	tg.Affinities = []*api.Affinity{
		api.NewAffinity("${node.datacenter}", "=", "dc1", 20),
		api.NewAffinity("${meta.foresight.class}", "=", "slow", 60),
	}
	tg.Constraints = []*api.Constraint{api.NewConstraint("${attr.kernel.name}", "=", "linux")}
	userRegister(t, c, client, job)

	d := &decider{cfg: Config{Mode: ModeEnforce}, room: simRoom(), demand: cpu(2100), scores: scores("fast", 80, "slow", 10, "cloud", 0)}
	res, err := NewActuator(client).Apply(context.Background(), appRef, d.decide)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || res.Attempts != 1 {
		t.Fatalf("not written: %+v", res)
	}
	if res.Decision.Current != "slow" || res.Decision.Class != "fast" {
		t.Fatalf("decision %s → %s, want slow → fast", res.Decision.Current, res.Decision.Class)
	}
	// The affinity change replaces both running allocations, and the
	// decision says so, from the plan's annotations.
	if res.Replaces != 2 || !strings.Contains(strings.Join(res.Decision.Reasons, "\n"), `the write replaces 2 allocation(s) of group "app"`) {
		t.Fatalf("replaces %d, reasons %q; want 2, named in a reason", res.Replaces, res.Decision.Reasons)
	}

	after := readApp(t, client).TaskGroups[0]
	var got []string
	for _, a := range after.Affinities {
		got = append(got, affinityString(a))
	}
	want := []string{
		`${node.datacenter} = "dc1" weight 20`,
		`${meta.foresight.class} = "fast" weight 80`,
		`${meta.foresight.class} = "slow" weight 10`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("affinities:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(after.Constraints) != 1 || after.Constraints[0].LTarget != "${attr.kernel.name}" {
		t.Fatalf("user's constraint changed: %+v", after.Constraints)
	}
	if *after.Count != 4 { // ⌈2100·1.1 / (1000·0.7)⌉
		t.Fatalf("count %d, want 4", *after.Count)
	}

	// Same class next time, with other scores: the affinities are not
	// rewritten (that would replace every allocation), so nothing is.
	d.scores = scores("fast", 70, "slow", 30, "cloud", 5)
	again, err := NewActuator(client).Apply(context.Background(), appRef, d.decide)
	if err != nil {
		t.Fatal(err)
	}
	if again.Written || len(again.Changes) != 0 {
		t.Fatalf("a decision that keeps the class rewrote the job: %+v", again)
	}
}

func TestUserEditBetweenReadAndWriteSurvives(t *testing.T) {
	c, client := startSim(t)
	before := *readApp(t, client).JobModifyIndex

	d := &decider{cfg: Config{Mode: ModeEnforce}, room: simRoom(), demand: cpu(2800), scores: scores("fast", 50, "slow", 0, "cloud", 0)}
	act := NewActuator(client)
	edits := 0
	act.beforeWrite = func(*api.Job) {
		if edits > 0 {
			return
		}
		edits++
		// The user, between our read and our write, caps the group and
		// changes its image.
		job := readApp(t, client)
		job.TaskGroups[0].Meta = map[string]string{MetaMax: "3"}
		job.TaskGroups[0].Tasks[0].Config["image"] = "app:2"
		userRegister(t, c, client, job)
	}
	res, err := act.Apply(context.Background(), appRef, d.decide)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || !res.Written {
		t.Fatalf("want our first write refused and the second written: %+v", res)
	}
	if len(d.seen) != 2 || *d.seen[0].JobModifyIndex != before || d.seen[1].TaskGroups[0].Meta[MetaMax] != "3" {
		t.Fatal("the second decision was not made from the user's edited job")
	}
	if res.Decision.Count != 3 || !strings.Contains(strings.Join(res.Decision.Reasons, "\n"), "capped at foresight.max = 3") {
		t.Fatalf("the next decision ignores the user's edit: count %d, %v", res.Decision.Count, res.Decision.Reasons)
	}
	after := readApp(t, client)
	tg := after.TaskGroups[0]
	if tg.Tasks[0].Config["image"] != "app:2" || tg.Meta[MetaMax] != "3" {
		t.Fatalf("the user's edit was lost: image %v, meta %v", tg.Tasks[0].Config["image"], tg.Meta)
	}
	if *tg.Count != 3 || ManagedClass(tg, simRoom()) != "fast" {
		t.Fatalf("our decision was not written: count %d, class %q", *tg.Count, ManagedClass(tg, simRoom()))
	}

	// Nomad's history of the job proves the refusal: exactly two writes
	// after the version we first read, the user's and then ours. Our write
	// made from the stale read (count 4, no cap) never became a version,
	// and the user's version is theirs alone, untouched by us.
	versions, _, _, err := client.Jobs().Versions("app", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[uint64]*api.Job{}
	for _, v := range versions {
		byVersion[*v.Version] = v
	}
	if len(versions) != 3 || byVersion[0] == nil || byVersion[1] == nil || byVersion[2] == nil {
		t.Fatalf("want versions 0 (read), 1 (the user's) and 2 (ours), got %d versions", len(versions))
	}
	user, ours := byVersion[1].TaskGroups[0], byVersion[2].TaskGroups[0]
	if user.Tasks[0].Config["image"] != "app:2" || user.Meta[MetaMax] != "3" || *user.Count != 2 || len(user.Affinities) != 0 {
		t.Fatalf("version 1 is not the user's edit alone: image %v, meta %v, count %d, affinities %d",
			user.Tasks[0].Config["image"], user.Meta, *user.Count, len(user.Affinities))
	}
	if ours.Tasks[0].Config["image"] != "app:2" || *ours.Count != 3 {
		t.Fatalf("version 2 is not our decision on top of the user's edit: image %v, count %d", ours.Tasks[0].Config["image"], *ours.Count)
	}
	if *byVersion[2].JobModifyIndex <= *byVersion[1].JobModifyIndex || res.JobModifyIndex != *byVersion[1].JobModifyIndex {
		t.Fatalf("our write was not made at the user's modify index: wrote from %d, user's version at %d", res.JobModifyIndex, *byVersion[1].JobModifyIndex)
	}
}

func TestAJobThatKeepsChangingIsLeftAlone(t *testing.T) {
	c, client := startSim(t)
	d := &decider{cfg: Config{Mode: ModeEnforce}, room: simRoom(), demand: cpu(2800), scores: scores("fast", 50)}
	act := NewActuator(client)
	act.beforeWrite = func(*api.Job) {
		job := readApp(t, client)
		job.TaskGroups[0].Tasks[0].Env = map[string]string{"EDIT": job.TaskGroups[0].Tasks[0].Env["EDIT"] + "x"}
		userRegister(t, c, client, job)
	}
	res, err := act.Apply(context.Background(), appRef, d.decide)
	if err == nil || res.Written || res.Attempts != RetryLimit {
		t.Fatalf("got %+v, %v; want an error after %d attempts", res, err, RetryLimit)
	}
	tg := readApp(t, client).TaskGroups[0]
	if *tg.Count != 2 || len(tg.Affinities) != 0 || tg.Tasks[0].Env["EDIT"] != "xxx" {
		t.Fatalf("a refused write changed the job: count %d affinities %v env %v", *tg.Count, tg.Affinities, tg.Tasks[0].Env)
	}
}

func TestNothingIsWrittenUnlessEnforcing(t *testing.T) {
	cases := []struct {
		name   string
		meta   map[string]string
		cfg    Config
		paused bool
		held   string
	}{
		{name: "recommend, the default", held: "foresight.mode = recommend"},
		{name: "off", meta: map[string]string{MetaMode: "off"}, cfg: Config{Mode: ModeEnforce}, held: "foresight.mode = off"},
		{name: "paused", cfg: Config{Mode: ModeEnforce}, paused: true, held: "actuation paused"},
		{
			name: "bad policy", meta: map[string]string{MetaMode: "enforce", MetaMin: "5", MetaMax: "3"},
			held: "foresight.min = 5 exceeds foresight.max = 3",
		},
		{
			name: "unknown mode", meta: map[string]string{MetaMode: "enforced"}, cfg: Config{Mode: ModeEnforce},
			held: `foresight.mode = "enforced": want off, recommend or enforce`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, client := startSim(t)
			if tc.meta != nil {
				job := readApp(t, client)
				job.TaskGroups[0].Meta = tc.meta
				userRegister(t, c, client, job)
			}
			version, writes := *readApp(t, client).Version, c.Writes()

			d := &decider{cfg: tc.cfg, room: simRoom(), demand: cpu(2800), scores: scores("fast", 50)}
			act := NewActuator(client)
			act.Paused = func() bool { return tc.paused }
			res, err := act.Apply(context.Background(), appRef, d.decide)
			if err != nil {
				t.Fatal(err)
			}
			if res.Written || !strings.Contains(res.Held, tc.held) {
				t.Fatalf("written %v, held %q; want held %q", res.Written, res.Held, tc.held)
			}
			if c.Writes() != writes || *readApp(t, client).Version != version {
				t.Fatalf("%d API writes, job version %d → %d", c.Writes()-writes, version, *readApp(t, client).Version)
			}
			if tc.name == "recommend, the default" || tc.name == "paused" {
				// The diff is still computed, for `foresight plan`.
				if !strings.Contains(strings.Join(res.Changes, "\n"), "~ count 2 → 5") {
					t.Fatalf("changes %v, want the count change", res.Changes)
				}
			}
		})
	}
}

func TestAPlanThatCannotPlaceIsNotRegistered(t *testing.T) {
	// 10 more allocations of 1000 MHz: sim's two 4000 MHz nodes hold 8.
	demand := cpu(10000)
	noProvider := NewRoom([]profiles.Class{class("fast", profiles.PlatformExternal, 1, 0)}, nil)

	t.Run("no capacity to request", func(t *testing.T) {
		_, client := startSim(t)
		d := &decider{cfg: Config{Mode: ModeEnforce}, room: noProvider, demand: demand, scores: scores("fast", 50)}
		res, err := NewActuator(client).Apply(context.Background(), appRef, d.decide)
		if err != nil {
			t.Fatal(err)
		}
		if res.Written || !strings.Contains(res.Held, `plan cannot place group "app"`) || !strings.Contains(res.Held, "cpu exhausted") {
			t.Fatalf("written %v, held %q; want held by the plan, naming cpu", res.Written, res.Held)
		}
		if job := readApp(t, client); *job.Version != 0 || *job.TaskGroups[0].Count != 2 {
			t.Fatalf("job changed: version %d count %d", *job.Version, *job.TaskGroups[0].Count)
		}
	})

	t.Run("capacity requested", func(t *testing.T) {
		_, client := startSim(t)
		room := NewRoom([]profiles.Class{
			class("cloud", profiles.PlatformProvider, 1, 0),
			class("fast", profiles.PlatformExternal, 1, 0),
		}, nil)
		d := &decider{cfg: Config{Mode: ModeEnforce}, room: room, demand: demand, scores: scores("fast", 50, "cloud", 10)}
		res, err := NewActuator(client).Apply(context.Background(), appRef, d.decide)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Written || res.Decision.Capacity == nil || res.Decision.Capacity.Class != "cloud" {
			t.Fatalf("want written with a capacity request on cloud: %+v", res)
		}
		if *readApp(t, client).TaskGroups[0].Count != 12 {
			t.Fatal("count not written")
		}
	})
}

func TestRightsizeKeepsTheTaskSplit(t *testing.T) {
	job := &api.Job{ID: new("j"), TaskGroups: []*api.TaskGroup{{
		Name: new("g"), Count: new(2),
		Tasks: []*api.Task{
			{Name: "main", Resources: &api.Resources{CPU: new(600), MemoryMB: new(300)}},
			{Name: "sidecar", Resources: &api.Resources{CPU: new(200), MemoryMB: new(100)}},
		},
	}}}
	out, changes, err := rewrite(job, "g", Decision{Count: 2, Resources: &Resources{CPUMHz: 400, MemoryMB: 800}})
	if err != nil {
		t.Fatal(err)
	}
	tasks := out.TaskGroups[0].Tasks
	if *tasks[0].Resources.CPU != 300 || *tasks[1].Resources.CPU != 100 || *tasks[0].Resources.MemoryMB != 600 || *tasks[1].Resources.MemoryMB != 200 {
		t.Fatalf("resources not scaled in proportion: %+v %+v", tasks[0].Resources, tasks[1].Resources)
	}
	if len(changes) != 4 || *job.TaskGroups[0].Tasks[0].Resources.CPU != 600 {
		t.Fatalf("changes %v, or the job read was modified", changes)
	}
}

// TestReplacementsReadRealPlans reads the replacements from plans real
// Nomad 1.6.5 answered: a count change replaces nothing; a destructive
// change to a group of two replaces both, though Nomad counts the second,
// held for the next round of the rolling update, under Ignore.
func TestReplacementsReadRealPlans(t *testing.T) {
	dir := shared.Path(t, "fixtures", "nomad-1.6.5")
	cases := []struct {
		file, group string
		destructive bool // the change is a rewrite of placement or resources
		want        int
	}{
		{"14-job-plan-count-change.json", "web", false, 0},
		{"15-job-plan-impossible-resources.json", "web", true, 2},
		{"45-job-plan-count-beyond-capacity.json", "g", false, 0},
	}
	for _, tc := range cases {
		b, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Response struct {
				Body api.JobPlanResponse `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		ann := rec.Response.Body.Annotations
		if ann == nil || ann.DesiredTGUpdates[tc.group] == nil {
			t.Fatalf("%s: no plan annotations for group %q", tc.file, tc.group)
		}
		if got, why := replacements(ann.DesiredTGUpdates[tc.group], tc.destructive); got != tc.want {
			t.Errorf("%s: replaces %d (%s), want %d", tc.file, got, why, tc.want)
		}
	}
}
