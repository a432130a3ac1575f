package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// builds caches BuildLambdaBinary results for the life of the process:
// several tests typically exercise the same function, and linking it
// again for each would dominate their run time on a small CI machine.
var builds struct {
	mu    sync.Mutex
	byPkg map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// RemoveBuilds deletes the binaries BuildLambdaBinary made in this process;
// call it when the process is done with them (TestMain, a command's exit).
func RemoveBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	for key, b := range builds.byPkg {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path))
		}
		delete(builds.byPkg, key)
	}
}

// BuildLambda builds the Lambda function in package pkg (see
// BuildLambdaBinary) once per test process and returns the path of its
// bootstrap binary, failing the test if the build fails.
func BuildLambda(t testing.TB, pkg string) string {
	t.Helper()
	path, err := BuildLambdaBinary(pkg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return path
}

// BuildLambdaBinary builds the Lambda function in package pkg into a
// binary named bootstrap, the way it is deployed (-tags lambda.norpc,
// static, stripped), but for the host platform so that it can run here.
//
// pkg is either an import path within the module, e.g.
// "jwks-issuer/functions/signer", or a directory: absolute, or relative
// ("./x", "../x") to the working directory. The build runs from the
// module root regardless. Results, failures included, are cached for the
// life of the process; the binaries live in a temporary directory that is
// removed by RemoveBuilds.
func BuildLambdaBinary(pkg string) (string, error) {
	key, dir, err := resolvePackage(pkg)
	if err != nil {
		return "", err
	}

	builds.mu.Lock()
	if builds.byPkg == nil {
		builds.byPkg = make(map[string]*build)
	}
	b, ok := builds.byPkg[key]
	if !ok {
		b = &build{}
		builds.byPkg[key] = b
	}
	builds.mu.Unlock()

	// Build outside the map lock so that different packages build in
	// parallel, while concurrent requests for the same one share a build.
	b.once.Do(func() { b.path, b.err = goBuildLambda(key, dir) })
	return b.path, b.err
}

// resolvePackage turns pkg into the cache key and go build argument, plus
// the directory from which to search for the module root. Directories
// inside the module are mapped to their import path, so that "./x" and
// "jwks-issuer/.../x" share one build.
func resolvePackage(pkg string) (target, searchFrom string, err error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", "", fmt.Errorf("testenv: %w", err)
	}
	isDir := filepath.IsAbs(pkg) || pkg == "." || pkg == ".." ||
		strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../")
	if !isDir {
		return pkg, wd, nil
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", "", fmt.Errorf("testenv: %w", err)
	}
	if root, err := findModuleRoot(abs); err == nil {
		if modPath := readModulePath(filepath.Join(root, "go.mod")); modPath != "" {
			if rel, err := filepath.Rel(root, abs); err == nil && filepath.IsLocal(rel) {
				return path.Join(modPath, filepath.ToSlash(rel)), abs, nil
			}
		}
	}
	// Not (recognisably) in a module: let go build report what is wrong.
	return abs, abs, nil
}

// readModulePath returns the module path declared in a go.mod file, or ""
// if it cannot tell. A full parser (golang.org/x/mod) would be overkill for
// the one directive we need.
func readModulePath(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "//")
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], "\"`")
		}
	}
	return ""
}

func goBuildLambda(target, searchFrom string) (string, error) {
	root, err := findModuleRoot(searchFrom)
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testenv: building lambda %s: %w", target, err)
	}
	outDir, err := os.MkdirTemp("", "testenv-lambda-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	out := filepath.Join(outDir, "bootstrap")

	cmd := exec.Command(goTool, "build",
		"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w",
		"-o", out, target)
	cmd.Dir = root
	// Pin the host platform in case the environment is set up to
	// cross-compile for the real Lambda architecture: this binary runs here.
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(outDir)
		return "", fmt.Errorf("testenv: go build %s failed: %v\n%s", target, err, output)
	}
	return out, nil
}

// findModuleRoot walks up from dir to the nearest directory with a go.mod.
func findModuleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("testenv: finding module root: %w", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("testenv: no go.mod found in %s or any parent", dir)
		}
		d = parent
	}
}
