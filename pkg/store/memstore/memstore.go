// Package memstore holds in-memory twins of the AWS stores. They behave as
// AWS documents (not as moto does where moto is wrong), are safe for
// concurrent use, and take a fault hook so that a simulation can fail any
// operation, or change the state just before it runs.
package memstore

import "sync"

// Operation names passed to a Hook.
const (
	OpDescribe   = "Describe"
	OpGetVersion = "GetVersion"
	OpGetStage   = "GetStage"
	OpPutVersion = "PutVersion"
	OpMoveStage  = "MoveStage"
	OpTag        = "Tag"
	OpUntag      = "Untag"
	OpGet        = "Get"
	OpPut        = "Put"

	OpGetParameter = "GetParameter"
	OpPutParameter = "PutParameter"
)

// Hook runs before each operation with the operation's name. A non-nil
// error is returned instead of performing the operation. The hook runs
// without the store's lock held, so it may call the store itself (to make
// a concurrent writer win a race, for example).
type Hook func(op string) error

// hooked is the hook slot both fakes share.
type hooked struct {
	mu   sync.Mutex
	hook Hook
}

// SetHook installs h (nil removes it). It may be called at any time.
func (h *hooked) SetHook(hook Hook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = hook
}

func (h *hooked) runHook(op string) error {
	h.mu.Lock()
	hook := h.hook
	h.mu.Unlock()
	if hook == nil {
		return nil
	}
	return hook(op)
}
