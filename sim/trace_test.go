package sim

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestTraceInterpolatesAndLoops(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("ts,value\n0,10\n60,20\n120,40\n"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at   time.Duration
		want float64
	}{
		{0, 10},
		{30 * time.Second, 15},
		{time.Minute, 20},
		{90 * time.Second, 30},
		{150 * time.Second, 25}, // between the last point and the loop's start
		{3 * time.Minute, 10},   // one period later: the start again
		{-time.Minute, 10},
	}
	for _, c := range cases {
		if got := tr.At(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("At(%s) = %g, want %g", c.at, got, c.want)
		}
	}
	if tr.Period() != 3*time.Minute || tr.Len() != 3 {
		t.Fatalf("period %s, len %d", tr.Period(), tr.Len())
	}
}

func TestTraceRefusesBadInput(t *testing.T) {
	cases := map[string]string{
		"one point":      "ts,value\n0,1\n",
		"bad value":      "ts,value\n0,1\n60,lots\n",
		"bad time":       "ts,value\nyesterday,1\n60,2\n",
		"missing column": "ts\n0\n60\n",
	}
	for name, src := range cases {
		if _, err := ReadTrace(strings.NewReader(src), "", ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadTrace(strings.NewReader("ts,value\n0,1\n60,2\n"), "", "cpu"); err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("an unknown column is not named: %v", err)
	}
}
