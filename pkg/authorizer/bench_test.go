package authorizer

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// BenchmarkInvoke is the handler's warm path with the key set cached: an
// event in, the answer out. cmd/bench runs the TOKEN case against the
// verify floor.
func BenchmarkInvoke(b *testing.B) {
	f := newFixture(b)
	h := New(f.v, Settings{ContextClaims: []string{"sub"}}, quiet())
	tok := "Bearer " + f.token(nil)
	rest, _ := json.Marshal(events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: tok,
		MethodArn: "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/prod/GET/hello"})
	httpAPI, _ := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{Version: "2.0", Type: "REQUEST",
		RouteArn: "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/hello", Headers: map[string]string{"authorization": tok}})
	for name, ev := range map[string][]byte{"TOKEN": rest, "HTTP 2.0": httpAPI} {
		b.Run(name, func(b *testing.B) {
			if _, err := h.Invoke(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Invoke(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
