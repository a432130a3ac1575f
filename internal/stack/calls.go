package stack

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Call names one AWS API operation.
type Call struct{ Service, Operation string }

// Calls counts the requests that clients built from a config send. It sits
// in the Deserialize step, below the retry middleware, so a retried call
// counts once per attempt.
type Calls struct {
	mu sync.Mutex
	n  map[Call]int
}

// CountCalls installs a counter on cfg; clients built from it afterwards
// are counted.
func CountCalls(cfg *aws.Config) *Calls {
	c := &Calls{n: map[Call]int{}}
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("jwks-issuer-call-counter",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.n[Call{awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)}]++
				c.mu.Unlock()
				return next.HandleDeserialize(ctx, in)
			}), middleware.After)
	})
	return c
}

// Take returns the counts since the last Take and starts again from zero.
func (c *Calls) Take() map[Call]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[Call]int{}
	return n
}
