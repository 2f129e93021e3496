package dashboard

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func minutes(values ...float64) []Point {
	out := make([]Point, len(values))
	for i, v := range values {
		out[i] = Point{Time: t0.Add(time.Duration(i) * time.Minute), Value: v}
	}
	return out
}

// attr returns the values of an attribute in document order.
func attr(svg, name string) []string {
	var out []string
	for _, m := range regexp.MustCompile(` `+name+`="([^"]*)"`).FindAllStringSubmatch(svg, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestLineChartDrawsSeriesWithGaps(t *testing.T) {
	c := LineChart{Unit: "MHz", Series: []Series{
		{Name: "capacity", Points: minutes(8000, 8000, 12000, 12000)},
		{Name: "allocated", Points: minutes(1000, math.NaN(), 3000, 4000), Dashed: true},
	}}
	svg := string(c.SVG())
	if got := attr(svg, "data-points"); len(got) != 1 || got[0] != "7" {
		t.Fatalf("data-points %v, want the 7 finite points", got)
	}
	paths := attr(svg, "d")
	if len(paths) != 2 {
		t.Fatalf("%d paths, want one per series: %s", len(paths), svg)
	}
	if strings.Count(paths[0], "M") != 1 || strings.Count(paths[1], "M") != 2 {
		t.Fatalf("the NaN must break the second line and only it: %q", paths)
	}
	if !strings.Contains(svg, `stroke-dasharray`) || !strings.Contains(svg, ">15 GHz<") {
		t.Fatalf("want a dashed series and a 15 GHz top tick (12000 MHz rounded up): %s", svg)
	}
	// The highest value sits highest: smallest y.
	first := strings.Fields(strings.TrimPrefix(paths[0], "M"))
	yStart, _ := strconv.ParseFloat(first[1], 64)
	last := strings.Fields(paths[0])
	yEnd, _ := strconv.ParseFloat(last[len(last)-1], 64)
	if yEnd >= yStart {
		t.Fatalf("capacity rose from 8000 to 12000 but its line goes from y=%v to y=%v", yStart, yEnd)
	}
}

func TestChartsWithoutDataSaySo(t *testing.T) {
	for name, svg := range map[string]string{
		"line": string(LineChart{Series: []Series{{Name: "x", Points: minutes(math.NaN())}}}.SVG()),
		"band": string(BandChart{}.SVG()),
		"bars": string(BarsSVG(nil)),
	} {
		if !strings.Contains(svg, `data-points="0"`) || !strings.Contains(svg, "nodata") {
			t.Errorf("%s chart without data: %s", name, svg)
		}
	}
}

func TestBandChartNestsQuantileBands(t *testing.T) {
	var fc []ForecastPoint
	for i := range 5 {
		at := t0.Add(time.Duration(10+i) * time.Minute)
		fc = append(fc, ForecastPoint{Time: at, P50: 100, P90: 120, P95: 130, P99: 150})
	}
	c := BandChart{Unit: "MHz", Usage: minutes(90, 95, 100, 105, 110, 100, 95, 100, 100, 100), Forecast: fc, Now: t0.Add(9 * time.Minute)}
	svg := string(c.SVG())
	bands := regexp.MustCompile(`<path class="band" d="([^"]*)"`).FindAllStringSubmatch(svg, -1)
	if len(bands) != 3 {
		t.Fatalf("%d bands, want p50–p99, p50–p95, p50–p90: %s", len(bands), svg)
	}
	// Each band's top edge starts lower (a larger y) than the wider one's.
	var tops []float64
	for _, b := range bands {
		f := strings.Fields(strings.TrimPrefix(b[1], "M"))
		y, _ := strconv.ParseFloat(f[1], 64)
		tops = append(tops, y)
	}
	if !(tops[0] < tops[1] && tops[1] < tops[2]) {
		t.Fatalf("band tops at y %v: p99 above p95 above p90 expected", tops)
	}
	for _, want := range []string{`class="series forecast"`, `class="series usage"`, `class="now"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("band chart lacks %s", want)
		}
	}
	if !c.Banded() || (BandChart{Forecast: []ForecastPoint{{P50: 1, P90: 1, P95: 1, P99: 1}}}).Banded() {
		t.Error("Banded must tell a forecast with bands from a flat fallback")
	}
	if got := attr(svg, "data-points"); got[0] != "20" {
		t.Fatalf("data-points %v, want 10 usage + 5 p50 + 5 p99", got)
	}
}

func TestBarsDivergeFromZero(t *testing.T) {
	svg := string(BarsSVG([]Bar{
		{Label: "ssd", Value: 60, Confidence: 1, Note: "fast <disk>"},
		{Label: "hdd", Value: -40, Confidence: 0},
	}))
	xs := attr(svg, "x")
	rects := regexp.MustCompile(`<rect class="bar" x="([^"]*)" y="[^"]*" width="([^"]*)"[^>]*fill="([^"]*)" fill-opacity="([^"]*)"`).FindAllStringSubmatch(svg, -1)
	if len(rects) != 2 || len(xs) == 0 {
		t.Fatalf("want two bars: %s", svg)
	}
	x0, _ := strconv.ParseFloat(rects[0][1], 64)
	x1, _ := strconv.ParseFloat(rects[1][1], 64)
	w0, _ := strconv.ParseFloat(rects[0][2], 64)
	w1, _ := strconv.ParseFloat(rects[1][2], 64)
	if math.Abs(x1+w1-x0) > 0.2 {
		t.Fatalf("the negative bar must end where the positive one starts (zero): %v+%v vs %v", x1, w1, x0)
	}
	if math.Abs(w0/w1-1.5) > 0.01 {
		t.Fatalf("bar widths %v and %v do not scale 60 : 40", w0, w1)
	}
	if rects[0][3] == rects[1][3] || rects[0][4] != "1.00" || rects[1][4] != "0.35" {
		t.Fatalf("colour or confidence shading wrong: %v", rects)
	}
	if !strings.Contains(svg, "fast &lt;disk&gt;") {
		t.Fatal("a score's reason is not escaped")
	}
}

func TestFormatValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{2500, "MHz", "2.5 GHz"}, {800, "MHz", "800 MHz"}, {3 << 30, "bytes", "3 GiB"},
		{2048, "MB", "2 GiB"}, {1536, "B/s", "1.5 KiB/s"}, {12.5, "%", "12.5%"}, {12345, "", "12.3k"}, {math.NaN(), "", "–"},
	} {
		if got := FormatValue(c.v, c.unit); got != c.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestOverviewRendersDecisionsAndEscapes(t *testing.T) {
	o := Overview{
		Page:   Page{Title: "Overview", Base: "/ui", Now: t0, Refresh: 5, Leader: "node-1"},
		Agents: 3, Groups: 1,
		Platforms: []PlatformCapacity{{Platform: "external", Chart: LineChart{Unit: "MHz",
			Series: []Series{{Name: "ssd", Points: minutes(8000, 8000)}}}}},
		Classes:   []ClassRow{{ID: "ssd", Platform: "external", Nodes: 2, CPUMHz: 8000, FreeCPUMHz: 2000}},
		GroupRows: []GroupRow{{Group: "default/web app/<b>", Decisions: 1}},
		Decisions: []DecisionRow{{Time: t0, Group: "default/web app/<b>", Mode: "recommend", Outcome: "held",
			Held: "recommend mode", Changes: []string{"~ count 3 → 4"}, Reasons: []string{"p95 demand 4000 MHz"}}},
	}
	var b bytes.Buffer
	if err := RenderOverview(&b, o); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`href="/ui/assets/style.css"`,
		`href="/ui/group/default/web%20app/%3Cb%3E"`,
		`default/web app/&lt;b&gt;`,
		"~ count 3 → 4", "p95 demand 4000 MHz", "Not written: recommend mode",
		`data-points="2"`, "75%", // 6000 of 8000 MHz allocated
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>") {
		t.Error("a group name reached the page unescaped")
	}
}

func TestGroupPageShowsForecastOrWhyNot(t *testing.T) {
	g := GroupPage{Page: Page{Base: "/ui", Now: t0}, Group: "default/web/web", Metric: "cpu_mhz", Metrics: []string{"cpu_mhz", "mem_rss_bytes"},
		ForecastError: "no history to forecast from", Affinity: []Bar{{Label: "ssd", Value: 10, Confidence: 0.5}}}
	var b bytes.Buffer
	if err := RenderGroup(&b, g); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"No forecast yet: no history to forecast from", `<a href="?metric=mem_rss_bytes">`, `<a href="?metric=cpu_mhz" class="current">`, `class="chart bars"`, "No decisions yet", "No usage yet"} {
		if !strings.Contains(page, want) {
			t.Errorf("group page lacks %q", want)
		}
	}
	if strings.Contains(page, "http-equiv") {
		t.Error("a page with Refresh 0 must not reload itself")
	}
}
