package console

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// HealthHistory samples a capture health snapshot (any JSON-marshalable value, such as
// dingtalk.Health) at an interval and keeps the latest samples, so that the integrity page
// charts each number of it over time: reconnects, silences, capture errors, pending media.
// Give it to Options.HealthHistory and run it beside the console (Run). It is safe for
// concurrent use.
type HealthHistory struct {
	fn    func() any
	every time.Duration
	keep  int
	now   func() time.Time

	mu      sync.Mutex
	samples []healthSample // oldest first, at most keep
}

type healthSample struct {
	at     time.Time
	values map[string]float64
}

// Defaults of NewHealthHistory.
const (
	DefaultHealthEvery = time.Minute
	DefaultHealthKeep  = 24 * 60
)

// NewHealthHistory returns a history of fn's snapshots taken every interval (default
// DefaultHealthEvery), keeping the latest keep (default DefaultHealthKeep: a day of minutes).
func NewHealthHistory(fn func() any, every time.Duration, keep int) *HealthHistory {
	if every <= 0 {
		every = DefaultHealthEvery
	}
	if keep <= 1 {
		keep = DefaultHealthKeep
	}
	return &HealthHistory{fn: fn, every: every, keep: keep, now: time.Now}
}

// Run samples now and then every interval until ctx is done, and returns ctx's error.
func (h *HealthHistory) Run(ctx context.Context) error {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.Sample()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sample takes one snapshot now: every number and boolean at the top level of its JSON (a
// boolean as 0 or 1). A snapshot that does not marshal is skipped.
func (h *HealthHistory) Sample() {
	b, err := json.Marshal(h.fn())
	if err != nil {
		return
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return
	}
	vals := map[string]float64{}
	for k, v := range m {
		switch v := v.(type) {
		case float64:
			vals[k] = v
		case bool:
			vals[k] = 0
			if v {
				vals[k] = 1
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, healthSample{at: h.now(), values: vals})
	if len(h.samples) > h.keep {
		h.samples = slices.Delete(h.samples, 0, len(h.samples)-h.keep)
	}
}

// chart is one number's history as the integrity page draws it.
type chart struct {
	Name     string
	Points   string // SVG polyline points in a chartWidth x chartHeight box
	Min, Max string
	Last     string
}

// unchanged is a number that did not change over the window.
type unchanged struct {
	Name, Value string
}

const chartWidth, chartHeight = 600, 48

// charts returns a chart of every number that changed over the samples, the unchanged ones,
// and the window.
func (h *HealthHistory) charts() ([]chart, []unchanged, string) {
	h.mu.Lock()
	samples := slices.Clone(h.samples)
	h.mu.Unlock()
	if len(samples) == 0 {
		return nil, nil, ""
	}
	names := map[string]bool{}
	for _, s := range samples {
		for k := range s.values {
			names[k] = true
		}
	}
	var out []chart
	var same []unchanged
	for _, name := range slices.Sorted(maps.Keys(names)) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range samples {
			v := s.values[name]
			lo, hi = min(lo, v), max(hi, v)
		}
		last := samples[len(samples)-1].values[name]
		if lo == hi {
			same = append(same, unchanged{Name: name, Value: num(last)})
			continue
		}
		var pts strings.Builder
		for i, s := range samples {
			x := float64(chartWidth) * float64(i) / float64(max(1, len(samples)-1))
			y := float64(chartHeight-2) - (s.values[name]-lo)/(hi-lo)*float64(chartHeight-4)
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		out = append(out, chart{Name: name, Points: strings.TrimSpace(pts.String()), Min: num(lo), Max: num(hi), Last: num(last)})
	}
	window := formatTime(samples[0].at) + " – " + formatTime(samples[len(samples)-1].at)
	return out, same, window
}

func num(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.2f", v), ".00") }
