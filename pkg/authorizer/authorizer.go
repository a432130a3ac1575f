// Package authorizer is an API Gateway Lambda authorizer for the tokens a
// verify.Verifier accepts. One handler answers all three event shapes,
// told apart by their JSON:
//
//   - REST API TOKEN authorizers ("type":"TOKEN", "methodArn"): the token
//     is authorizationToken;
//   - REST API REQUEST authorizers, and HTTP API authorizers with payload
//     format 1.0 ("type":"REQUEST", "methodArn"): the token is in the
//     Authorization header;
//   - HTTP API authorizers with payload format 2.0 and simple responses
//     ("version":"2.0", "routeArn"): the same header.
//
// The first two are answered with an IAM policy: Allow for a valid token,
// Deny (403) for a valid token that lacks a required scope, and the error
// "Unauthorized" (401) for a missing or invalid one. The third is answered
// with isAuthorized, false in both refusing cases (403). When the key set
// cannot be had at all the answer is an error of another message, which
// API Gateway turns into a 500, so that clients retry rather than drop
// their token.
package authorizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"jwks-issuer/pkg/verify"
)

// ErrUnauthorized is the error API Gateway turns into a 401: its message
// must be exactly "Unauthorized".
var ErrUnauthorized = errors.New("Unauthorized")

// ErrKeySetUnavailable is the answer when no token can be checked at all.
var ErrKeySetUnavailable = errors.New("the issuer's key set is unavailable")

// Verifier checks a token; *verify.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, token string) (*verify.Token, error)
}

// Handler is the Lambda handler (it implements lambda.Handler).
type Handler struct {
	v             Verifier
	scopes        []string
	contextClaims []string
	log           *slog.Logger
}

// New returns the handler for v with the settings' scopes and context
// claims.
func New(v Verifier, s Settings, log *slog.Logger) *Handler {
	return &Handler{v: v, scopes: s.RequiredScopes, contextClaims: s.ContextClaims, log: log}
}

// event is what the handler reads of the three shapes.
type event struct {
	Version            string            `json:"version"`
	Type               string            `json:"type"`
	MethodArn          string            `json:"methodArn"`
	RouteArn           string            `json:"routeArn"`
	AuthorizationToken string            `json:"authorizationToken"`
	Headers            map[string]string `json:"headers"`
}

// Shape names an event shape in logs.
type Shape string

const (
	ShapeToken   Shape = "TOKEN"
	ShapeRequest Shape = "REQUEST"
	ShapeHTTPv2  Shape = "HTTP_V2"
)

func (e *event) shape() (Shape, error) {
	switch {
	case e.Version == "2.0" && e.RouteArn != "":
		return ShapeHTTPv2, nil
	case e.Type == "TOKEN" && e.MethodArn != "":
		return ShapeToken, nil
	case e.Type == "REQUEST" && e.MethodArn != "":
		return ShapeRequest, nil
	}
	return "", errors.New(`not an API Gateway authorizer event: want "type" TOKEN or REQUEST with "methodArn", or "version" 2.0 with "routeArn"`)
}

func (e *event) token(s Shape) string {
	if s == ShapeToken {
		return bearer(e.AuthorizationToken)
	}
	// HTTP APIs send header names in lower case, REST APIs as the client
	// wrote them; the exact spellings first, so that two spellings at once
	// give the same answer every time.
	for _, k := range []string{"Authorization", "authorization"} {
		if v, ok := e.Headers[k]; ok {
			return bearer(v)
		}
	}
	var found []string
	for k := range e.Headers {
		if strings.EqualFold(k, "Authorization") {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return ""
	}
	slices.Sort(found)
	return bearer(e.Headers[found[0]])
}

// bearer takes the token from "Bearer <token>", or a bare token; another
// scheme gives none.
func bearer(v string) string {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "Bearer") {
		return ""
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		return strings.TrimSpace(v[7:])
	}
	if strings.ContainsAny(v, " \t") {
		return ""
	}
	return v
}

