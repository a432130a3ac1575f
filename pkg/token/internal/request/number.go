package request

import "math"

// number is the value of a JSON number, read exactly from its decimal text:
// float64 would round 3600.0000000000001 to 3600, 1e-400 to 0, and make
// 1e400 an error, and a limit compared in float64 lets a little more than
// the limit through.
type number struct {
	neg bool
	// integer is the integer part of the absolute value, when it fits an
	// int64; huge when it does not.
	integer int64
	huge    bool
	// fraction is true when a nonzero fraction follows the integer part.
	fraction bool
}

// maxExponent caps the exponent read: past it, the position of the decimal
// point no longer matters, as no payload has that many digits.
const maxExponent = 1 << 40

// parseNumber reads text, which the scanner validated as a JSON number.
func parseNumber(text []byte) number {
	var n number
	if len(text) > 0 && text[0] == '-' {
		n.neg, text = true, text[1:]
	}
	intEnd, _ := digits(text, 0)
	intPart, rest := text[:intEnd], text[intEnd:]
	var frac []byte
	if len(rest) > 0 && rest[0] == '.' {
		end, _ := digits(rest, 1)
		frac, rest = rest[1:end], rest[end:]
	}
	// The value is the digits of intPart and frac, read as one run, with
	// the decimal point after the first point of them.
	point := int64(len(intPart)) + exponent(rest)
	n.readDigits(intPart, 0, point)
	n.readDigits(frac, int64(len(intPart)), point)
	if past := point - int64(len(intPart)+len(frac)); past > 0 && n.integer != 0 {
		n.shift(past)
	}
	return n
}

// exponent reads "e+12" or "E-3" (or nothing: 0), capped at ±maxExponent.
func exponent(text []byte) int64 {
	if len(text) < 2 {
		return 0
	}
	sign, i := int64(1), 1
	switch text[1] {
	case '-':
		sign, i = -1, 2
	case '+':
		i = 2
	}
	var e int64
	for _, c := range text[i:] {
		if e < maxExponent {
			e = e*10 + int64(c-'0')
		}
	}
	return sign * min(e, maxExponent)
}

// readDigits adds d, the digits from position at of the run, to the
// integer part (those before point) or the fraction (those after).
func (n *number) readDigits(d []byte, at, point int64) {
	for k, c := range d {
		if at+int64(k) >= point {
			if c != '0' {
				n.fraction = true
				return
			}
			continue
		}
		n.addDigit(int64(c - '0'))
	}
}

func (n *number) addDigit(d int64) {
	if n.huge || n.integer > (math.MaxInt64-d)/10 {
		n.huge, n.integer = true, 0
		return
	}
	n.integer = n.integer*10 + d
}

// shift multiplies the integer part by 10^k, for the zeros an exponent
// puts after the digits written.
func (n *number) shift(k int64) {
	for ; k > 0 && !n.huge; k-- {
		n.addDigit(0)
	}
}

// above reports whether the number is greater than bound, exactly.
func (n number) above(bound int64) bool {
	if n.neg {
		// -(i+f) > bound, for an integer i and 0 <= f < 1, exactly when
		// i < -bound; never for bound >= 0, even for -0.
		return bound < 0 && !n.huge && n.integer < -bound
	}
	return n.huge || n.integer > bound || n.integer == bound && n.fraction
}
