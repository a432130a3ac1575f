package deploy

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"jwks-issuer/pkg/metrics"
)

// The alarms (AlarmEmail, AlarmTopicArn) and the dashboard: the alarms
// exist only when someone is told of them; each watches a metric the
// functions write, with the dimension they write (Secret, the secret's name
// as metrics.SecretName derives it from SECRET_ID), and the thresholds of
// README's "Alarms".

// alarmSpec is what an alarm must be. A metric-math alarm lists its
// expression and its metrics, id to "namespace/name".
type alarmSpec struct {
	metric     string // JwksIssuer metric of a single-metric alarm
	stat       string
	period     int
	evals      int
	op         string
	threshold  string
	missing    string
	expression string
	inputs     map[string]string
	function   string // FunctionName of the AWS/Lambda input
	runbook    string
}

var alarmSpecs = map[string]alarmSpec{
	"RotationStepFailedAlarm": {metric: "RotationStepFailed", stat: "Sum", period: 300, evals: 1, op: "GreaterThanOrEqualToThreshold", threshold: "1", missing: "notBreaching", runbook: "#a-failed-rotation"},
	"RotatorErrorsAlarm": {stat: "Sum", period: 300, evals: 1, op: "GreaterThanOrEqualToThreshold", threshold: "1", missing: "notBreaching",
		expression: "FILL(e,0) - FILL(r,0) - FILL(s,0)", inputs: map[string]string{"e": "AWS/Lambda/Errors", "r": "JwksIssuer/RotationRefused", "s": "JwksIssuer/StepRefused"},
		function: "RotatorFunction", runbook: "#a-failed-rotation"},
	"CurrentKeyAgeAlarm":    {metric: "CurrentKeyAgeSeconds", stat: "Maximum", period: 3600, evals: 1, op: "GreaterThanThreshold", threshold: "2764800", missing: "notBreaching", runbook: "#scheduled-rotation"},
	"CleanupFailedAlarm":    {metric: "CleanupSucceeded", stat: "Sum", period: 3600, evals: 3, op: "LessThanThreshold", threshold: "1", missing: "breaching", runbook: "#a-failed-rotation"},
	"KeyRefreshFailedAlarm": {metric: "KeyRefreshFailed", stat: "Sum", period: 300, evals: 3, op: "GreaterThanOrEqualToThreshold", threshold: "1", missing: "notBreaching", runbook: "#what-the-metrics-say"},
	"IssuerErrorAlarm":      {metric: "IssuerError", stat: "Sum", period: 300, evals: 2, op: "GreaterThanOrEqualToThreshold", threshold: "5", missing: "notBreaching", runbook: "#what-the-metrics-say"},
	"SignerErrorsAlarm": {stat: "Sum", period: 300, evals: 1, op: "GreaterThanOrEqualToThreshold", threshold: "1", missing: "notBreaching",
		expression: "FILL(e,0) - FILL(r,0) - FILL(i,0)", inputs: map[string]string{"e": "AWS/Lambda/Errors", "r": "JwksIssuer/RequestRejected", "i": "JwksIssuer/IssuerError"},
		function: "SignerFunction", runbook: "#what-the-metrics-say"},
	"PublishedKeysAlarm": {metric: "PublishedKeys", stat: "Maximum", period: 3600, evals: 1, op: "GreaterThanThreshold", threshold: "10", missing: "notBreaching", runbook: "#what-the-metrics-say"},
	"JwksBytesAlarm":     {metric: "JwksBytes", stat: "Maximum", period: 3600, evals: 1, op: "GreaterThanThreshold", threshold: "100000", missing: "notBreaching", runbook: "#what-the-metrics-say"},
}

// testSecretArn is a secret's ARN as CloudFormation names a secret without
// Name: "<LogicalId>-<12 random characters>", then Secrets Manager's
// "-<6 random characters>".
const testSecretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:KeySecret-a1B2c3D4e5F6-AbC123"

