package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"jwks-issuer/pkg/metrics"
	"jwks-issuer/pkg/metrics/emftest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123_000_000, time.UTC)

func clock() time.Time { return t0 }

// One record: the line the writer makes, exactly.
func TestWriteLine(t *testing.T) {
	var out bytes.Buffer
	w := metrics.New(&out, clock)
	err := w.Write(metrics.Record{
		Dimensions: []metrics.Dimension{{"Secret", "jwks-issuer"}, {"Step", "createSecret"}},
		Rollup:     true,
		Metrics:    []metrics.Metric{{"RotationStepSucceeded", metrics.Count, 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_aws":{"Timestamp":1772355600123,"CloudWatchMetrics":[{"Namespace":"JwksIssuer",` +
		`"Dimensions":[["Secret","Step"],["Secret"]],"Metrics":[{"Name":"RotationStepSucceeded","Unit":"Count"}]}]},` +
		`"Secret":"jwks-issuer","Step":"createSecret","RotationStepSucceeded":1}` + "\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// Whatever the writer accepts, the checker accepts, and reads back the
// same dimensions and values.
func TestWrittenRecordsPassTheChecker(t *testing.T) {
	for name, rec := range map[string]metrics.Record{
		"one dimension": {Dimensions: []metrics.Dimension{{"Secret", "s"}},
			Metrics: []metrics.Metric{{"TokensIssued", metrics.Count, 1000}}},
		"rollup of three": {Dimensions: []metrics.Dimension{{"Secret", "s"}, {"Step", "finishSecret"}, {"Custody", "kms"}},
			Rollup: true, Metrics: []metrics.Metric{{"A", metrics.Seconds, 0.25}, {"B", "", -3}}},
		"no dimensions": {Metrics: []metrics.Metric{{"Up", metrics.Count, 1}}},
		"escaping": {Dimensions: []metrics.Dimension{{"Se\"cr\\et\n", "a\x01b\xffc✓"}},
			Metrics: []metrics.Metric{{"tab\tname", metrics.Bytes, 1e100}}},
		"big and small": {Dimensions: []metrics.Dimension{{"Secret", "s"}},
			Metrics: []metrics.Metric{{"Big", metrics.Count, 1 << 60}, {"Small", metrics.Seconds, 1e-9}, {"Neg", metrics.Count, -(1 << 52)}}},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := metrics.New(&out, clock).Write(rec); err != nil {
				t.Fatal(err)
			}
			if strings.Count(out.String(), "\n") != 1 || !strings.HasSuffix(out.String(), "\n") {
				t.Fatalf("not one line: %q", out.String())
			}
			got, err := emftest.Check(out.Bytes(), t0)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !got.Timestamp.Equal(t0.Truncate(time.Millisecond)) {
				t.Errorf("timestamp %v, want %v", got.Timestamp, t0)
			}
			sets := 1
			if rec.Rollup && len(rec.Dimensions) > 1 {
				sets = len(rec.Dimensions)
			}
			data := got.Data()
			if len(data) != sets*len(rec.Metrics) {
				t.Fatalf("%d data points, want %d: %+v", len(data), sets*len(rec.Metrics), data)
			}
			for _, d := range data {
				if d.Namespace != metrics.Namespace {
					t.Errorf("namespace %q", d.Namespace)
				}
				for _, dim := range rec.Dimensions {
					if v, ok := d.Dimensions[dim.Name]; ok && v != strings.ToValidUTF8(dim.Value, "\uFFFD") {
						t.Errorf("dimension %q = %q, want %q", dim.Name, v, dim.Value)
					}
				}
			}
			for i, m := range rec.Metrics {
				d := data[i]
				if d.Name != m.Name || d.Unit != string(m.Unit) || len(d.Values) != 1 || d.Values[0] != m.Value {
					t.Errorf("datum %+v, want %+v", d, m)
				}
			}
		})
	}
}

// The writer refuses what the specification refuses, and writes nothing.
func TestWriteRefusesInvalidRecords(t *testing.T) {
	many := func(n int) []metrics.Metric {
		out := make([]metrics.Metric, n)
		for i := range out {
			out[i] = metrics.Metric{Name: fmt.Sprintf("M%d", i), Unit: metrics.Count, Value: 1}
		}
		return out
	}
	dims := make([]metrics.Dimension, 31)
	for i := range dims {
		dims[i] = metrics.Dimension{Name: fmt.Sprintf("D%d", i), Value: "v"}
	}
	one := []metrics.Metric{{"A", metrics.Count, 1}}
	for name, rec := range map[string]metrics.Record{
		"no metric":        {},
		"101 metrics":      {Metrics: many(101)},
		"31 dimensions":    {Dimensions: dims, Metrics: one},
		"NaN":              {Metrics: []metrics.Metric{{"A", metrics.Count, math.NaN()}}},
		"infinity":         {Metrics: []metrics.Metric{{"A", metrics.Count, math.Inf(1)}}},
		"huge":             {Metrics: []metrics.Metric{{"A", metrics.Count, 1e300}}},
		"tiny":             {Metrics: []metrics.Metric{{"A", metrics.Count, -1e-300}}},
		"empty name":       {Metrics: []metrics.Metric{{"", metrics.Count, 1}}},
		"long name":        {Metrics: []metrics.Metric{{strings.Repeat("n", 256), metrics.Count, 1}}},
		"_aws":             {Metrics: []metrics.Metric{{"_aws", metrics.Count, 1}}},
		"colon":            {Metrics: []metrics.Metric{{":A", metrics.Count, 1}}},
		"metric twice":     {Metrics: []metrics.Metric{{"A", metrics.Count, 1}, {"A", metrics.Count, 2}}},
		"metric dimension": {Dimensions: []metrics.Dimension{{"A", "v"}}, Metrics: one},
		"dimension twice":  {Dimensions: []metrics.Dimension{{"S", "v"}, {"S", "w"}}, Metrics: one},
		"empty value":      {Dimensions: []metrics.Dimension{{"S", ""}}, Metrics: one},
		"unknown unit":     {Metrics: []metrics.Metric{{"A", "Tokens", 1}}},
	} {
		var out bytes.Buffer
		if err := metrics.New(&out, clock).Write(rec); err == nil {
			t.Errorf("%s: written: %s", name, out.String())
		} else if out.Len() != 0 {
			t.Errorf("%s: refused (%v) but wrote %q", name, err, out.String())
		}
	}
	if err := metrics.New(io.Discard, clock).Write(metrics.Record{Metrics: many(100), Dimensions: dims[:30]}); err != nil {
		t.Errorf("100 metrics over 30 dimensions: %v", err)
	}
	var nilWriter *metrics.Writer
	if err := nilWriter.Write(metrics.Record{Metrics: one}); err != nil {
		t.Errorf("nil writer: %v", err)
	}
}

// The checker is not an echo of the writer: each rule refuses the lines
// that break it.
func TestCheckerRefuses(t *testing.T) {
	const ts = `"Timestamp":1772355600123`
	base := func(directive, members string) string {
		return `{"_aws":{` + ts + `,"CloudWatchMetrics":[` + directive + `]}` + members + `}`
	}
	good := base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","Unit":"Count"}]}`, `,"S":"s","M":1`)
	if _, err := emftest.Check([]byte(good), t0); err != nil {
		t.Fatalf("the valid line is refused: %v", err)
	}
	for name, line := range map[string]string{
		"leading data":         ` ` + good,
		"trailing data":        good + ` {}`,
		"two objects":          good + good,
		"not UTF-8":            strings.Replace(good, `"s"`, "\"\xff\"", 1),
		"duplicate member":     strings.Replace(good, `,"M":1`, `,"M":1,"M":2`, 1),
		"duplicate in _aws":    strings.Replace(good, ts, ts+","+ts, 1),
		"no _aws":              `{"S":"s","M":1}`,
		"_aws not an object":   `{"_aws":[],"M":1}`,
		"no Timestamp":         strings.Replace(good, ts+",", "", 1),
		"extra _aws member":    strings.Replace(good, ts, ts+`,"LogGroupName":"g"`, 1),
		"timestamp in seconds": strings.Replace(good, "1772355600123", "1772355600", 1),
		"fractional timestamp": strings.Replace(good, "1772355600123", "1772355600123.5", 1),
		"timestamp string":     strings.Replace(good, "1772355600123", `"1772355600123"`, 1),
		"future timestamp":     strings.Replace(good, "1772355600123", "1772366400124", 1),
		"no directives":        `{"_aws":{` + ts + `,"CloudWatchMetrics":[]},"M":1}`,
		"no Namespace":         base(`{"Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1`),
		"empty Namespace":      base(`{"Namespace":"","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1`),
		"AWS/ Namespace":       base(`{"Namespace":"AWS/Lambda","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1`),
		"extra directive key":  base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}],"X":1}`, `,"S":"s","M":1`),
		"no Dimensions":        base(`{"Namespace":"N","Metrics":[{"Name":"M"}]}`, `,"M":1`),
		"empty Dimensions":     base(`{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M"}]}`, `,"M":1`),
		"flat Dimensions":      base(`{"Namespace":"N","Dimensions":["S"],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1`),
		"missing dimension":    base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"M":1`),
		"numeric dimension":    base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":5,"M":1`),
		"empty dimension":      base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"","M":1`),
		"blank dimension":      base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"  ","M":1`),
		"long dimension":       base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"`+strings.Repeat("v", 1025)+`","M":1`),
		"nested dimension":     base(`{"Namespace":"N","Dimensions":[["A.b"]],"Metrics":[{"Name":"M"}]}`, `,"A":{"b":"s"},"M":1`),
		"dimension twice":      base(`{"Namespace":"N","Dimensions":[["S","S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1`),
		"31 dimensions":        base(`{"Namespace":"N","Dimensions":[[`+names("D", 31)+`]],"Metrics":[{"Name":"M"}]}`, members("D", 31, `"v"`)+`,"M":1`),
		"no Metrics":           base(`{"Namespace":"N","Dimensions":[["S"]]}`, `,"S":"s"`),
		"empty Metrics":        base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[]}`, `,"S":"s"`),
		"101 metrics":          base(`{"Namespace":"N","Dimensions":[[]],"Metrics":[`+definitions("M", 101)+`]}`, members("M", 101, "1")),
		"no Name":              base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Unit":"Count"}]}`, `,"S":"s"`),
		"extra definition key": base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","Value":1}]}`, `,"S":"s","M":1`),
		"unknown unit":         base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","Unit":"Tokens"}]}`, `,"S":"s","M":1`),
		"lower-case unit":      base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","Unit":"count"}]}`, `,"S":"s","M":1`),
		"resolution 5":         base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","StorageResolution":5}]}`, `,"S":"s","M":1`),
		"metric twice":         base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"},{"Name":"M"}]}`, `,"S":"s","M":1`),
		"metric is dimension":  base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"S"}]}`, `,"S":"s"`),
		"missing metric":       base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s"`),
		"string metric":        base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":"1"`),
		"null metric":          base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":null`),
		"empty array metric":   base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":[]`),
		"mixed array metric":   base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":[1,"2"]`),
		"101 values":           base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":[`+strings.Repeat("1,", 100)+`1]`),
		"huge value":           base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1e300`),
		"tiny value":           base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1e-300`),
		"too big":              base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1,"pad":"`+strings.Repeat("x", 256<<10)+`"`),
	} {
		if _, err := emftest.Check([]byte(line), t0); err == nil {
			t.Errorf("%s: accepted: %.300s", name, line)
		}
	}
	for name, line := range map[string]string{
		"array of values":  base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":[1,2.5,0]`),
		"empty set":        base(`{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"M"}]}`, `,"M":1`),
		"resolution 1":     base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M","StorageResolution":1}]}`, `,"S":"s","M":1`),
		"other members":    base(`{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]}`, `,"S":"s","M":1,"msg":"hello","n":{"x":[1]}`),
		"30 dimensions":    base(`{"Namespace":"N","Dimensions":[[`+names("D", 30)+`]],"Metrics":[{"Name":"M"}]}`, members("D", 30, `"v"`)+`,"M":1`),
		"100 metrics":      base(`{"Namespace":"N","Dimensions":[[]],"Metrics":[`+definitions("M", 100)+`]}`, members("M", 100, "1")),
		"two directives":   `{"_aws":{` + ts + `,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["S"]],"Metrics":[{"Name":"M"}]},{"Namespace":"O","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"S":"s","M":1}`,
		"dotted dimension": base(`{"Namespace":"N","Dimensions":[["A.b"]],"Metrics":[{"Name":"M"}]}`, `,"A.b":"s","M":1`),
	} {
		if _, err := emftest.Check([]byte(line), t0); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

func names(prefix string, n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf(`"%s%d"`, prefix, i))
	}
	return strings.Join(b, ",")
}

