// Package emftest checks log lines against the CloudWatch Embedded Metric
// Format specification, for tests. It shares no code with package metrics:
// it parses each line as CloudWatch Logs would and refuses what the
// specification or CloudWatch refuses.
//
// The rules, in the order Check applies them:
//
//  1. The line is one JSON object in valid UTF-8, with nothing before its
//     opening brace or after its closing one (but the line's newline), no
//     member named twice in any object, and at most 256 KiB.
//  2. The root has _aws, an object with exactly two members, Timestamp and
//     CloudWatchMetrics.
//  3. Timestamp is an integer number of milliseconds since the Unix epoch,
//     no more than 14 days before and 2 hours after the reference time (the
//     window CloudWatch accepts).
//  4. CloudWatchMetrics is a non-empty array of MetricDirective objects,
//     each with exactly Namespace, Dimensions and Metrics.
//  5. Namespace is a string of 1 to 255 bytes, not starting with a colon or
//     with "AWS/".
//  6. Dimensions is a non-empty array of DimensionSets. A DimensionSet is an
//     array of at most 30 distinct strings, each 1 to 255 bytes, not
//     starting with a colon, each naming a member of the root (not _aws)
//     whose value is a string of 1 to 1024 bytes with a character other
//     than white space.
//  7. Metrics is an array of 1 to 100 MetricDefinition objects, each with
//     Name and, optionally, Unit and StorageResolution, and nothing else.
//     Name is a string of 1 to 255 bytes, not starting with a colon, at
//     most once per directive and not one of its dimensions. Unit is one of
//     CloudWatch's units. StorageResolution is the integer 1 or 60.
//  8. Each Name names a member of the root whose value is a number or an
//     array of 1 to 100 numbers, each 0 or of a magnitude between 2^-360
//     and 2^360 (the range CloudWatch stores).
package emftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the specification and of CloudWatch.
const (
	MaxRecordBytes    = 256 << 10
	MaxDirectiveNames = 100
	MaxDimensions     = 30
	MaxValues         = 100
	maxName           = 255
	maxDimensionValue = 1024
	pastWindow        = 14 * 24 * time.Hour
	futureWindow      = 2 * time.Hour
)

// cloudWatchUnit tells whether u is one of CloudWatch's units.
func cloudWatchUnit(u string) bool {
	switch u {
	case "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
		"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
		"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
		"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
		"Count/Second", "None":
		return true
	}
	return false
}

// Record is a line that passed Check.
type Record struct {
	Timestamp  time.Time
	Directives []Directive
	// Members are the root's members other than _aws.
	Members map[string]any
}

// Directive is one MetricDirective.
type Directive struct {
	Namespace     string
	DimensionSets [][]string
	Metrics       []Definition
}

// Definition is one MetricDefinition.
type Definition struct {
	Name, Unit        string
	StorageResolution int
}

// Datum is one metric data point a record makes: one metric of one
// directive under one of its dimension sets.
type Datum struct {
	Namespace  string
	Name       string
	Unit       string // "" means None
	Dimensions map[string]string
	Values     []float64
	Timestamp  time.Time
}

// DimensionNames lists the datum's dimension names, sorted, joined by ",".
func (d Datum) DimensionNames() string {
	names := make([]string, 0, len(d.Dimensions))
	for n := range d.Dimensions {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// Data lists the data points the record makes.
func (r *Record) Data() []Datum {
	var out []Datum
	for _, d := range r.Directives {
		for _, set := range d.DimensionSets {
			dims := map[string]string{}
			for _, n := range set {
				dims[n] = r.Members[n].(string)
			}
			for _, m := range d.Metrics {
				out = append(out, Datum{Namespace: d.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: dims,
					Values: numbers(r.Members[m.Name]), Timestamp: r.Timestamp})
			}
		}
	}
	return out
}

func numbers(v any) []float64 {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return []float64{f}
	case []any:
		out := make([]float64, len(v))
		for i, e := range v {
			out[i], _ = e.(json.Number).Float64()
		}
		return out
	}
	return nil
}

// IsRecord tells whether a log line is meant as a record: a JSON object
// with a top-level _aws member. Other lines are plain log lines.
func IsRecord(line []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(line, &probe) != nil {
		return false
	}
	_, ok := probe["_aws"]
	return ok
}

// Scan checks every line of logs: each must be a JSON object (the
// functions write nothing else), and each record among them must pass
// Check at the reference time now. It returns the records and every
// failure, each naming its line.
func Scan(logs string, now time.Time) (records []*Record, errs []error) {
	n := 0
	for line := range strings.Lines(logs) {
		n++
		raw := []byte(line)
		if trimmed := bytes.TrimRight(raw, "\n"); len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
			errs = append(errs, fmt.Errorf("line %d is not a JSON object: %q", n, line))
			continue
		}
		if !IsRecord(raw) {
			continue
		}
		rec, err := Check(raw, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w: %s", n, err, line))
			continue
		}
		records = append(records, rec)
	}
	return records, errs
}