// emitted is every string literal of the Go files that write the metrics:
// the metric and dimension names the functions use are among them.
func emitted(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range []string{"pkg/rotation/metrics.go", "pkg/token/metrics.go"} {
		file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), f), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out[s] = true
				}
			}
			return true
		})
	}
	// The metrics' names and dimensions, as written by WithMetrics/metrics.go.
	for _, name := range []string{"RotationStepFailed", "RotationRefused", "StepRefused", "CleanupSucceeded", "CurrentKeyAgeSeconds",
		"PublishedKeys", "JwksBytes", "KeyRefreshFailed", "IssuerError", "RequestRejected", "TokensIssued", "Secret"} {
		if !out[name] {
			t.Fatalf("%q is not in the metrics' sources any more: update the alarms", name)
		}
	}
	return out
}

func alarmNames(tpl obj) []string {
	var out []string
	for name, r := range getObj(tpl, "Resources") {
		if get(r, "Type") == "AWS::CloudWatch::Alarm" {
			out = append(out, name)
		}
	}
	return sorted(out)
}

// TestAlarmsAreOptional: no alarm and no topic without AlarmEmail and
// AlarmTopicArn; with either, every alarm, notifying what was given.
func TestAlarmsAreOptional(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	var want []string
	for name := range alarmSpecs {
		want = append(want, name)
	}
	if got := alarmNames(tpl); !slices.Equal(got, sorted(want)) {
		t.Fatalf("alarms %v, want %v", got, sorted(want))
	}
	const topic = "arn:aws:sns:eu-west-1:123456789012:ops"
	for _, tc := range []struct {
		name    string
		params  map[string]string
		actions []string
	}{
		{"no alarms", nil, nil},
		{"email", map[string]string{"AlarmEmail": "ops@example.com"}, []string{"ref-AlarmTopic"}},
		{"topic", map[string]string{"AlarmTopicArn": topic}, []string{topic}},
		{"both", map[string]string{"AlarmEmail": "ops@example.com", "AlarmTopicArn": topic}, []string{topic, "ref-AlarmTopic"}},
	} {
		d := deploy(t, tpl, tc.params)
		if got := d.exists("AlarmTopic"); got != (tc.params["AlarmEmail"] != "") {
			t.Errorf("%s: AlarmTopic created = %v", tc.name, got)
		}
		if d.exists("AlarmTopic") {
			sub := d.eval(get(tpl, "Resources", "AlarmTopic", "Properties", "Subscription"))
			if got := render(sub); got != `[{"Endpoint":"ops@example.com","Protocol":"email"}]` {
				t.Errorf("%s: AlarmTopic subscriptions %s", tc.name, got)
			}
		}
		for _, name := range alarmNames(tpl) {
			if got := d.exists(name); got != (tc.actions != nil) {
				t.Errorf("%s: alarm %s created = %v", tc.name, name, got)
				continue
			}
			if tc.actions == nil {
				continue
			}
			for _, k := range []string{"AlarmActions", "OKActions"} {
				if got := d.list(get(tpl, "Resources", name, "Properties", k)); !slices.Equal(got, tc.actions) {
					t.Errorf("%s: %s %s = %v, want %v", tc.name, name, k, got, tc.actions)
				}
			}
		}
		if !d.exists("Dashboard") {
			t.Errorf("%s: no dashboard", tc.name)
		}
	}
}

// secretDimension checks a Dimensions list: exactly Secret, evaluating to
// the name the functions derive from SECRET_ID.
func secretDimension(t *testing.T, where string, d *deployment, dims any) {
	t.Helper()
	l, _ := dims.([]any)
	if len(l) != 1 || get(l[0], "Name") != "Secret" {
		t.Errorf("%s: dimensions %s, want Secret alone", where, render(dims))
		return
	}
	want := metrics.SecretName(d.env("RotatorFunction")["SECRET_ID"])
	if got := d.str(get(l[0], "Value")); got != want || want != "KeySecret-a1B2c3D4e5F6" {
		t.Errorf("%s: Secret = %q, want %q (the rotator's and the signer's)", where, got, want)
	}
	if s := metrics.SecretName(d.env("SignerFunction")["SECRET_ID"]); s != want {
		t.Errorf("the signer's Secret %q is not the rotator's %q", s, want)
	}
}

