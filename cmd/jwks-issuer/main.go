// Command jwks-issuer operates a deployed stack: status, timeline, rotate,
// emergency, verify and sign. Run it without arguments for its usage; the
// README's "Operating" section and docs/runbook.md show it at work.
package main

import (
	"context"
	"os"
	"os/signal"

	"jwks-issuer/internal/operator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	status := operator.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}
