package svgchart

import (
	"math"
	"strings"
	"testing"
)

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ v, want float64 }{
		{0.7, 1}, {1, 1}, {1.2, 2}, {2.2, 2.5}, {2.5, 2.5}, {3, 5}, {7, 10}, {12600, 20000}, {240, 250},
		{0, 1}, {-3, 1}, {math.NaN(), 1}, {math.Inf(1), 1},
	} {
		if got := NiceCeil(c.v); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("NiceCeil(%v) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestScaleMapsLargerValuesHigher(t *testing.T) {
	s := Scale{Left: 10, Top: 5, Width: 100, Height: 50, X0: 0, X1: 4, Y0: 0, Y1: 20}
	for _, c := range []struct{ x, y, wantX, wantY float64 }{
		{0, 0, 10, 55}, {4, 20, 110, 5}, {2, 10, 60, 30},
	} {
		if gx, gy := s.X(c.x), s.Y(c.y); gx != c.wantX || gy != c.wantY {
			t.Errorf("(%v, %v) maps to (%v, %v), want (%v, %v)", c.x, c.y, gx, gy, c.wantX, c.wantY)
		}
	}
	if got := s.Ticks(4); len(got) != 5 || got[0] != 0 || got[2] != 10 || got[4] != 20 {
		t.Errorf("ticks %v", got)
	}
	flat := Scale{Left: 10, Top: 5, Width: 100, Height: 50}
	if flat.X(3) != 10 || flat.Y(3) != 55 {
		t.Errorf("an empty range maps to (%v, %v), want the left and bottom edges", flat.X(3), flat.Y(3))
	}
}

func pts(ys ...float64) []Point {
	out := make([]Point, len(ys))
	for i, y := range ys {
		out[i] = Point{X: float64(i), Y: y}
	}
	return out
}

func TestLineAndBandBreakAtGaps(t *testing.T) {
	s := Scale{Width: 100, Height: 100, X0: 0, X1: 5, Y0: 0, Y1: 10}
	nan := math.NaN()
	for _, c := range []struct {
		name          string
		lower, upper  []Point
		lineMoves     int // pen lifts of the line through upper
		drawn, shapes int
	}{
		{"whole", pts(1, 1, 1, 1), pts(2, 3, 4, 5), 1, 4, 1},
		{"a gap splits both", pts(1, 1, 1, 1, 1, 1), pts(2, 3, nan, 4, 5, 6), 2, 5, 2},
		{"infinity is a gap too", pts(1, 1, 1), pts(2, math.Inf(1), 3), 2, 2, 0},
		{"a lone point has no area", pts(1, nan, 1, 1), pts(2, 2, 3, 3), 1, 4, 1},
		{"nothing", nil, nil, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, drawn := Line(s, c.upper)
			if strings.Count(d, "M") != c.lineMoves || drawn != c.drawn {
				t.Errorf("line %q: %d moves and %d points, want %d and %d", d, strings.Count(d, "M"), drawn, c.lineMoves, c.drawn)
			}
			if b := Band(s, c.lower, c.upper); strings.Count(b, "Z") != c.shapes || strings.Count(b, "M") != c.shapes {
				t.Errorf("band %q: want %d closed shapes", b, c.shapes)
			}
		})
	}
}
