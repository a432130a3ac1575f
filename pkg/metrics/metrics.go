// Package metrics writes CloudWatch Embedded Metric Format (EMF) records:
// one JSON object per line, on the stream the function logs to. CloudWatch
// Logs turns each record into metric data points as it ingests the line, so
// a function publishes metrics without a PutMetricData call, an extra
// permission or an extra request.
//
// A record is built with strconv appends into a buffer the Writer reuses,
// and written with one Write call, so that a record costs a few hundred
// nanoseconds and no allocation on the signer's hot path.
package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Namespace is the CloudWatch namespace of every metric the issuer writes.
const Namespace = "JwksIssuer"

// Unit is a CloudWatch unit.
type Unit string

// The units the issuer's metrics use.
const (
	Count   Unit = "Count"
	Seconds Unit = "Seconds"
	Bytes   Unit = "Bytes"
)

// valid tells whether u is a CloudWatch unit, or empty (None).
func (u Unit) valid() bool {
	switch u {
	case "", Count, Seconds, Bytes, "Microseconds", "Milliseconds", "Kilobytes", "Megabytes", "Gigabytes",
		"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Bytes/Second",
		"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
		"Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None":
		return true
	}
	return false
}

// Limits of one record, from the EMF specification.
const (
	// MaxMetrics is the most metric definitions one directive may hold.
	MaxMetrics = 100
	// MaxDimensions is the most dimensions one dimension set may hold.
	MaxDimensions = 30
	// maxName bounds metric and dimension names (CloudWatch's 255).
	maxName = 255
	// maxDimensionValue bounds a dimension's value (CloudWatch's 1024).
	maxDimensionValue = 1024
	// CloudWatch stores values of a magnitude between these, and zero.
	minMagnitude = 0x1p-360
	maxMagnitude = 0x1p360
)

// Metric is one value of a record.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Dimension is one dimension of a record: its name and its value.
type Dimension struct {
	Name, Value string
}

// Record is what one line carries: metrics sharing the same dimensions.
type Record struct {
	// Dimensions are the record's dimensions, most general first.
	Dimensions []Dimension
	// Rollup also declares each leading part of Dimensions as a dimension
	// set of its own: with Secret and Step, every metric is published once
	// per (Secret, Step) and once per Secret alone, so that one alarm can
	// watch all the steps.
	Rollup bool
	// Metrics are the values, each name at most once.
	Metrics []Metric
}

// Writer writes records, one line each, to an io.Writer.
type Writer struct {
	out       io.Writer
	now       func() time.Time
	namespace string

	mu  sync.Mutex
	buf []byte
}

// New returns a writer of records in Namespace to out, timestamped with now.
func New(out io.Writer, now func() time.Time) *Writer {
	return &Writer{out: out, now: now, namespace: Namespace, buf: make([]byte, 0, 1024)}
}

// Write writes rec as one line. A record the specification would refuse
// (too many metrics or dimensions, an empty or repeated name, a value
// CloudWatch does not store) is not written, and the error says why. A nil
// Writer writes nothing.
func (w *Writer) Write(rec Record) error {
	if w == nil {
		return nil
	}
	if err := validate(rec); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := strconv.AppendInt(append(w.buf[:0], `{"_aws":{"Timestamp":`...), w.now().UnixMilli(), 10)
	b = appendMetadata(b, w.namespace, rec)
	for _, m := range rec.Metrics {
		b = appendNumber(appendMember(b, m.Name), m.Value)
	}
	return w.flush(append(b, "}\n"...))
}

func (w *Writer) flush(b []byte) error {
	w.buf = b
	_, err := w.out.Write(b)
	return err
}

// appendMetadata appends what follows the timestamp up to the metrics'
// values: the directive, then the dimensions' members.
func appendMetadata(b []byte, namespace string, rec Record) []byte {
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = appendString(b, namespace)
	b = append(b, `,"Dimensions":[`...)
	b = appendDimensionSets(b, rec)
	b = append(b, `],"Metrics":[`...)
	for i, m := range rec.Metrics {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, m.Name)
		if m.Unit != "" {
			b = append(b, `,"Unit":`...)
			b = appendString(b, string(m.Unit))
		}
		b = append(b, '}')
	}
	b = append(b, `]}]}`...)
	for _, d := range rec.Dimensions {
		b = appendString(appendMember(b, d.Name), d.Value)
	}
	return b
}

// appendMember appends ,"name": before a root member's value.
func appendMember(b []byte, name string) []byte {
	return append(appendString(append(b, ','), name), ':')
}

// Prepared is a record whose dimensions and metrics are fixed, rendered
// once: writing one appends a timestamp and the values to a copy of it.
// It is the form for a hot path.
type Prepared struct {
	w *Writer
	// metadata is what follows the timestamp up to the first value.
	metadata []byte
	// members are the metrics' ,"NAME": prefixes.
	members [][]byte
}

// Prepare renders the record of rec's dimensions and metrics (their
// values are not used), or says why the specification would refuse it.
func (w *Writer) Prepare(rec Record) (*Prepared, error) {
	if err := validate(rec); err != nil {
		return nil, err
	}
	p := &Prepared{w: w, metadata: appendMetadata(nil, w.namespace, rec)}
	for _, m := range rec.Metrics {
		p.members = append(p.members, appendMember(nil, m.Name))
	}
	return p, nil
}

