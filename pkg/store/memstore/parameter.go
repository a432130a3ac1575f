package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"jwks-issuer/pkg/store"
)

// Parameter is an in-memory SecureString parameter. The zero value is an
// absent parameter, ready to use.
type Parameter struct {
	hooked

	mu    sync.Mutex
	value []byte // nil: absent
}

var _ store.Parameter = (*Parameter)(nil)

// NewParameter returns an absent parameter.
func NewParameter() *Parameter { return &Parameter{} }

// Get returns a copy of the value, or store.ErrNotFound.
func (p *Parameter) Get(ctx context.Context) ([]byte, error) {
	if err := p.runHook(OpGetParameter); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.value == nil {
		return nil, fmt.Errorf("get parameter: %w", store.ErrNotFound)
	}
	return bytes.Clone(p.value), nil
}

// Put replaces the value.
func (p *Parameter) Put(ctx context.Context, value []byte) error {
	if len(value) > store.MaxParameterValue {
		return fmt.Errorf("put parameter: value is %d bytes, the limit is %d", len(value), store.MaxParameterValue)
	}
	if err := p.runHook(OpPutParameter); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value = append([]byte{}, value...)
	return nil
}

// Delete removes the parameter, as an operator's mistake would.
func (p *Parameter) Delete() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value = nil
}
