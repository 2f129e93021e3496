package orchestrator

import (
	"strings"
	"testing"
	"time"
)

func TestPolicyOf(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		job, tg   map[string]string
		want      func(p *Policy)
		wantError []string // each must appear in the error
	}{
		{name: "defaults", want: func(p *Policy) {}},
		{
			name: "operator config",
			cfg:  Config{Mode: ModeEnforce, MinCount: 2, MaxCount: 9, Rightsize: true},
			want: func(p *Policy) { p.Mode, p.Min, p.Max, p.Rightsize = ModeEnforce, 2, 9, true },
		},
		{
			name: "job meta over config, group meta over job meta",
			job:  map[string]string{MetaMode: "enforce", MetaMax: "7", MetaQuantile: "0.9"},
			tg:   map[string]string{MetaMax: "5", MetaCooldownDown: "30m", MetaRightsize: "true"},
			want: func(p *Policy) {
				p.Mode, p.Max, p.Quantile, p.CooldownDown, p.Rightsize = ModeEnforce, 5, 0.9, 30*time.Minute, true
			},
		},
		{
			name: "every key",
			tg: map[string]string{
				MetaMode: "off", MetaMin: "0", MetaMax: "3", MetaQuantile: "0.5", MetaHeadroom: "0",
				MetaTargetUtilization: "1", MetaMaxStep: "1", MetaCooldownUp: "0s", MetaCooldownDown: "1h", MetaRightsize: "false",
				MetaMetric: "net_rx_bps", MetaMetricTarget: "5e6",
			},
			want: func(p *Policy) {
				*p = Policy{Mode: ModeOff, Min: 0, Max: 3, Quantile: 0.5, Headroom: 0, TargetUtilization: 1,
					MaxStep: 1, CooldownUp: 0, CooldownDown: time.Hour, Rightsize: false, Metric: "net_rx_bps", MetricTarget: 5e6}
			},
		},
		{
			name: "memory named as the metric: its reservation says what an instance carries",
			tg:   map[string]string{MetaMetric: "mem_usage_bytes"},
			want: func(p *Policy) { p.Metric = "mem_usage_bytes" },
		},
		{name: "a metric that does not divide", tg: map[string]string{MetaMetric: "psi_cpu_some"}, wantError: []string{`foresight.metric = "psi_cpu_some"`, "divides over instances"}},
		{name: "unknown metric", tg: map[string]string{MetaMetric: "requests"}, wantError: []string{`foresight.metric = "requests"`}},
		{name: "a metric without a reservation needs a target", tg: map[string]string{MetaMetric: "net_tx_bps"}, wantError: []string{`needs foresight.metric_target`}},
		{name: "bad metric target", tg: map[string]string{MetaMetricTarget: "-3"}, wantError: []string{`foresight.metric_target = "-3"`}},
		{name: "min above max", tg: map[string]string{MetaMin: "5", MetaMax: "3"}, wantError: []string{"foresight.min = 5 exceeds foresight.max = 3"}},
		{name: "min above default max", tg: map[string]string{MetaMin: "500"}, wantError: []string{"foresight.min = 500 exceeds foresight.max = 100"}},
		{name: "unknown mode", job: map[string]string{MetaMode: "yolo"}, wantError: []string{`foresight.mode = "yolo"`}},
		{name: "quantile 1", tg: map[string]string{MetaQuantile: "1"}, wantError: []string{`foresight.quantile = "1"`, "(0, 1)"}},
		{name: "quantile 0", tg: map[string]string{MetaQuantile: "0"}, wantError: []string{`foresight.quantile = "0"`}},
		{name: "quantile NaN", tg: map[string]string{MetaQuantile: "NaN"}, wantError: []string{`foresight.quantile = "NaN"`, "not a number"}},
		{name: "utilization 0", tg: map[string]string{MetaTargetUtilization: "0"}, wantError: []string{`foresight.target_utilization = "0"`}},
		{name: "negative headroom", tg: map[string]string{MetaHeadroom: "-0.1"}, wantError: []string{`foresight.headroom = "-0.1"`}},
		{name: "step 0", tg: map[string]string{MetaMaxStep: "0"}, wantError: []string{`foresight.max_step = "0"`}},
		{name: "count not a number", tg: map[string]string{MetaMax: "ten"}, wantError: []string{`foresight.max = "ten"`, "not an integer"}},
		{name: "bad duration", tg: map[string]string{MetaCooldownUp: "5"}, wantError: []string{`foresight.cooldown_up = "5"`}},
		{name: "negative duration", tg: map[string]string{MetaCooldownDown: "-1m"}, wantError: []string{`foresight.cooldown_down = "-1m"`}},
		{name: "bad bool", tg: map[string]string{MetaRightsize: "yes please"}, wantError: []string{`foresight.rightsize = "yes please"`}},
		{
			name:      "all bad values reported at once",
			tg:        map[string]string{MetaMode: "on", MetaQuantile: "2"},
			wantError: []string{`foresight.mode = "on"`, `foresight.quantile = "2"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PolicyOf(tc.cfg, tc.job, tc.tg)
			if len(tc.wantError) > 0 {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				for _, w := range tc.wantError {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Policy{
				Mode: DefaultMode, Min: DefaultMinCount, Max: DefaultMaxCount, Quantile: DefaultQuantile,
				Headroom: DefaultHeadroom, TargetUtilization: DefaultTargetUtilization, MaxStep: DefaultMaxStep,
				CooldownUp: DefaultCooldownUp, CooldownDown: DefaultCooldownDown, Metric: "cpu_mhz",
			}
			tc.want(&want)
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}
