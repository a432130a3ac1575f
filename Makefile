# jwks-issuer. `make demo` runs it locally against moto_server; `make test`
# is what CI runs.
GO          ?= go
GOARCH      ?= arm64
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w" -buildvcs=false
FUNCTIONS   := signer rotator authorizer
SEEDS       ?= 20
YEARS       ?= 3

.PHONY: build cli test lint demo bench simulate clean build-SignerFunction build-RotatorFunction build-AuthorizerFunction FORCE

## build: bin/<function>/bootstrap for Linux (GOARCH=arm64 by default, as deployed)
build: $(FUNCTIONS:%=bin/%/bootstrap)

bin/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build $(BUILD_FLAGS) -o $@ ./functions/$*

## cli: bin/jwks-issuer, the operator command (status, timeline, rotate, emergency, verify, sign), for this machine
cli:
	$(GO) build -trimpath -o bin/jwks-issuer ./cmd/jwks-issuer

## test: vet, unit, contract (fakes and moto_server), end-to-end through the real binaries, cfn-lint
test: lint
	$(GO) test -count=1 -timeout 9m ./...

## lint: formatting, a tidy go.mod, go vet and cfn-lint on template.yaml
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on: $$out"; exit 1; fi
	@out=$$($(GO) mod tidy -diff 2>&1); \
	  if [ -n "$$out" ]; then echo "$$out"; echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; fi
	$(GO) vet ./...
	cfn-lint template.yaml

## demo: moto_server, the real binaries, two rotations and tokens that verify
demo:
	$(GO) run ./cmd/demo

## bench: signing and verification benchmarks, cold start and binary size
bench:
	$(GO) run ./cmd/bench

## simulate: years of rotation with faults (SEEDS=20 YEARS=3)
simulate:
	$(GO) run ./cmd/simulate -seeds $(SEEDS) -years $(YEARS)

clean:
	rm -rf bin

# Called by `sam build` (BuildMethod: makefile) with ARTIFACTS_DIR set.
build-SignerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/signer

build-RotatorFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/rotator

build-AuthorizerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/authorizer

FORCE:
