package request

// The claims a request's flags may override, in claimSpans' order.
const (
	expClaim = iota
	iatClaim
	jtiClaim
	managed
)

// managedClaim is the index of a claim the request may override, or -1.
func managedClaim(name []byte) int {
	switch string(name) {
	case "exp":
		return expClaim
	case "iat":
		return iatClaim
	case "jti":
		return jtiClaim
	}
	return -1
}

// claimSpans locates exp, iat and jti among the members read.
type claimSpans struct {
	member   [managed][2]int // ",name:value"; end 0 when absent
	expValue int             // where exp's value starts
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
		d.path = append(d.path, "."+string(name))
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
	if k := managedClaim(name); k >= 0 {
		spans.member[k] = [2]int{start, len(p.claims)}
		if k == expClaim {
			spans.expValue = start + len(`,`) + len(raw) + len(`:`)
		}
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
	for k, m := range at.member {
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
	kept, from, expShift := 0, 0, 0
	for _, c := range cuts[:n] {
		kept += copy(members[kept:], members[from:c[0]])
		if c[0] < at.expValue {
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
		start := at.expValue - expShift
		r.exp = r.claims[start : start+exp[1]-at.expValue]
	}
}

// duplicateError explains d, found in the claims of the request at.
func duplicateError(at where, d *duplicate) error {
	p := at.field("claims")
	for i := len(d.path) - 1; i >= 0; i-- {
		p += d.path[i]
	}
	n := string(d.name)
	if len(n) > 64 {
		n = n[:64] + "..."
	}
	return badRequest("%s names the member %q more than once: claims that can be read two ways are refused", p, n)
}
