package operator

import (
	"context"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
)

// snapshot is the secret as read at one moment, as the rotator reads it
// (pkg/rotation/snapshot.go): labels, tags and the records of AWSCURRENT,
// AWSPENDING (when it is another version) and NEXT.
type snapshot struct {
	meta  store.SecretMeta
	state lifecycle.State
	// pendingEmpty: AWSPENDING is on a version other than AWSCURRENT that
	// holds no key record yet (a rotation Secrets Manager has started and
	// whose createSecret has not written it), or, limited, whose record
	// could not be read.
	pendingEmpty bool
	// limited: the values could not be read; the state is the tags'.
	limited bool
}

func readSnapshot(ctx context.Context, c *clients, secretID string) (snapshot, error) {
	meta, state, err := rotation.ReadState(ctx, awsstore.NewSecrets(c.sm, secretID))
	if err != nil {
		return snapshot{}, err
	}
	pendingVersion := meta.Stages[store.StagePending]
	return snapshot{
		meta:         meta,
		state:        state,
		pendingEmpty: pendingVersion != "" && pendingVersion != meta.Stages[store.StageCurrent] && state.Pending == nil,
	}, nil
}

// readState is readSnapshot, or, when this identity may not read the
// secret's values (its resource policy lets only the two functions and the
// break-glass role read them), the state its labels and tags tell: the kids
// of CURRENT (tag current:<kid>) and NEXT (the one published tag of a key
// other than CURRENT), without their records. limited is true then.
func readState(ctx context.Context, c *clients, secretID string) (snap snapshot, limited bool, err error) {
	snap, err = readSnapshot(ctx, c, secretID)
	if err == nil || !deniedValues(err) {
		return snap, false, err
	}
	meta, derr := awsstore.NewSecrets(c.sm, secretID).Describe(ctx)
	if derr != nil {
		return snapshot{}, false, err
	}
	stub := func(kid string) *keys.Record {
		if kid == "" {
			return nil
		}
		return &keys.Record{Kid: kid, PublicKeyJwk: keys.JWK{Kid: kid}}
	}
	current, next := latestTag(meta.Tags, lifecycle.TagCurrent, ""), ""
	published := 0
	for k := range meta.Tags {
		if kid, ok := strings.CutPrefix(k, lifecycle.TagPublished); ok && kid != current {
			next, published = kid, published+1
		}
	}
	if published != 1 {
		next = "" // a rotation in progress: pending and NEXT cannot be told apart
	}
	pending := meta.Stages[store.StagePending]
	return snapshot{meta: meta, state: lifecycle.NewState(stub(current), nil, stub(next), meta.Tags),
		pendingEmpty: pending != "" && pending != meta.Stages[store.StageCurrent], limited: true}, true, nil
}

// latestTag is the kid of the latest time tag with prefix (other than
// except).
func latestTag(tags map[string]string, prefix, except string) string {
	var kid string
	var at time.Time
	for k, v := range tags {
		id, ok := strings.CutPrefix(k, prefix)
		t, err := time.Parse(time.RFC3339Nano, v)
		if ok && err == nil && id != except && t.After(at) {
			kid, at = id, t
		}
	}
	return kid
}

// deniedValues tells whether err is a refusal to read a secret's value.
func deniedValues(err error) bool {
	return strings.Contains(apiCode(err), "AccessDenied") && strings.Contains(operationOf(err), "GetSecretValue")
}

// limitedNote says what a run without the secret's values can tell.
const limitedNote = "this identity may not read the secret's values (its resource policy lets only the two functions " +
	"and the break-glass role read them): following the labels and tags only; run as the break-glass role " +
	"for every key's record (docs/runbook.md, Acting as the break-glass role)"
