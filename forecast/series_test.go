package forecast

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		opt    CSVOptions
		times  []string
		values []float64
		err    string
	}{
		{name: "date time", in: "timestamp,value\n2014-05-14 01:14:00,85.8\n2014-05-14 01:19:00,88\n",
			times: []string{"2014-05-14T01:14:00Z", "2014-05-14T01:19:00Z"}, values: []float64{85.8, 88}},
		{name: "rfc3339 with zone, unsorted", in: "time,cpu\n2024-01-01T01:00:00+01:00,2\n2023-12-31T23:00:00Z,1\n",
			times: []string{"2023-12-31T23:00:00Z", "2024-01-01T00:00:00Z"}, values: []float64{1, 2}},
		{name: "epoch seconds", in: "ts,value\n1628640000,39.7\n1628640060,39.8\n",
			times: []string{"2021-08-11T00:00:00Z", "2021-08-11T00:01:00Z"}, values: []float64{39.7, 39.8}},
		{name: "epoch milliseconds", in: "ts,value\n1628640000000,1\n",
			times: []string{"2021-08-11T00:00:00Z"}, values: []float64{1}},
		{name: "named columns", in: "host,value,ts\na,5,1628640000\nb,6,1628640060\n", opt: CSVOptions{TimeColumn: "ts", ValueColumn: "value"},
			times: []string{"2021-08-11T00:00:00Z", "2021-08-11T00:01:00Z"}, values: []float64{5, 6}},
		{name: "missing values skipped", in: "t,v\n1628640000,\n1628640060,NaN\n1628640120,3\n",
			times: []string{"2021-08-11T00:02:00Z"}, values: []float64{3}},
		{name: "negative and huge", in: "t,v\n1628640000,-1.5e12\n",
			times: []string{"2021-08-11T00:00:00Z"}, values: []float64{-1.5e12}},
		{name: "empty", in: "", err: "empty input"},
		{name: "header only", in: "t,v\n", err: "no readings"},
		{name: "one column", in: "t\n1\n", err: "want a value column"},
		{name: "unknown column", in: "t,v\n1,2\n", opt: CSVOptions{ValueColumn: "cpu"}, err: `no value column "cpu"`},
		{name: "bad value", in: "t,v\n1628640000,1\n1628640060,abc\n", err: `line 3: column "v": bad value "abc"`},
		{name: "infinite value", in: "t,v\n1628640000,Inf\n", err: "not finite"},
		{name: "bad time", in: "t,v\nyesterday,1\n", err: `line 2: column "t": bad time "yesterday"`},
		{name: "short row", in: "a,t,v\n1,2\n", opt: CSVOptions{TimeColumn: "t", ValueColumn: "v"}, err: "line 2: 2 fields"},
		{name: "bad quoting", in: "t,v\n\"1628640000,1\n", err: "csv:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, err := ReadCSV(strings.NewReader(c.in), c.opt)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(obs) != len(c.values) {
				t.Fatalf("%d observations, want %d", len(obs), len(c.values))
			}
			for i, o := range obs {
				if got := o.Time.Format(time.RFC3339); got != c.times[i] || o.Value != c.values[i] {
					t.Errorf("obs %d = %s %v, want %s %v", i, got, o.Value, c.times[i], c.values[i])
				}
			}
		})
	}
}

// FuzzReadCSV checks that arbitrary input never panics, and that what is
// accepted is finite and sorted, and what is rejected says why.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"timestamp,value\n2014-05-14 01:14:00,85.8\n",
		"ts,value\n1628640000,1\n1628640060,2\n",
		"t,v\n\"x\",1\n",
		"a,b,c\n1,2,3\n",
		"t,v\n2024-01-01T00:00:00Z,1e308\n",
		"\ufefftime,v\n0,0\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		obs, err := ReadCSV(strings.NewReader(in), CSVOptions{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "csv:") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("unclear error %q", err)
			}
			return
		}
		if len(obs) == 0 {
			t.Fatal("no observations and no error")
		}
		for i, o := range obs {
			if math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
				t.Fatalf("non-finite value %v accepted", o.Value)
			}
			if i > 0 && o.Time.Before(obs[i-1].Time) {
				t.Fatal("not sorted")
			}
		}
	})
}

func TestResampleAndFillGaps(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	obs := []Observation{{at(1), 1}, {at(7), 3}, {at(16), 10}, {at(61), 20}}
	g, err := Resample(obs, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Start.Equal(base) || len(g.Values) != 5 {
		t.Fatalf("grid start %v len %d", g.Start, len(g.Values))
	}
	if g.Values[0] != 2 || g.Values[1] != 10 || !math.IsNaN(g.Values[2]) || g.Values[4] != 20 {
		t.Fatalf("values %v", g.Values)
	}
	if !g.End().Equal(at(75)) {
		t.Errorf("end %v", g.End())
	}
	if missing := FillGaps(g.Values, -1); missing != 0 {
		t.Fatalf("%d left missing", missing)
	}
	if math.Abs(g.Values[2]-(10+10.0/3)) > 1e-12 || math.Abs(g.Values[3]-(10+20.0/3)) > 1e-12 {
		t.Errorf("interpolated %v", g.Values)
	}
	// pandas limit semantics: a run of 5 with limit 2 keeps its middle cell
	y := []float64{0, math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), 6}
	if missing := FillGaps(y, 2); missing != 1 || !math.IsNaN(y[3]) || y[2] != 2 || y[4] != 4 {
		t.Errorf("limited fill %v (missing %d)", y, missing)
	}
	if got := DropMissing(y); len(got) != 6 {
		t.Errorf("dropped %v", got)
	}
	if _, err := Resample(nil, time.Minute); err == nil {
		t.Error("empty input accepted")
	}
	if _, err := Resample(obs, 0); err == nil {
		t.Error("zero step accepted")
	}
}

func TestParseSpan(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "15m", want: 15 * time.Minute},
		{in: "6h", want: 6 * time.Hour},
		{in: "14d", want: 14 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "0.5d", want: 12 * time.Hour},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "-1d", bad: true},
		{in: "5x", bad: true},
	}
	for _, c := range cases {
		got, err := ParseSpan(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseSpan(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSpan(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}