func members(prefix string, n int, value string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"%s%d":%s`, prefix, i, value)
	}
	return b.String()
}

func definitions(prefix string, n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf(`{"Name":"%s%d","Unit":"Count"}`, prefix, i))
	}
	return strings.Join(b, ",")
}

// Scan refuses a log that is not all JSON objects, and checks each record.
func TestScan(t *testing.T) {
	var out bytes.Buffer
	w := metrics.New(&out, clock)
	out.WriteString(`{"time":"2026-03-01T09:00:00Z","level":"INFO","msg":"rotation step"}` + "\n")
	if err := w.Write(metrics.Record{Dimensions: []metrics.Dimension{{"Secret", "s"}}, Metrics: []metrics.Metric{{"A", metrics.Count, 1}}}); err != nil {
		t.Fatal(err)
	}
	recs, errs := emftest.Scan(out.String(), t0)
	if len(recs) != 1 || len(errs) != 0 {
		t.Fatalf("records %d, errors %v", len(recs), errs)
	}
	_, errs = emftest.Scan(out.String()+"plain text\n"+`{"_aws":{}}`+"\n", t0)
	if len(errs) != 2 {
		t.Fatalf("errors %v, want the plain line and the bad record", errs)
	}
}

// Writing a record allocates nothing once the buffer has grown.
func TestWriteDoesNotAllocate(t *testing.T) {
	w := metrics.New(io.Discard, clock)
	dims := []metrics.Dimension{{"Secret", "jwks-issuer-signing-keys"}}
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.Write(metrics.Record{Dimensions: dims, Metrics: []metrics.Metric{{"TokensIssued", metrics.Count, 1}}})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per record", allocs)
	}
}

// Records written at once from many goroutines come out whole, one a line.
func TestConcurrentWrites(t *testing.T) {
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	w := metrics.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), clock)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				_ = w.Write(metrics.Record{Dimensions: []metrics.Dimension{{"G", fmt.Sprint(g)}},
					Metrics: []metrics.Metric{{"I", metrics.Count, float64(i)}}})
			}
		})
	}
	wg.Wait()
	recs, errs := emftest.Scan(out.String(), t0)
	if len(recs) != 400 || len(errs) != 0 {
		t.Fatalf("%d records, errors %v", len(recs), errs)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestSecretName(t *testing.T) {
	for id, want := range map[string]string{
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks-issuer-signing-AbC123":  "jwks-issuer-signing",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-a1b2c3":                 "keys",
		"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:prod/jwks/keys-Zz9Yy8":   "prod/jwks/keys",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks-issuer-bcde94491c08":    "jwks-issuer-bcde94491c08", // a partial ARN
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks-issuer-bcde94491c08-WR": "jwks-issuer-bcde94491c08-WR",
		"jwks-issuer-signing": "jwks-issuer-signing",
		"prod/jwks-keys":      "prod/jwks-keys",
	} {
		if got := metrics.SecretName(id); got != want {
			t.Errorf("SecretName(%q) = %q, want %q", id, got, want)
		}
	}
}

// A record is one JSON object, as every line the functions write must be.
func TestRecordIsJSON(t *testing.T) {
	var out bytes.Buffer
	_ = metrics.New(&out, clock).Write(metrics.Record{Dimensions: []metrics.Dimension{{"Secret", "s"}},
		Metrics: []metrics.Metric{{"A", metrics.Count, 1}}})
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
}

// A prepared record writes the same line as Write with the same values.
func TestPreparedMatchesWrite(t *testing.T) {
	rec := metrics.Record{
		Dimensions: []metrics.Dimension{{"Secret", "jwks-issuer"}, {"Step", "testSecret"}},
		Rollup:     true,
		Metrics:    []metrics.Metric{{"A", metrics.Count, 3}, {"B", metrics.Seconds, 0.5}},
	}
	var direct, prepared bytes.Buffer
	if err := metrics.New(&direct, clock).Write(rec); err != nil {
		t.Fatal(err)
	}
	p, err := metrics.New(&prepared, clock).Prepare(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(3, 0.5); err != nil {
		t.Fatal(err)
	}
	if direct.String() != prepared.String() {
		t.Fatalf("Write:\n%s\nPrepared:\n%s", direct.String(), prepared.String())
	}
	for _, values := range [][]float64{{1}, {1, 2, 3}, {math.NaN(), 1}, {1, math.Inf(-1)}} {
		prepared.Reset()
		if err := p.Write(values...); err == nil || prepared.Len() != 0 {
			t.Errorf("%v: err %v, wrote %q", values, err, prepared.String())
		}
	}
	if _, err := metrics.New(io.Discard, clock).Prepare(metrics.Record{Metrics: []metrics.Metric{{"_aws", metrics.Count, 0}}}); err == nil {
		t.Error("prepared a record the specification refuses")
	}
	w := metrics.New(io.Discard, clock)
	p, _ = w.Prepare(rec)
	if allocs := testing.AllocsPerRun(100, func() { _ = p.Write(1, 2) }); allocs != 0 {
		t.Errorf("%v allocations per prepared record", allocs)
	}
}
