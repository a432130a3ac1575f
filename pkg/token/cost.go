package token

import (
	"sync"
	"time"

	"jwks-issuer/pkg/keys"
)

// The cost model of batch signing: the time one signature takes on one
// worker, by algorithm and by whether the key is local or remote, as an
// exponentially weighted moving average of the batches this environment
// has signed. A batch of n items on w workers is expected to take
// ceil(n/w) times that. Before the first batch of a kind, a conservative
// default stands in.
//
// Only batches are measured. On Lambda, 2 vCPUs share the CPU time the
// memory size buys (one vCPU's worth per 1,769 MB), so below 3,538 MB two
// workers sign no faster than one, and each worker's signature takes up to
// twice as long as a lone one: a single token's time would underestimate a
// batch's.
type costs struct {
	mu   sync.Mutex
	ewma map[costKind]time.Duration
}

type costKind struct {
	alg    keys.Algorithm
	remote bool
}

// costWeight is the weight of the newest batch in the average.
const costWeight = 0.3

// defaultCPU is a conservative time for one local signature on a whole
// vCPU: about three times what one takes on the machine docs/performance.md
// was measured on (ES256 28 µs, ES384 166 µs, RS256 744 µs). An algorithm
// not listed takes RS256's.
var defaultCPU = map[keys.Algorithm]time.Duration{
	keys.ES256: 90 * time.Microsecond,
	keys.ES384: 540 * time.Microsecond,
	keys.RS256: 2600 * time.Microsecond,
}

// defaultRemote is a conservative round trip of a remote signature: twice
// the 10-20 ms of a kms:Sign from Lambda in the key's Region.
const defaultRemote = 30 * time.Millisecond

// lambdaMBPerVCPU is the memory size at which Lambda gives a function one
// vCPU's worth of CPU time.
const lambdaMBPerVCPU = 1769

func kindOf(key *Key) costKind {
	_, remote := key.signer.(RemoteSigner)
	return costKind{key.Alg, remote}
}

// perToken is the expected time of one of key's signatures on one of
// workers, and whether it was measured. The default for a local key is
// defaultCPU, stretched when memoryMB (the function's memory size; 0:
// unknown, not on Lambda) buys less CPU time than workers can use.
func (c *costs) perToken(key *Key, workers, memoryMB int) (time.Duration, bool) {
	kind := kindOf(key)
	c.mu.Lock()
	d, ok := c.ewma[kind]
	c.mu.Unlock()
	if ok {
		return d, true
	}
	if kind.remote {
		return defaultRemote, false
	}
	cpu, known := defaultCPU[key.Alg]
	if !known {
		cpu = defaultCPU[keys.RS256]
	}
	if memoryMB > 0 {
		if vcpus := float64(memoryMB) / lambdaMBPerVCPU; vcpus < float64(workers) {
			cpu = time.Duration(float64(cpu) * float64(workers) / vcpus)
		}
	}
	return cpu, false
}

// record adds a batch of key's that signed tokens in elapsed on workers.
func (c *costs) record(key *Key, workers int, elapsed time.Duration, tokens int) {
	if tokens <= 0 || elapsed <= 0 {
		return
	}
	sample := elapsed * time.Duration(workers) / time.Duration(tokens)
	kind := kindOf(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ewma == nil {
		c.ewma = map[costKind]time.Duration{}
	}
	if old, ok := c.ewma[kind]; ok {
		sample = old + time.Duration(costWeight*float64(sample-old))
	}
	c.ewma[kind] = max(sample, 1)
}
