package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Write prints the plan for a person: the app, its group, the colours and their ports, and
// the steps (what --dry-run shows).
func (p *Plan) Write(w io.Writer) {
	fmt.Fprintf(w, "deploy %s (%s)\n", p.Source, p.Mode)
	fmt.Fprintf(w, "  deployment group  %s, served by HAProxy on port %d (%s)\n", p.Group, p.FrontendPort, LabelPort0)
	if p.OldID != "" {
		fmt.Fprintf(w, "  old colour        %s (%s), Marathon service port %d, %d instance(s)\n", p.OldID, orNone(p.OldColour), p.OldServicePort, p.OldInstances)
	}
	fmt.Fprintf(w, "  new colour        %s (%s), Marathon service port %d\n", p.NewID, orNone(p.NewColour), p.NewServicePort)
	fmt.Fprintf(w, "  target instances  %d", p.Target)
	if p.Hybrid {
		fmt.Fprintf(w, " (hybrid: %d new, %d old)", p.Goal, p.Target-p.Goal)
	}
	fmt.Fprintln(w)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note              %s\n", n)
	}
	fmt.Fprintln(w, "steps:")
	for i, s := range p.steps() {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	if p.New != nil {
		b, err := json.MarshalIndent(p.New, "  ", "  ")
		if err == nil {
			fmt.Fprintf(w, "app definition to create:\n  %s\n", b)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no colour label"
	}
	return s
}

// steps describes the run in words.
func (p *Plan) steps() []string {
	var out []string
	if p.New != nil {
		out = append(out, fmt.Sprintf("POST /v2/apps %s with %d instance(s)", p.NewID, mustInstances(p.New)))
	}
	switch p.Mode {
	case ModeFirst:
		return append(out, fmt.Sprintf("wait until its %d instance(s) are healthy and every edge serves them", p.Target))
	case ModeCompletePrev:
		return append(out,
			fmt.Sprintf("PUT /v2/apps%s instances=%d, wait until healthy and served by every edge", p.NewID, p.Target),
			fmt.Sprintf("DELETE /v2/apps%s (lodestar drains the older colour for the newer one, never the reverse: its tasks are killed as Marathon kills them)", p.OldID))
	}
	if len(p.Steps) > 1 {
		counts := make([]string, len(p.Steps))
		for i, n := range p.Steps {
			counts[i] = strconv.Itoa(n)
		}
		out = append(out, fmt.Sprintf("scale %s through %s instance(s) (PUT /v2/apps%s), each once the last is healthy and served by every edge", p.NewID, strings.Join(counts, " → "), p.NewID))
	}
	out = append(out, fmt.Sprintf("after each step, remove the tasks of %s that every edge reports drained (state drain, 0 sessions): POST /v2/tasks/delete?scale=true", p.OldID))
	if p.Hybrid {
		return append(out, fmt.Sprintf("stop with %d new and %d old instance(s) serving side by side (finish later with --complete-cur or --complete-prev)", p.Goal, p.Target-p.Goal))
	}
	return append(out, fmt.Sprintf("DELETE /v2/apps%s once every edge reports all its servers drained", p.OldID))
}