// Check parses line (with or without its newline) as a record and checks
// it against the rules of the package documentation, at the reference time
// now.
func Check(line []byte, now time.Time) (*Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > MaxRecordBytes {
		return nil, fmt.Errorf("record is %d bytes, the limit is %d", len(line), MaxRecordBytes)
	}
	if !utf8.Valid(line) {
		return nil, errors.New("record is not valid UTF-8")
	}
	if len(line) == 0 || line[0] != '{' || line[len(line)-1] != '}' {
		return nil, errors.New("record must be a JSON object with nothing before or after it")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decode(dec)
	if err != nil {
		return nil, fmt.Errorf("record does not parse: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("record has data after its JSON object")
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("record is not a JSON object")
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		return nil, errors.New("_aws is missing or not an object")
	}
	if err := exactly(aws, "_aws", []string{"Timestamp", "CloudWatchMetrics"}, nil); err != nil {
		return nil, err
	}
	rec := &Record{Members: map[string]any{}}
	for k, v := range root {
		if k != "_aws" {
			rec.Members[k] = v
		}
	}
	if rec.Timestamp, err = timestamp(aws["Timestamp"], now); err != nil {
		return nil, err
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return nil, errors.New("_aws.CloudWatchMetrics must be a non-empty array of MetricDirective objects")
	}
	for i, d := range directives {
		dir, err := directive(d, root)
		if err != nil {
			return nil, fmt.Errorf("_aws.CloudWatchMetrics[%d]: %w", i, err)
		}
		rec.Directives = append(rec.Directives, dir)
	}
	return rec, nil
}

func timestamp(v any, now time.Time) (time.Time, error) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, errors.New("_aws.Timestamp must be a number")
	}
	ms, err := n.Int64()
	if err != nil || strings.ContainsAny(n.String(), ".eE") {
		return time.Time{}, fmt.Errorf("_aws.Timestamp %s is not an integer number of milliseconds", n)
	}
	at := time.UnixMilli(ms)
	if at.Before(now.Add(-pastWindow)) || at.After(now.Add(futureWindow)) {
		return time.Time{}, fmt.Errorf("_aws.Timestamp %s (%s) is outside the window CloudWatch accepts around %s "+
			"(14 days before to 2 hours after): is it in seconds rather than milliseconds?", n, at.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return at, nil
}

func directive(v any, root map[string]any) (Directive, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Directive{}, errors.New("not an object")
	}
	if err := exactly(obj, "MetricDirective", []string{"Namespace", "Dimensions", "Metrics"}, nil); err != nil {
		return Directive{}, err
	}
	var dir Directive
	ns, ok := obj["Namespace"].(string)
	if !ok || len(ns) == 0 || len(ns) > maxName || strings.HasPrefix(ns, ":") || strings.HasPrefix(ns, "AWS/") {
		return dir, fmt.Errorf("Namespace %v must be a string of 1 to %d bytes, not starting with a colon or AWS/", obj["Namespace"], maxName)
	}
	dir.Namespace = ns
	sets, ok := obj["Dimensions"].([]any)
	if !ok || len(sets) == 0 {
		return dir, errors.New("Dimensions must be a non-empty array of DimensionSets")
	}
	dims := map[string]bool{}
	for i, s := range sets {
		set, err := dimensionSet(s, root)
		if err != nil {
			return dir, fmt.Errorf("Dimensions[%d]: %w", i, err)
		}
		for _, n := range set {
			dims[n] = true
		}
		dir.DimensionSets = append(dir.DimensionSets, set)
	}
	defs, ok := obj["Metrics"].([]any)
	if !ok || len(defs) == 0 || len(defs) > MaxDirectiveNames {
		return dir, fmt.Errorf("Metrics must be an array of 1 to %d MetricDefinition objects", MaxDirectiveNames)
	}
	seen := map[string]bool{}
	for i, d := range defs {
		def, err := definition(d, root)
		if err != nil {
			return dir, fmt.Errorf("Metrics[%d]: %w", i, err)
		}
		if seen[def.Name] {
			return dir, fmt.Errorf("Metrics[%d]: %s is defined twice", i, def.Name)
		}
		if dims[def.Name] {
			return dir, fmt.Errorf("Metrics[%d]: %s is also a dimension", i, def.Name)
		}
		seen[def.Name] = true
		dir.Metrics = append(dir.Metrics, def)
	}
	return dir, nil
}

func dimensionSet(v any, root map[string]any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("a DimensionSet must be an array of strings")
	}
	if len(arr) > MaxDimensions {
		return nil, fmt.Errorf("%d dimensions, the limit is %d", len(arr), MaxDimensions)
	}
	var set []string
	for _, e := range arr {
		name, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("dimension %v is not a string", e)
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		for _, s := range set {
			if s == name {
				return nil, fmt.Errorf("dimension %s is listed twice", name)
			}
		}
		if name == "_aws" {
			return nil, errors.New("_aws cannot be a dimension")
		}
		value, ok := root[name].(string)
		if !ok {
			return nil, fmt.Errorf("dimension %s: the root must hold it as a string member, got %v", name, root[name])
		}
		if len(value) == 0 || len(value) > maxDimensionValue || strings.TrimFunc(value, unicode.IsSpace) == "" {
			return nil, fmt.Errorf("dimension %s: value %q must be 1 to %d bytes with a character other than white space", name, value, maxDimensionValue)
		}
		set = append(set, name)
	}
	return set, nil
}

