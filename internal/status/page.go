package status

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

// Refresh is how often the page reloads itself (meta refresh).
const Refresh = 5 * time.Second

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"dur":    fmtSeconds,
	"ago":    func(now, t time.Time) string { return fmtSeconds(now.Sub(t).Seconds()) },
	"clock":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"offset": fmtOffset,
	"lagsec": func(p *float64) string {
		if p == nil {
			return "?"
		}
		return fmtSeconds(*p)
	},
}).Parse(pageHTML))

// pageData is what the template renders: the view and its charts.
type pageData struct {
	View
	Refresh int
	Charts  []Chart
}

// Handler serves /status and /status.json. Its links are relative, so the
// page works behind a path prefix (an ingress, kubectl port-forward with a
// proxy path).
func (s *Status) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", s.serveHTML)
	mux.HandleFunc("/status.json", s.serveJSON)
	return mux
}

func (s *Status) serveHTML(w http.ResponseWriter, r *http.Request) {
	v := s.View()
	var buf bytes.Buffer
	if err := page.Execute(&buf, pageData{View: v, Refresh: int(Refresh / time.Second), Charts: Charts(v.History, v.Now)}); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Nothing from elsewhere, nothing run: inline style and SVG only.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
}

func (s *Status) serveJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.View())
}

// Chart is one inline SVG chart of the page.
type Chart struct {
	Title  string
	Last   string // the latest value, formatted
	Max    string // the top of the y axis, formatted
	Points string // the polyline's points, in the viewBox
	Span   string // what the x axis spans, formatted
	Width  int
	Height int
}

const chartW, chartH = 300, 80

// Charts draws the history's series over its window ending at now:
// handler latency, records per second and lag.
func Charts(h History, now time.Time) []Chart {
	series := []struct {
		title string
		val   func(Sample) float64
		fmt   func(float64) string
	}{
		{"batch latency (mean)", func(s Sample) float64 { return s.LatencySeconds }, fmtSeconds},
		{"records/s", func(s Sample) float64 { return s.RecordsPerSecond }, fmtNumber},
		{"lag (records, all partitions)", func(s Sample) float64 { return float64(s.LagRecords) }, fmtNumber},
		{"lag (seconds, oldest partition)", func(s Sample) float64 { return s.LagSeconds }, fmtSeconds},
	}
	window := h.WindowSeconds
	if window <= 0 {
		window = DefaultWindow.Seconds()
	}
	// Until the window is full the x axis spans what was sampled (at
	// least a minute), so that a service up for a minute shows its curve.
	if len(h.Samples) > 0 {
		window = min(window, max(now.Sub(h.Samples[0].Time).Seconds()+h.EverySeconds, 60))
	}
	out := make([]Chart, 0, len(series))
	for _, sr := range series {
		c := Chart{Title: sr.title, Width: chartW, Height: chartH, Last: "–", Max: sr.fmt(0), Span: fmtSeconds(window)}
		top := 0.0
		for _, s := range h.Samples {
			top = max(top, sr.val(s))
		}
		if top > 0 {
			top *= 1.1
		} else {
			top = 1
		}
		var pts strings.Builder
		for _, s := range h.Samples {
			x := chartW - now.Sub(s.Time).Seconds()/window*chartW
			if x < 0 {
				continue
			}
			y := chartH - sr.val(s)/top*chartH
			fmt.Fprintf(&pts, "%.1f,%.1f ", min(x, chartW), y)
		}
		c.Points = strings.TrimSpace(pts.String())
		if n := len(h.Samples); n > 0 {
			c.Last = sr.fmt(sr.val(h.Samples[n-1]))
			c.Max = sr.fmt(top)
		}
		out = append(out, c)
	}
	return out
}

func fmtSeconds(s float64) string {
	switch {
	case math.IsNaN(s) || s <= 0:
		return "0s"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 1, 64) + "ms"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return (time.Duration(s) * time.Second).String()
}

func fmtNumber(f float64) string {
	if f >= 100 || f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func fmtOffset(o int64) string {
	if o < 0 {
		return "–"
	}
	return strconv.FormatInt(o, 10)
}
