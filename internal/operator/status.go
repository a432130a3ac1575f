package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func runStatus(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	asJSON := fs.Bool("json", false, "print the report as one JSON document")
	if _, status, ok := r.parse(fs, args); !ok {
		return status
	}
	rep, status := r.report(ctx)
	if rep == nil {
		return status
	}
	if *asJSON {
		enc := json.NewEncoder(r.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return r.fail(err)
		}
		return rep.ExitStatus
	}
	writeReport(r.out, rep)
	return rep.ExitStatus
}

// report resolves the target and gathers its report; nil with the exit
// status when it could not.
func (r *runner) report(ctx context.Context) (*report, int) {
	c, err := r.clients(ctx)
	if err != nil {
		return nil, r.fail(err)
	}
	t, err := r.resolve(ctx, c, true)
	if err != nil {
		return nil, r.fail(err)
	}
	rep, err := r.gather(ctx, c, t)
	if err != nil {
		return nil, r.fail(err)
	}
	return rep, rep.ExitStatus
}

// writeReport prints the report as text: the key table, the checks, the
// settings.
func writeReport(w io.Writer, rep *report) {
	head := "secret " + rep.Secret
	if rep.Stack != "" {
		head = "stack " + rep.Stack + ", " + head
	}
	fmt.Fprintf(w, "%s\nat %s (times in UTC)\n\n", head, rep.At.Format("2006-01-02 15:04:05"))
	writeKeys(w, rep)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS")
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status, c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(tw, "\t\t  - %s\n", d)
		}
		if c.Next != "" && c.Status != statusOK {
			fmt.Fprintf(tw, "\t\t  next: %s\n", c.Next)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, s := range rep.Settings {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, first(s.Value, "-"), s.Source)
	}
	tw.Flush()
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warn)
	}
	fmt.Fprintln(w)
	var problems []string
	for _, c := range rep.Checks {
		if c.Status == statusProblem {
			problems = append(problems, c.Name)
		}
	}
	switch rep.Health {
	case "healthy":
		fmt.Fprintln(w, "healthy")
	case "problem":
		fmt.Fprintf(w, "problem: %s (see next: above)\n", strings.Join(problems, ", "))
	default:
		fmt.Fprintln(w, "not every check could read its input (see unknown above)")
	}
}

// writeKeys prints the key table and its notes.
func writeKeys(w io.Writer, rep *report) {
	if len(rep.Keys) == 0 {
		fmt.Fprintln(w, "the secret holds no key yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCUSTODY\tFIRST PUBLISHED\tSIGNING SINCE\tRETIRED AT\tLEAVES THE JWKS AFTER")
	var notes []string
	for _, k := range rep.Keys {
		m, note := momentsOf(k)
		notes = append(notes, note...)
		notes = append(notes, publishedNote(k)...)
		state := k.State
		if k.Emergency {
			state += " (emergency)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Kid, first(k.Alg, "?"), state, custodyLabel(k.Custody),
			m.published, m.signing, m.retired, m.leaves)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// custodyLabels are the CUSTODY column's words for the report's custody
// values; any other is the secret (where keys are unless something else
// holds them).
var custodyLabels = map[string]string{"kms": "kms", "parameterstore": "parameter", "unknown": "?"}

func custodyLabel(custody string) string {
	if l, ok := custodyLabels[custody]; ok {
		return l
	}
	return "secret"
}

// moments are a key's times as the table writes them: a time, "?" for a
// time the secret does not record, "-" for one that does not apply.
type moments struct{ published, signing, retired, leaves string }

// momentsOf is the row's times, and what the table must say about them.
func momentsOf(k keyRow) (moments, []string) {
	m := moments{published: at(k.FirstPublished, "?"), signing: at(k.SigningSince, "?"),
		retired: at(k.RetiredAt, "?"), leaves: at(k.LeavesJWKSAfter, "?")}
	var notes []string
	switch k.State {
	case "CURRENT":
		m.retired, m.leaves = "-", "-"
	case "pending":
		m.signing, m.retired, m.leaves = "at finishSecret", "-", "-"
	case "NEXT":
		// It has not signed: the earliest moment it may is the grace's end.
		m.signing, m.retired, m.leaves = "-", "-", "-"
		if k.MayBePromotedAt != nil {
			m.signing = "≥ " + stamp(*k.MayBePromotedAt)
		}
		if k.FirstPublished == nil {
			m.published = "not yet"
		}
	case "RETIRED":
		if k.RetiredAt == nil {
			m.leaves = "kept"
			notes = append(notes, k.Kid+": its retirement time is not recorded yet, so it stays published until it is")
		}
	case "REVOKED":
		if k.Label != "" {
			notes = append(notes, fmt.Sprintf("%s: revoked, but still %s: the emergency rollover has not finished", k.Kid, k.Label))
		} else {
			m.signing = "-" // no longer labelled: the history does not keep when it signed
		}
	}
	return m, notes
}

// publishedNote says when the published copy disagrees with the secret
// about the key.
func publishedNote(k keyRow) []string {
	switch {
	case k.Published == nil || *k.Published == k.InKeySet:
		return nil
	case *k.Published:
		return []string{k.Kid + ": published, though the secret leaves it out of the key set now"}
	}
	return []string{k.Kid + ": missing from the published key set"}
}

// at formats an optional time for the table.
func at(t *time.Time, unknown string) string {
	if t == nil {
		return unknown
	}
	return stamp(*t)
}

// stamp is a time as the text output writes it.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// utc is t in UTC, nil when zero.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// human writes a duration the way people read one: 29d 21h, 3h12m, 4m05s, 1.5s.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd %dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	case d >= 10*time.Second:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}
