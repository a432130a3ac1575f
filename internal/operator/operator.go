// Package operator is the jwks-issuer command: it reads a deployed stack
// (the key secret, the published key set, the rotation function's
// configuration) and reports on it, rotates, runs the emergency rollover,
// verifies tokens and asks the signer for one. Every decision it shows comes
// from package lifecycle, as the rotator's own do.
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Exit statuses.
const (
	// ExitOK: healthy, done, verified.
	ExitOK = 0
	// ExitProblem: a problem was found (drift, a refused or failed
	// rotation, a rejected token).
	ExitProblem = 1
	// ExitUnreadable: the command could not read what it needs (no such
	// secret, no credentials, a usage error).
	ExitUnreadable = 2
)

// Env is what a run gets from outside. The zero Env is the real world.
type Env struct {
	// AWS, when set, is the SDK configuration to use instead of the
	// default one (profiles, AWS_REGION, AWS_ENDPOINT_URL).
	AWS *aws.Config
	// HTTP fetches the public key set and the discovery document.
	HTTP *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Stdin is read for a token or a request given as "-", and for the
	// emergency confirmation.
	Stdin io.Reader
	// Poll is how often rotate and emergency look at the secret again
	// (one second when zero).
	Poll time.Duration
}

// Run runs the command with args (without the program name) in the real
// world and returns its exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Env{Stdin: os.Stdin}.Run(ctx, args, stdout, stderr)
}

// command is one subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, r *runner, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"status", "", "the keys, their times and the health checks (--json for scripts)", runStatus},
		{"timeline", "", "the keys on a time axis", runTimeline},
		{"rotate", "", "start a rotation and follow it to its outcome", runRotate},
		{"emergency", "", "emergency rollover: revoke the current and next keys now", runEmergency},
		{"verify", "TOKEN|-", "verify a token against the issuer's key set, and say why it is rejected", runVerify},
		{"sign", "REQUEST|-", "ask the signer for a token", runSign},
	}
}

// Run runs the command with args and returns its exit status.
func (e Env) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if e.Poll <= 0 {
		e.Poll = time.Second
	}
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stderr)
		if len(args) == 0 {
			return ExitUnreadable
		}
		return ExitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			r := &runner{env: e, out: stdout, err: stderr, cmd: c}
			return c.run(ctx, r, args[1:])
		}
	}
	fmt.Fprintf(stderr, "jwks-issuer: unknown command %q\n\n", args[0])
	usage(stderr)
	return ExitUnreadable
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: jwks-issuer COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Name the stack with --stack NAME (its CloudFormation outputs say where everything is),")
	fmt.Fprintln(w, "or give --secret, --bucket, --jwks-key, --issuer, --jwks-url explicitly.")
	fmt.Fprintln(w, "AWS access follows the SDK's usual configuration: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL.")
	fmt.Fprintln(w, "Run jwks-issuer COMMAND -h for the flags of a command.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "exit status: 0 healthy or done, 1 a problem was found, 2 could not read what it needs")
}

// runner is one run of one command.
type runner struct {
	env Env
	out io.Writer
	err io.Writer
	cmd command
	t   targetFlags

	awsCfg  *aws.Config
	awsErr  error
	started time.Time
}

func (r *runner) now() time.Time { return r.env.Now() }

// flags returns the command's flag set with the target flags on it.
func (r *runner) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("jwks-issuer "+r.cmd.name, flag.ContinueOnError)
	fs.SetOutput(r.err)
	r.t.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(r.err, "usage: jwks-issuer %s [flags] %s\n\n%s.\n\nflags:\n", r.cmd.name, r.cmd.args, r.cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and positional arguments in any order. ok is false
// when the run should end with status (a usage error, or -h).
func (r *runner) parse(fs *flag.FlagSet, args []string) (positional []string, status int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ExitOK, false
			}
			return nil, ExitUnreadable, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, 0, true
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), 0, true
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// fail reports an error that kept the command from reading what it needs.
func (r *runner) fail(err error) int {
	fmt.Fprintf(r.err, "jwks-issuer %s: %v\n", r.cmd.name, err)
	if hint := hintFor(err); hint != "" {
		fmt.Fprintf(r.err, "  next: %s\n", hint)
	}
	return ExitUnreadable
}

// usageError reports a wrong invocation.
func (r *runner) usageError(format string, args ...any) int {
	fmt.Fprintf(r.err, "jwks-issuer %s: %s\n", r.cmd.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(r.err, "  run jwks-issuer %s -h for its flags\n", r.cmd.name)
	return ExitUnreadable
}

func (r *runner) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }
