// Package testenv provides the out-of-process fixtures that tests across
// the repository share: a moto_server instance standing in for AWS, a fake
// Lambda Runtime API, a harness that runs a real Lambda "bootstrap" binary
// against that fake, and a cached builder for such binaries.
//
// Everything here uses only the standard library so that any test package
// can import it without pulling the AWS SDK into its dependency graph;
// callers that need an SDK config build one from [Moto.Env] or
// [Moto.Endpoint].
//
// Each fixture comes in two flavours: a testing.TB variant (StartMoto,
// NewRuntime, StartFunction, BuildLambda) that fails the test on error and
// registers its own cleanup, and a plain variant returning an error
// (StartMotoProcess, NewRuntimeServer, StartFunctionProcess,
// BuildLambdaBinary) for TestMain and standalone programs, which must call
// Stop/Close themselves.
package testenv