// Write writes the record with values, one for each of its metrics, in
// order. Nothing is written if their number is wrong or one is a value
// CloudWatch does not store. A nil Prepared writes nothing.
func (p *Prepared) Write(values ...float64) error {
	if p == nil || p.w == nil {
		return nil
	}
	if len(values) != len(p.members) {
		return fmt.Errorf("metrics: %d values for a record of %d metrics", len(values), len(p.members))
	}
	for i, v := range values {
		if err := checkValue(v); err != nil {
			return fmt.Errorf("metrics: value %d: %w", i, err)
		}
	}
	w := p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	b := strconv.AppendInt(append(w.buf[:0], `{"_aws":{"Timestamp":`...), w.now().UnixMilli(), 10)
	b = append(b, p.metadata...)
	for i, v := range values {
		b = appendNumber(append(b, p.members[i]...), v)
	}
	return w.flush(append(b, "}\n"...))
}

// appendDimensionSets appends the record's dimension sets: all of its
// dimensions, then, with Rollup, each shorter leading part down to one.
func appendDimensionSets(b []byte, rec Record) []byte {
	shortest := len(rec.Dimensions)
	if rec.Rollup && shortest > 1 {
		shortest = 1
	}
	for n := len(rec.Dimensions); n >= shortest; n-- {
		if n < len(rec.Dimensions) {
			b = append(b, ',')
		}
		b = append(b, '[')
		for i, d := range rec.Dimensions[:n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, d.Name)
		}
		b = append(b, ']')
	}
	return b
}

// validate checks what the specification asks of a record's names and
// values; the writer's own output is valid JSON by construction.
func validate(rec Record) error {
	if len(rec.Metrics) == 0 {
		return errors.New("metrics: a record needs at least one metric")
	}
	if len(rec.Metrics) > MaxMetrics {
		return fmt.Errorf("metrics: %d metrics in one record, the limit is %d", len(rec.Metrics), MaxMetrics)
	}
	if len(rec.Dimensions) > MaxDimensions {
		return fmt.Errorf("metrics: %d dimensions in one record, the limit is %d", len(rec.Dimensions), MaxDimensions)
	}
	for i, d := range rec.Dimensions {
		if err := checkName(d.Name); err != nil {
			return fmt.Errorf("metrics: dimension %d: %w", i, err)
		}
		if d.Value == "" || len(d.Value) > maxDimensionValue {
			return fmt.Errorf("metrics: dimension %s: its value must be 1 to %d bytes, got %d", d.Name, maxDimensionValue, len(d.Value))
		}
		if used(rec, d.Name, i) {
			return fmt.Errorf("metrics: %s is used twice in one record", d.Name)
		}
	}
	for i, m := range rec.Metrics {
		if err := checkName(m.Name); err != nil {
			return fmt.Errorf("metrics: metric %d: %w", i, err)
		}
		if !m.Unit.valid() {
			return fmt.Errorf("metrics: %s: %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		if err := checkValue(m.Value); err != nil {
			return fmt.Errorf("metrics: %s: %w", m.Name, err)
		}
		if used(rec, m.Name, len(rec.Dimensions)+i) {
			return fmt.Errorf("metrics: %s is used twice in one record", m.Name)
		}
	}
	return nil
}

// checkValue refuses a value CloudWatch does not store.
func checkValue(v float64) error {
	if a := math.Abs(v); math.IsNaN(v) || a != 0 && (a < minMagnitude || a > maxMagnitude) {
		return fmt.Errorf("%v is outside what CloudWatch stores (0, or 2^-360 to 2^360 either side)", v)
	}
	return nil
}

// checkName refuses a name CloudWatch would: empty, too long, or the
// record's own metadata member.
func checkName(name string) error {
	switch {
	case name == "" || len(name) > maxName:
		return fmt.Errorf("a name must be 1 to %d bytes, got %d", maxName, len(name))
	case name == "_aws":
		return errors.New(`"_aws" is the record's metadata, not a name`)
	case strings.HasPrefix(name, ":"):
		return fmt.Errorf("name %q starts with a colon", name)
	}
	return nil
}

// used tells whether a dimension or metric before position at (dimensions
// first, then metrics) already has name.
func used(rec Record, name string, at int) bool {
	for i := 0; i < at; i++ {
		var other string
		if i < len(rec.Dimensions) {
			other = rec.Dimensions[i].Name
		} else {
			other = rec.Metrics[i-len(rec.Dimensions)].Name
		}
		if other == name {
			return true
		}
	}
	return false
}

// appendNumber appends v as a JSON number: whole values as integers, the
// rest in the shortest form that reads back exactly.
func appendNumber(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendString appends s as a JSON string. Names and values are plain
// ASCII in practice, which is copied as it is; anything else is escaped as
// RFC 8259 asks, and invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// SecretName is the Secret dimension of a secret id (SECRET_ID): the
// secret's name. For an ARN,
// arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX, that is NAME,
// without the six characters Secrets Manager appends; a name is itself.
func SecretName(id string) string {
	const marker = ":secret:"
	if !strings.HasPrefix(id, "arn:") {
		return id
	}
	i := strings.Index(id, marker)
	if i < 0 {
		return id
	}
	name := id[i+len(marker):]
	if j := strings.LastIndexByte(name, '-'); j > 0 && len(name)-j-1 == 6 && alphanumeric(name[j+1:]) {
		return name[:j]
	}
	return name
}

func alphanumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