// Invoke answers one authorizer event.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil {
		h.log.Error("authorizer event is not JSON of the expected shape", "error", err.Error())
		return nil, errors.New("authorizer event: " + err.Error())
	}
	shape, err := ev.shape()
	if err != nil {
		h.log.Error("authorizer event of an unknown shape", "error", err.Error())
		return nil, err
	}
	raw := ev.token(shape)
	if raw == "" {
		h.log.Info("refused", "shape", shape, "reason", "no_token")
		return h.refuse(shape)
	}
	tok, err := h.v.Verify(ctx, raw)
	if err != nil {
		var e *verify.Error
		if errors.As(err, &e) {
			if e.Reason == verify.ReasonKeySetUnavailable {
				h.log.Error("cannot check tokens", "shape", shape, "reason", e.Reason.String(), "error", err.Error())
				return nil, ErrKeySetUnavailable
			}
			h.log.Info("refused", "shape", shape, "reason", e.Reason.String(), "kid", e.Kid, "detail", e.Detail)
		} else {
			h.log.Info("refused", "shape", shape, "reason", "error", "error", err.Error())
		}
		return h.refuse(shape)
	}
	principal := tok.Subject
	if principal == "" {
		principal = "anonymous"
	}
	if missing := h.missingScopes(tok); len(missing) > 0 {
		h.log.Info("denied", "shape", shape, "reason", "missing_scopes", "missing", missing, "principal", principal, "kid", tok.Kid)
		return h.answer(shape, ev, principal, false, nil)
	}
	h.log.Debug("allowed", "shape", shape, "principal", principal, "kid", tok.Kid)
	return h.answer(shape, ev, principal, true, h.context(tok))
}

func (h *Handler) refuse(s Shape) ([]byte, error) {
	if s == ShapeHTTPv2 {
		return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false})
	}
	return nil, ErrUnauthorized
}

func (h *Handler) answer(s Shape, ev event, principal string, allow bool, ctx map[string]any) ([]byte, error) {
	if s == ShapeHTTPv2 {
		return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: allow, Context: ctx})
	}
	effect := "Deny"
	if allow {
		effect = "Allow"
	}
	return json.Marshal(events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{StageWildcard(ev.MethodArn)},
			}},
		},
		Context: ctx,
	})
}

// StageWildcard turns a method ARN into one for every method and resource
// of its API stage, arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/*. The
// answer does not depend on the route, and API Gateway caches it per token
// (per identity source) for every route: a policy naming only the first
// route called would deny the others until the cache entry expires.
func StageWildcard(methodArn string) string {
	// Five colons, then API/STAGE/...: cut after the second slash there.
	i := 0
	for range 5 {
		j := strings.IndexByte(methodArn[i:], ':')
		if j < 0 {
			return methodArn
		}
		i += j + 1
	}
	api := strings.IndexByte(methodArn[i:], '/')
	if api <= 0 {
		return methodArn
	}
	stage := i + api + 1
	end := strings.IndexByte(methodArn[stage:], '/')
	if end == 0 || stage == len(methodArn) {
		return methodArn
	}
	if end < 0 {
		end = len(methodArn) - stage
	}
	return methodArn[:stage+end] + "/*"
}

// missingScopes lists the required scopes the token lacks.
func (h *Handler) missingScopes(t *verify.Token) []string {
	if len(h.scopes) == 0 {
		return nil
	}
	have := map[string]bool{}
	if s, ok := t.StringClaim("scope"); ok {
		for _, f := range strings.Fields(s) {
			have[f] = true
		}
	}
	if list, ok := t.StringsClaim("scp"); ok {
		for _, f := range list {
			have[f] = true
		}
	} else if s, ok := t.StringClaim("scp"); ok {
		for _, f := range strings.Fields(s) {
			have[f] = true
		}
	}
	var missing []string
	for _, s := range h.scopes {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing
}

// context holds the configured claims the token carries. API Gateway takes
// strings, numbers and booleans only: objects and arrays are passed as
// their JSON text, null is left out.
func (h *Handler) context(t *verify.Token) map[string]any {
	if len(h.contextClaims) == 0 {
		return nil
	}
	out := make(map[string]any, len(h.contextClaims))
	for _, name := range h.contextClaims {
		raw, ok := t.Claim(name)
		if !ok {
			continue
		}
		switch raw[0] {
		case '"':
			s, _ := t.StringClaim(name)
			out[name] = s
		case 't', 'f':
			out[name] = raw[0] == 't'
		case 'n':
		case '{', '[':
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				out[name] = b.String()
			}
		default:
			out[name] = json.Number(raw)
		}
	}
	return out
}
