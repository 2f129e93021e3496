package leader

import (
	"maps"
	"strings"
	"testing"
)

func TestOwnJobsAreToldByConfigAndTheAgentsAllocation(t *testing.T) {
	cases := []struct {
		name       string
		configured []string
		env        map[string]string
		want       map[string]string
	}{
		{name: "run by hand: no own job", want: map[string]string{}},
		{
			name: "run by Nomad: the job of its own allocation",
			env:  map[string]string{"NOMAD_JOB_ID": "foresight", "NOMAD_JOB_NAME": "foresight", "NOMAD_NAMESPACE": "ops"},
			want: map[string]string{"ops/foresight": "NOMAD_JOB_ID of this agent's allocation"},
		},
		{
			name: "only the job name known: the default namespace",
			env:  map[string]string{"NOMAD_JOB_NAME": "foresight"},
			want: map[string]string{"default/foresight": "NOMAD_JOB_NAME of this agent's allocation"},
		},
		{
			name:       "configured jobs too, the configuration named first",
			configured: []string{"default/foresight", "ops/foresight-gpu"},
			env:        map[string]string{"NOMAD_JOB_ID": "foresight"},
			want:       map[string]string{"default/foresight": "orchestrator.own_jobs", "ops/foresight-gpu": "orchestrator.own_jobs"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ownJobs(tc.configured, func(k string) string { return tc.env[k] })
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnJobsSetting(t *testing.T) {
	o, err := (&OrchestratorConfig{OwnJobs: []string{"foresight", "ops/agent"}}).Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.OwnJobs, " ") != "default/foresight ops/agent" {
		t.Fatalf("own jobs %v, want default/foresight ops/agent", o.OwnJobs)
	}
	for _, bad := range []string{"", "/job", "ns/", "a/b/c"} {
		if _, err := (&OrchestratorConfig{OwnJobs: []string{bad}}).Resolve(); err == nil || !strings.Contains(err.Error(), "orchestrator.own_jobs") {
			t.Errorf("own_jobs %q: error %v, want one naming orchestrator.own_jobs", bad, err)
		}
	}
}
