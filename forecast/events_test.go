package forecast

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseCalendarErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"bad hcl", `event "x" {`, "events:"},
		{"missing end", `event "x" { start = "2024-01-01T00:00:00Z" }`, "end"},
		{"bad start", `event "x" {
  start = "soon"
  end = "2024-01-01T00:00:00Z"
}`, `event "x": start`},
		{"end before start", `event "x" {
  start = "2024-01-02T00:00:00Z"
  end = "2024-01-01T00:00:00Z"
}`, "is not after start"},
		{"factor and add", `event "x" {
  start = "2024-01-01T00:00:00Z"
  end = "2024-01-02T00:00:00Z"
  factor = 2
  add = 3
}`, "not both"},
		{"negative factor", `event "x" {
  start = "2024-01-01T00:00:00Z"
  end = "2024-01-02T00:00:00Z"
  factor = -2
}`, "must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCalendar("cal.hcl", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestPredictLearnsEventEffect: a nightly batch window named in the
// calendar adds load on four past nights; the forecast of the next night's
// window must carry the learned effect, and the fit must not be distorted
// outside it.
func TestPredictLearnsEventEffect(t *testing.T) {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const days = 10
	base := synth(days*96, 40, 0, 10, 96, 0.5, 21)
	y := append([]float64(nil), base...)
	var src strings.Builder
	for _, d := range []int{2, 4, 6, 8, days} {
		ws := start.Add(time.Duration(d)*24*time.Hour + 2*time.Hour)
		fmt.Fprintf(&src, "event \"batch\" {\n  start = %q\n  end = %q\n}\n", ws.Format(time.RFC3339), ws.Add(time.Hour).Format(time.RFC3339))
		for i := 0; i < 4 && d < days; i++ {
			y[d*96+8+i] *= 1.5
		}
	}
	cal, err := ParseCalendar("cal.hcl", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	g := Grid{Start: start, Step: 15 * time.Minute, Values: y}
	opt := Options{Step: g.Step, Horizon: 24}
	with, err := Predict(g, opt, []float64{0.5, 0.95}, cal)
	if err != nil {
		t.Fatal(err)
	}
	without, err := Predict(g, opt, []float64{0.5, 0.95}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(with.Events) == 0 || !strings.Contains(with.Events[0], "batch: learned ×1.5") {
		t.Errorf("events %q, want a learned ×1.5", with.Events)
	}
	for i := 0; i < 24; i++ {
		tm := with.Times[i]
		if !tm.Equal(start.Add(time.Duration(days*96+i) * 15 * time.Minute)) {
			t.Fatalf("step %d at %v", i, tm)
		}
		truth := 40 + 10*math.Sin(2*math.Pi*float64(days*96+i)/96)
		if i >= 8 && i < 12 {
			if r := with.Forecast.Mean[i] / truth; r < 1.35 || r > 1.65 {
				t.Errorf("step %d in the window: ratio to the series without the event %.2f, want about 1.5", i, r)
			}
			// without the calendar the window is only a blur of the past
			// nights, some with the batch and some without
			if r := without.Forecast.Mean[i] / truth; r > 1.35 {
				t.Errorf("step %d: the plain forecast already has ratio %.2f", i, r)
			}
			truth *= 1.5
			if with.Forecast.Quantiles[1][i] < with.Forecast.Quantiles[0][i] {
				t.Errorf("step %d: quantiles crossed", i)
			}
		}
		if math.Abs(with.Forecast.Mean[i]-truth) > 0.15*truth {
			t.Errorf("step %d: forecast %.2f, truth %.2f", i, with.Forecast.Mean[i], truth)
		}
	}
}

func TestPredictKnownAdditiveEffect(t *testing.T) {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	y := synth(400, -10, 0, 0, 0, 0.1, 22)
	end := start.Add(400 * 15 * time.Minute)
	src := fmt.Sprintf("event \"drain\" {\n  start = %q\n  end = %q\n  add = -100\n}\n", end.Format(time.RFC3339), end.Add(30*time.Minute).Format(time.RFC3339))
	cal, err := ParseCalendar("cal.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Predict(Grid{Start: start, Step: 15 * time.Minute, Values: y}, Options{Step: 15 * time.Minute, Horizon: 4}, []float64{0.9}, cal)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res.Forecast.Mean {
		want := -10.0
		if i < 2 {
			want = -110
		}
		if math.Abs(v-want) > 1 {
			t.Errorf("step %d: %g, want about %g", i, v, want)
		}
	}
}

func TestPredictSaysWhenAnEffectCannotBeLearned(t *testing.T) {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	y := synth(300, 10, 0, 0, 0, 0.5, 23)
	end := start.Add(300 * 15 * time.Minute)
	src := fmt.Sprintf("event \"first-launch\" {\n  start = %q\n  end = %q\n}\n", end.Format(time.RFC3339), end.Add(time.Hour).Format(time.RFC3339))
	cal, err := ParseCalendar("cal.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := Grid{Start: start, Step: 15 * time.Minute, Values: y}
	with, err := Predict(g, Options{Horizon: 8}, []float64{0.5}, cal)
	if err != nil {
		t.Fatal(err)
	}
	without, err := Predict(g, Options{Horizon: 8}, []float64{0.5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(with.Events) != 1 || !strings.Contains(with.Events[0], "first-launch: not applied") {
		t.Errorf("events %q", with.Events)
	}
	for i := range with.Forecast.Mean {
		if with.Forecast.Mean[i] != without.Forecast.Mean[i] {
			t.Errorf("step %d changed by an event with no effect: %v vs %v", i, with.Forecast.Mean[i], without.Forecast.Mean[i])
		}
	}
	if _, err := Predict(g, Options{Step: time.Hour, Horizon: 8}, nil, nil); err == nil {
		t.Error("a step that differs from the grid's was accepted")
	}
}
