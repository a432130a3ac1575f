package rotation

import (
	"fmt"
	"slices"
	"strings"

	"jwks-issuer/pkg/store"
)

// StepRefused says that a rotation step was not run because its event does
// not belong to a rotation Secrets Manager is running: anyone allowed to
// invoke the rotator could otherwise send finishSecret with an old version's
// id to bring back a revoked key, or with NEXT's to skip the activation
// grace. A refused step changes nothing.
type StepRefused struct {
	Step, Token, Reason string
}

func (e *StepRefused) Error() string {
	return fmt.Sprintf("%s refused: ClientRequestToken %s %s", e.Step, e.Token, e.Reason)
}

// authorize checks a step's token against a fresh description of the
// secret, as AWS's own rotation functions do: rotation must be enabled and
// the token must be a version of this secret carrying AWSPENDING. A version
// that is already AWSCURRENT and no longer pending is a rotation that has
// finished: done is true and the step has nothing left to do (Secrets
// Manager may deliver a step again). Any other token is refused.
func authorize(meta store.SecretMeta, step, tok string) (done bool, err error) {
	if !meta.RotationEnabled {
		return false, &StepRefused{step, tok, "is not part of a rotation: rotation is not enabled on the secret " +
			"(start one with aws secretsmanager rotate-secret)"}
	}
	if meta.Stages[store.StagePending] == tok {
		return false, nil
	}
	if meta.Stages[store.StageCurrent] == tok {
		return true, nil
	}
	var labels []string
	for stage, version := range meta.Stages {
		if version == tok {
			labels = append(labels, stage)
		}
	}
	if len(labels) > 0 {
		slices.Sort(labels)
		return false, &StepRefused{step, tok, fmt.Sprintf("is the version labelled %s, not the pending version "+
			"of a rotation in progress (AWSPENDING is on %q)", strings.Join(labels, ", "), meta.Stages[store.StagePending])}
	}
	return false, &StepRefused{step, tok, fmt.Sprintf("is not a labelled version of this secret "+
		"(AWSPENDING is on %q); steps run only for the rotation Secrets Manager started", meta.Stages[store.StagePending])}
}
