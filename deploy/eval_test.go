package deploy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// deployment evaluates the template's intrinsic functions the way
// CloudFormation does for one set of parameter values, so that tests can
// check what a deployed stack's values are (the functions' environment, the
// roles' resources, the outputs) rather than how they are spelled. Resources
// evaluate to stand-ins: Ref JwksBucket is a bucket name, GetAtt
// Distribution.DomainName a CloudFront domain, other ARNs fakes.
type deployment struct {
	t      *testing.T
	tpl    obj
	params map[string]string
	conds  map[string]bool
	// refs overrides what Ref of a resource evaluates to (a test's stand-in).
	refs map[string]string
}

const (
	testBucket       = "stack-jwksbucket-0123456789ab"
	testDistribution = "d111111abcdef8.cloudfront.net"
)

// noValue is what Ref AWS::NoValue evaluates to; containers drop it.
type noValueT struct{}

var noValue = noValueT{}

// deploy is the template deployed with its Defaults, overridden by params.
func deploy(t *testing.T, tpl obj, params map[string]string) *deployment {
	t.Helper()
	d := &deployment{t: t, tpl: tpl, params: map[string]string{}, conds: map[string]bool{}}
	for name, p := range getObj(tpl, "Parameters") {
		switch v := get(p, "Default").(type) {
		case string:
			d.params[name] = v
		case float64:
			d.params[name] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
		default:
			t.Fatalf("parameter %s: Default %#v", name, v)
		}
	}
	for name, v := range params {
		if _, ok := getObj(tpl, "Parameters")[name]; !ok {
			t.Fatalf("deploy: no parameter %s", name)
		}
		d.params[name] = v
	}
	return d
}

// cond is the truth of the named condition.
func (d *deployment) cond(name string) bool {
	d.t.Helper()
	if v, ok := d.conds[name]; ok {
		return v
	}
	c, ok := getObj(d.tpl, "Conditions")[name]
	if !ok {
		d.t.Fatalf("no condition %s", name)
	}
	v := d.truth(c)
	d.conds[name] = v
	return v
}

// truth evaluates a condition expression (conditions and rules).
func (d *deployment) truth(v any) bool {
	d.t.Helper()
	m, ok := v.(obj)
	if !ok || len(m) != 1 {
		d.t.Fatalf("not a condition expression: %s", render(v))
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			return d.cond(name)
		case "Fn::Equals":
			if len(args) != 2 {
				d.t.Fatalf("malformed Fn::Equals: %s", render(v))
			}
			return d.str(args[0]) == d.str(args[1])
		case "Fn::Not":
			if len(args) != 1 {
				d.t.Fatalf("malformed Fn::Not: %s", render(v))
			}
			return !d.truth(args[0])
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			for _, a := range args {
				if d.truth(a) != and {
					return !and
				}
			}
			return and
		}
		d.t.Fatalf("unknown condition function %s", fn)
	}
	return false
}

// failedRules lists the AssertDescription of every rule assertion the
// parameters break, as CloudFormation checks them before deploying.
func (d *deployment) failedRules() []string {
	d.t.Helper()
	var out []string
	for name, r := range getObj(d.tpl, "Rules") {
		if rc := get(r, "RuleCondition"); rc != nil && !d.truth(rc) {
			continue
		}
		as, _ := get(r, "Assertions").([]any)
		for _, a := range as {
			if !d.truth(get(a, "Assert")) {
				out = append(out, fmt.Sprintf("%s: %v", name, get(a, "AssertDescription")))
			}
		}
	}
	return out
}

// eval evaluates a template fragment: strings, lists and objects, with
// every intrinsic function resolved and AWS::NoValue dropped.
func (d *deployment) eval(v any) any {
	d.t.Helper()
	switch x := v.(type) {
	case []any:
		out := []any{}
		for _, e := range x {
			if r := d.eval(e); r != noValue {
				out = append(out, r)
			}
		}
		return out
	case obj:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return d.call(fn, arg)
				}
			}
		}
		out := obj{}
		for k, e := range x {
			if r := d.eval(e); r != noValue {
				out[k] = r
			}
		}
		return out
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return v
}

// str evaluates a fragment that must be a string.
func (d *deployment) str(v any) string {
	d.t.Helper()
	s, ok := d.eval(v).(string)
	if !ok {
		d.t.Fatalf("%s does not evaluate to a string", render(v))
	}
	return s
}

func (d *deployment) list(v any) []string {
	d.t.Helper()
	l, ok := d.eval(v).([]any)
	if !ok {
		d.t.Fatalf("%s does not evaluate to a list", render(v))
	}
	var out []string
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			d.t.Fatalf("%s: element %s is not a string", render(v), render(e))
		}
		out = append(out, s)
	}
	return out
}

func (d *deployment) call(fn string, arg any) any {
	d.t.Helper()
	args, _ := arg.([]any)
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return d.ref(name)
	case "Fn::GetAtt":
		if len(args) != 2 {
			d.t.Fatalf("malformed Fn::GetAtt: %s", render(arg))
		}
		return d.getAtt(args[0].(string), args[1].(string))
	case "Fn::If":
		if len(args) != 3 {
			d.t.Fatalf("malformed Fn::If: %s", render(arg))
		}
		if d.cond(args[0].(string)) {
			return d.eval(args[1])
		}
		return d.eval(args[2])
	case "Fn::Sub":
		text, vars := arg, obj{}
		if len(args) == 2 {
			text, vars = args[0], getObj(args[1])
		}
		s, ok := text.(string)
		if !ok {
			d.t.Fatalf("malformed Fn::Sub: %s", render(arg))
		}
		return d.sub(s, vars)
	case "Fn::Join":
		if len(args) != 2 {
			d.t.Fatalf("malformed Fn::Join: %s", render(arg))
		}
		return strings.Join(d.list(args[1]), args[0].(string))
	case "Fn::Split":
		if len(args) != 2 {
			d.t.Fatalf("malformed Fn::Split: %s", render(arg))
		}
		var out []any
		for _, s := range strings.Split(d.str(args[1]), args[0].(string)) {
			out = append(out, s)
		}
		return out
	case "Fn::Select":
		if len(args) != 2 {
			d.t.Fatalf("malformed Fn::Select: %s", render(arg))
		}
		i, err := strconv.Atoi(d.str(args[0]))
		list, _ := d.eval(args[1]).([]any)
		if err != nil || i < 0 || i >= len(list) {
			d.t.Fatalf("Fn::Select index %s out of range of %s (CloudFormation fails the deployment)", render(args[0]), render(list))
		}
		return list[i]
	case "Fn::FindInMap":
		if len(args) != 3 {
			d.t.Fatalf("malformed Fn::FindInMap: %s", render(arg))
		}
		v := get(d.tpl, "Mappings", d.str(args[0]), d.str(args[1]), d.str(args[2]))
		if v == nil {
			d.t.Fatalf("Fn::FindInMap %s finds nothing", render(arg))
		}
		return d.eval(v)
	}
	d.t.Fatalf("unknown intrinsic function %s", fn)
	return nil
}

var pseudo = map[string]string{
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::Region":    "eu-west-1",
	"AWS::StackName": "jwks-issuer",
	"AWS::StackId":   "arn:aws:cloudformation:eu-west-1:123456789012:stack/jwks-issuer/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
	"AWS::URLSuffix": "amazonaws.com",
}

func (d *deployment) ref(name string) any {
	d.t.Helper()
	if name == "AWS::NoValue" {
		return noValue
	}
	if v, ok := pseudo[name]; ok {
		return v
	}
	if v, ok := d.params[name]; ok {
		return v
	}
	if v, ok := d.refs[name]; ok {
		return v
	}
	if getObj(d.tpl, "Resources", name) == nil {
		d.t.Fatalf("Ref %s: no such parameter or resource", name)
	}
	if name == "JwksBucket" {
		return testBucket
	}
	return "ref-" + name
}

func (d *deployment) getAtt(resource, attr string) string {
	d.t.Helper()
	if getObj(d.tpl, "Resources", resource) == nil {
		d.t.Fatalf("GetAtt %s.%s: no such resource", resource, attr)
	}
	switch resource + "." + attr {
	case "Distribution.DomainName":
		return testDistribution
	case "JwksBucket.Arn":
		return "arn:aws:s3:::" + testBucket
	}
	return fmt.Sprintf("arn:aws:test:eu-west-1:123456789012:%s/%s", resource, attr)
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (d *deployment) sub(s string, vars obj) string {
	d.t.Helper()
	return subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := vars[name]; ok {
			return d.str(v)
		}
		if res, attr, ok := strings.Cut(name, "."); ok && getObj(d.tpl, "Resources", res) != nil {
			return d.getAtt(res, attr)
		}
		s, ok := d.ref(name).(string)
		if !ok {
			d.t.Fatalf("Fn::Sub ${%s} is not a string", name)
		}
		return s
	})
}

// env is a function's environment as deployed: Globals merged with the
// function's own variables, evaluated.
func (d *deployment) env(function string) map[string]string {
	d.t.Helper()
	out := map[string]string{}
	for k, v := range env(d.t, d.tpl, function) {
		if r := d.eval(v); r != noValue {
			s, ok := r.(string)
			if !ok {
				d.t.Fatalf("%s: %s does not evaluate to a string: %s", function, k, render(r))
			}
			out[k] = s
		}
	}
	return out
}

// output is the value of a stack output; ok is false when the output's
// condition leaves it out.
func (d *deployment) output(name string) (string, bool) {
	d.t.Helper()
	o := getObj(d.tpl, "Outputs", name)
	if o == nil {
		d.t.Fatalf("output %s is missing", name)
	}
	if c, ok := o["Condition"].(string); ok && !d.cond(c) {
		return "", false
	}
	return d.str(o["Value"]), true
}

// exists tells whether the resource is created.
func (d *deployment) exists(resource string) bool {
	d.t.Helper()
	r := getObj(d.tpl, "Resources", resource)
	if r == nil {
		d.t.Fatalf("resource %s is missing", resource)
	}
	c, ok := r["Condition"].(string)
	return !ok || d.cond(c)
}
