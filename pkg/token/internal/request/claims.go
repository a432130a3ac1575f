package request

// The top-level claims the parser locates: those a request's flags may
// override (exp, iat, jti: the first managed), then those the rules check.
const (
	expClaim = iota
	iatClaim
	jtiClaim
	issClaim
	audClaim
	tracked

	managed = issClaim
)

// trackedClaim is the index of a claim the parser locates, or -1.
func trackedClaim(name []byte) int {
	switch string(name) {
	case "exp":
		return expClaim
	case "iat":
		return iatClaim
	case "jti":
		return jtiClaim
	case "iss":
		return issClaim
	case "aud":
		return audClaim
	}
	return -1
}

// claimSpans locates exp, iat, jti, iss and aud among the members read.
type claimSpans struct {
	member [tracked][2]int // ",name:value"; end 0 when absent
	value  [tracked]int    // where the value starts
}

// has tells whether the claim k is among the members.
func (c *claimSpans) has(k int) bool { return c.member[k][1] > 0 }

// valueOf is the value of the claim k in members, as read.
func (c *claimSpans) valueOf(members []byte, k int) []byte {
	return members[c.value[k]:c.member[k][1]]
}

// readClaims reads the claims object at the scanner, at depth, into
// p.claims, one ",name:value" per member, compacted, and returns where exp,
// iat and jti are in it. A name given twice, here or in any object inside,
// is refused.
func (p *parser) readClaims(at where, depth int) (spans claimSpans, err error) {
	s := &p.s
	if depth > MaxDepth {
		return spans, s.tooDeep()
	}
	s.off++ // '{'
	p.claims = p.claims[:0]
	if s.peek() == '}' {
		s.off++
		return spans, nil
	}
	var names nameSet
	for {
		raw, esc, err := s.str()
		if err != nil {
			return spans, err
		}
		name := decodeName(raw, esc)
		if !names.add(name) {
			return spans, duplicateError(at, &duplicate{name: name})
		}
		if err := s.expect(':'); err != nil {
			return spans, err
		}
		if err := p.member(at, depth, raw, name, &spans); err != nil {
			return spans, err
		}
		if more, err := s.next('}'); err != nil || !more {
			return spans, err
		}
	}
}

// member reads the value of the claim name (raw as written) in the claims
// object at depth, and appends ",name:value" to p.claims, compacted.
func (p *parser) member(at where, depth int, raw, name []byte, spans *claimSpans) error {
	s := &p.s
	s.ws()
	s.spaced, s.unique = false, true
	v, err := s.value(depth)
	s.unique = false
	if d, ok := err.(*duplicate); ok {
		d.path = append(d.path, "."+shorten(name))
		return duplicateError(at, d)
	}
	if err != nil {
		return err
	}
	start := len(p.claims)
	p.claims = append(p.claims, ',')
	p.claims = append(p.claims, raw...)
	p.claims = append(p.claims, ':')
	if s.spaced {
		p.claims = appendCompact(p.claims, v)
	} else {
		p.claims = append(p.claims, v...)
	}
	if k := trackedClaim(name); k >= 0 {
		spans.member[k] = [2]int{start, len(p.claims)}
		spans.value[k] = start + len(`,`) + len(raw) + len(`:`)
	}
	return nil
}

// setClaims makes members (",name:value" each, which it overwrites) the
// request's claims object, without the members its flags override.
func (r *Request) setClaims(members []byte, at claimSpans) {
	drop := [managed]bool{expClaim: r.TTL > 0, iatClaim: r.SetIat, jtiClaim: r.SetJti}
	// The members to leave out, in order.
	var cuts [managed][2]int
	n := 0
	for k, m := range at.member[:managed] {
		if m[1] > 0 && drop[k] {
			j := n
			for ; j > 0 && cuts[j-1][0] > m[0]; j-- {
				cuts[j] = cuts[j-1]
			}
			cuts[j] = m
			n++
		}
	}
	// Close the gaps in place, left to right.
	expValue := at.value[expClaim]
	kept, from, expShift := 0, 0, 0
	for _, c := range cuts[:n] {
		kept += copy(members[kept:], members[from:c[0]])
		if c[0] < expValue {
			expShift += c[1] - c[0]
		}
		from = c[1]
	}
	kept += copy(members[kept:], members[from:])
	members = members[:kept]
	// Every member starts with a comma: the first one's becomes the brace.
	if len(members) == 0 {
		members = append(members, '{')
	}
	members[0] = '{'
	r.claims = append(members, '}')
	if exp := at.member[expClaim]; exp[1] > 0 && !drop[expClaim] {
		start := expValue - expShift
		r.exp = r.claims[start : start+exp[1]-expValue]
	}
}

// duplicateError explains d, found in the claims of the request at.
func duplicateError(at where, d *duplicate) error {
	return badRequest("%s names the member %q more than once: claims that can be read two ways are refused",
		at.field("claims")+d.where(), shorten(d.name))
}