func definition(v any, root map[string]any) (Definition, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Definition{}, errors.New("a MetricDefinition must be an object")
	}
	if err := exactly(obj, "MetricDefinition", []string{"Name"}, []string{"Unit", "StorageResolution"}); err != nil {
		return Definition{}, err
	}
	var def Definition
	name, ok := obj["Name"].(string)
	if !ok {
		return def, errors.New("Name must be a string")
	}
	if err := checkName(name); err != nil {
		return def, err
	}
	if name == "_aws" {
		return def, errors.New("_aws cannot be a metric")
	}
	def.Name = name
	if u, present := obj["Unit"]; present {
		unit, ok := u.(string)
		if !ok || !cloudWatchUnit(unit) {
			return def, fmt.Errorf("%s: Unit %v is not a CloudWatch unit", name, u)
		}
		def.Unit = unit
	}
	if r, present := obj["StorageResolution"]; present {
		n, ok := r.(json.Number)
		if !ok || (n.String() != "1" && n.String() != "60") {
			return def, fmt.Errorf("%s: StorageResolution %v must be 1 or 60", name, r)
		}
		res, _ := n.Int64()
		def.StorageResolution = int(res)
	}
	if err := metricValue(name, root[name]); err != nil {
		return def, err
	}
	return def, nil
}

func metricValue(name string, v any) error {
	switch v := v.(type) {
	case json.Number:
		return number(name, v)
	case []any:
		if len(v) == 0 || len(v) > MaxValues {
			return fmt.Errorf("%s: an array of values must hold 1 to %d numbers, got %d", name, MaxValues, len(v))
		}
		for _, e := range v {
			n, ok := e.(json.Number)
			if !ok {
				return fmt.Errorf("%s: value %v is not a number", name, e)
			}
			if err := number(name, n); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return fmt.Errorf("%s: the root has no such member", name)
	}
	return fmt.Errorf("%s: the root member must be a number or an array of numbers, got %T", name, v)
}

func number(name string, n json.Number) error {
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("%s: %s is not a finite number", name, n)
	}
	if a := math.Abs(f); a != 0 && (a < math.Ldexp(1, -360) || a > math.Ldexp(1, 360)) {
		return fmt.Errorf("%s: %s is outside the range CloudWatch stores (2^-360 to 2^360)", name, n)
	}
	return nil
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > maxName || strings.HasPrefix(name, ":") {
		return fmt.Errorf("name %q must be 1 to %d bytes, not starting with a colon", name, maxName)
	}
	return nil
}

// exactly checks that obj has every member of required, perhaps members of
// optional, and nothing else.
func exactly(obj map[string]any, what string, required, optional []string) error {
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("%s lacks %s", what, k)
		}
	}
	for k := range obj {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return fmt.Errorf("%s has a member the specification does not define: %q", what, k)
		}
	}
	return nil
}

// decode reads one JSON value, refusing an object that names a member
// twice (RFC 8259 leaves its meaning open; CloudWatch's is unknown).
func decode(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			if _, dup := obj[key]; dup {
				return nil, fmt.Errorf("member %q appears twice in one object", key)
			}
			if obj[key], err = decode(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decode(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}