// TestAlarms: each alarm as README's "Alarms" says, on metrics the
// functions write, dimensioned as they are.
func TestAlarms(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	names := emitted(t)
	d := deploy(t, tpl, map[string]string{"AlarmEmail": "ops@example.com"})
	d.refs = map[string]string{"KeySecret": testSecretArn}
	for name, want := range alarmSpecs {
		p := getObj(tpl, "Resources", name, "Properties")
		if p == nil {
			t.Errorf("alarm %s is missing", name)
			continue
		}
		num := func(k string) string { return d.str(p[k]) }
		if desc := num("AlarmDescription"); !strings.Contains(desc, "See docs/runbook.md"+want.runbook) {
			t.Errorf("%s: description %q does not link docs/runbook.md%s", name, desc, want.runbook)
		}
		if got := num("EvaluationPeriods"); got != strconv.Itoa(want.evals) {
			t.Errorf("%s: EvaluationPeriods %s, want %d", name, got, want.evals)
		}
		if got := num("DatapointsToAlarm"); got != strconv.Itoa(want.evals) {
			t.Errorf("%s: DatapointsToAlarm %s, want %d", name, got, want.evals)
		}
		if got := num("ComparisonOperator"); got != want.op {
			t.Errorf("%s: ComparisonOperator %s, want %s", name, got, want.op)
		}
		if got := num("Threshold"); got != want.threshold {
			t.Errorf("%s: Threshold %s, want %s", name, got, want.threshold)
		}
		if got := num("TreatMissingData"); got != want.missing {
			t.Errorf("%s: TreatMissingData %s, want %s", name, got, want.missing)
		}
		if want.expression == "" {
			if got := num("Namespace"); got != "JwksIssuer" {
				t.Errorf("%s: Namespace %s", name, got)
			}
			if got := num("MetricName"); got != want.metric || !names[got] {
				t.Errorf("%s: MetricName %s, want %s (which the functions write)", name, got, want.metric)
			}
			if got := num("Statistic"); got != want.stat {
				t.Errorf("%s: Statistic %s, want %s", name, got, want.stat)
			}
			if got := num("Period"); got != strconv.Itoa(want.period) {
				t.Errorf("%s: Period %s, want %d", name, got, want.period)
			}
			secretDimension(t, name, d, p["Dimensions"])
			continue
		}
		ms, _ := p["Metrics"].([]any)
		inputs := map[string]string{}
		for _, m := range ms {
			id := d.str(get(m, "Id"))
			if e, ok := get(m, "Expression").(string); ok {
				if e != want.expression || !isTrue(get(m, "ReturnData")) {
					t.Errorf("%s: expression %q (ReturnData %v), want %q returned", name, e, get(m, "ReturnData"), want.expression)
				}
				continue
			}
			if isTrue(get(m, "ReturnData")) {
				t.Errorf("%s: input %s is returned", name, id)
			}
			ns, metric := d.str(get(m, "MetricStat", "Metric", "Namespace")), d.str(get(m, "MetricStat", "Metric", "MetricName"))
			inputs[id] = ns + "/" + metric
			if got := d.str(get(m, "MetricStat", "Stat")); got != want.stat {
				t.Errorf("%s: %s Stat %s, want %s", name, id, got, want.stat)
			}
			if got := d.str(get(m, "MetricStat", "Period")); got != strconv.Itoa(want.period) {
				t.Errorf("%s: %s Period %s, want %d", name, id, got, want.period)
			}
			dims := get(m, "MetricStat", "Metric", "Dimensions")
			if ns == "AWS/Lambda" {
				if got := render(dims); got != `[{"Name":"FunctionName","Value":{"Ref":"`+want.function+`"}}]` {
					t.Errorf("%s: %s dimensions %s, want FunctionName %s", name, id, got, want.function)
				}
				continue
			}
			if ns != "JwksIssuer" || !names[metric] {
				t.Errorf("%s: %s is %s/%s, not a metric the functions write", name, id, ns, metric)
			}
			secretDimension(t, name+" "+id, d, dims)
		}
		if !mapsEqual(inputs, want.inputs) {
			t.Errorf("%s: inputs %v, want %v", name, inputs, want.inputs)
		}
	}
	if got := get(tpl, "Parameters", "CurrentKeyAgeAlarmSeconds", "Default"); got != float64(2764800) && got != "2764800" {
		t.Errorf("CurrentKeyAgeAlarmSeconds Default %v, want 2764800 (32 days)", got)
	}
	d = deploy(t, tpl, map[string]string{"AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops", "CurrentKeyAgeAlarmSeconds": "694800"})
	if got := d.str(get(tpl, "Resources", "CurrentKeyAgeAlarm", "Properties", "Threshold")); got != "694800" {
		t.Errorf("CurrentKeyAgeAlarm Threshold %s, want CurrentKeyAgeAlarmSeconds", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDashboard: the body is JSON once deployed, and every metric it draws
// from JwksIssuer is one the functions write, by Secret.
func TestDashboard(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	names := emitted(t)
	d := deploy(t, tpl, nil)
	d.refs = map[string]string{"KeySecret": testSecretArn}
	body := d.str(get(tpl, "Resources", "Dashboard", "Properties", "DashboardBody"))
	var dash struct {
		Widgets []struct {
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v\n%s", err, body)
	}
	if u, _ := d.output("DashboardUrl"); u != "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:name=ref-Dashboard" {
		t.Errorf("output DashboardUrl = %q", u)
	}
	drawn := map[string]bool{}
	for _, w := range dash.Widgets {
		ns := ""
		for _, m := range w.Properties.Metrics {
			if len(m) < 2 {
				t.Errorf("%s: metric %v", w.Properties.Title, m)
				continue
			}
			if m[0] != "." && m[0] != "..." {
				ns, _ = m[0].(string)
			}
			if ns != "JwksIssuer" {
				continue
			}
			name, _ := m[1].(string)
			drawn[name] = true
			if !names[name] {
				t.Errorf("%s: %s is not a metric the functions write", w.Properties.Title, name)
			}
			if len(m) != 4 || (m[2] != "Secret" && m[2] != ".") || (m[3] != "KeySecret-a1B2c3D4e5F6" && m[3] != ".") {
				t.Errorf("%s: %s dimensions %v, want Secret = the secret's name", w.Properties.Title, name, m[2:])
			}
		}
	}
	for _, want := range []string{"RotationStepSucceeded", "RotationStepFailed", "RotationRefused", "StepRefused", "CurrentKeyAgeSeconds",
		"NextPublishedSeconds", "CleanupSucceeded", "PublishedKeys", "JwksBytes", "TokensIssued", "RequestRejected", "IssuerError", "KeyRefreshFailed"} {
		if !drawn[want] {
			t.Errorf("the dashboard does not draw %s", want)
		}
	}
}

// TestAlarmDocs: README's "Alarms" lists every alarm, and the alarm
// parameters take what they say.
func TestAlarmDocs(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n### Alarms\n")
	section, _, _ = strings.Cut(section, "\n### ")
	for _, name := range alarmNames(tpl) {
		if !strings.Contains(section, "| `"+name+"` |") {
			t.Errorf("README's Alarms does not list %s", name)
		}
	}
	for name, cases := range map[string]map[string]bool{
		"AlarmEmail":    {"": true, "ops@example.com": true, "ops": false, "a@b@c": false, "ops @example.com": false},
		"AlarmTopicArn": {"": true, "arn:aws:sns:eu-west-1:123456789012:ops": true, "arn:aws-cn:sns:cn-north-1:123456789012:ops-1": true, "ops": false, "arn:aws:sqs:eu-west-1:123456789012:ops": false},
	} {
		re := regexp.MustCompile(d2s(get(tpl, "Parameters", name, "AllowedPattern")))
		for v, ok := range cases {
			if re.MatchString(v) != ok {
				t.Errorf("%s AllowedPattern matches %q: %v, want %v", name, v, !ok, ok)
			}
		}
	}
}

func d2s(v any) string { s, _ := v.(string); return s }
