package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"sync/atomic"
)

// Key-size floors. RFC 7518 asks for HMAC secrets at least as long as the
// hash output and RSA moduli of at least 2048 bits.
const (
	MinHMACSecretBytes = 32
	MinRSABits         = 2048
)

// Key is one verification key.
type Key struct {
	// ID is matched exactly against the token header's "kid"; "" is the key
	// for tokens without a kid.
	ID string
	// Algorithm, when set, pins the one algorithm the key verifies (the
	// JWKS "alg" member); it must fit the key type. "" allows every allowed
	// algorithm that fits.
	Algorithm string
	// Material is a []byte HMAC secret, *rsa.PublicKey, *ecdsa.PublicKey
	// (P-256, P-384 or P-521) or ed25519.PublicKey.
	Material any
}

// keyKind is the family of a key or algorithm.
type keyKind uint8

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindEC
	kindEd25519
)

// algSpec says which keys an algorithm fits: the kind, and for HMAC the
// minimum secret length in bytes, for ECDSA the curve size in bits.
type algSpec struct {
	kind keyKind
	size int
}

// lookupAlg returns the spec of a supported JWS algorithm name. "none" and
// anything unknown is not supported.
func lookupAlg(name string) (algSpec, bool) {
	switch name {
	case "HS256":
		return algSpec{kindHMAC, 32}, true
	case "HS384":
		return algSpec{kindHMAC, 48}, true
	case "HS512":
		return algSpec{kindHMAC, 64}, true
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return algSpec{kindRSA, MinRSABits}, true
	case "ES256":
		return algSpec{kindEC, 256}, true
	case "ES384":
		return algSpec{kindEC, 384}, true
	case "ES512":
		return algSpec{kindEC, 521}, true
	case "EdDSA":
		return algSpec{kindEd25519, ed25519.PublicKeySize}, true
	}
	return algSpec{}, false
}

// SupportedAlgorithms lists every algorithm name Config.Algorithms accepts.
func SupportedAlgorithms() []string {
	return []string{
		"HS256", "HS384", "HS512",
		"RS256", "RS384", "RS512",
		"PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512",
		"EdDSA",
	}
}

// keyEntry is a Key with its kind and size worked out once.
type keyEntry struct {
	key  Key
	kind keyKind
	size int // HMAC: secret bytes; RSA: modulus bits; EC: curve bits; Ed25519: 32
}

// fits reports whether the key may verify a token signed with alg.
func (e *keyEntry) fits(alg string, spec algSpec) bool {
	if e.key.Algorithm != "" && e.key.Algorithm != alg {
		return false
	}
	if e.kind != spec.kind {
		return false
	}
	switch e.kind {
	case kindHMAC, kindRSA:
		return e.size >= spec.size
	case kindEC:
		return e.size == spec.size
	}
	return true
}

// inspect validates a key and works out its entry.
func inspect(k Key) (keyEntry, error) {
	e := keyEntry{key: k}
	switch m := k.Material.(type) {
	case []byte:
		if len(m) < MinHMACSecretBytes {
			return e, fmt.Errorf("%w: HMAC secret is %d bytes, need at least %d", ErrBadKey, len(m), MinHMACSecretBytes)
		}
		e.kind, e.size = kindHMAC, len(m)
		e.key.Material = bytes.Clone(m)
	case *rsa.PublicKey:
		if m == nil || m.N == nil {
			return e, fmt.Errorf("%w: nil RSA key", ErrBadKey)
		}
		if bits := m.N.BitLen(); bits < MinRSABits {
			return e, fmt.Errorf("%w: RSA modulus is %d bits, need at least %d", ErrBadKey, bits, MinRSABits)
		}
		if m.E < 3 || m.E%2 == 0 {
			return e, fmt.Errorf("%w: RSA exponent %d is not an odd number >= 3", ErrBadKey, m.E)
		}
		e.kind, e.size = kindRSA, m.N.BitLen()
	case *ecdsa.PublicKey:
		if m == nil || m.Curve == nil {
			return e, fmt.Errorf("%w: nil ECDSA key", ErrBadKey)
		}
		if _, err := m.Bytes(); err != nil { // rejects off-curve points and unsupported curves
			return e, fmt.Errorf("%w: ECDSA key: %v", ErrBadKey, err)
		}
		switch name := m.Curve.Params().Name; name {
		case "P-256":
			e.size = 256
		case "P-384":
			e.size = 384
		case "P-521":
			e.size = 521
		default:
			return e, fmt.Errorf("%w: ECDSA curve %s is not supported", ErrBadKey, name)
		}
		e.kind = kindEC
	case ed25519.PublicKey:
		if len(m) != ed25519.PublicKeySize {
			return e, fmt.Errorf("%w: Ed25519 key is %d bytes, want %d", ErrBadKey, len(m), ed25519.PublicKeySize)
		}
		e.kind, e.size = kindEd25519, len(m)
		e.key.Material = ed25519.PublicKey(bytes.Clone(m))
	default:
		return e, fmt.Errorf("%w: material of type %T is not []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey", ErrBadKey, k.Material)
	}
	if k.Algorithm != "" {
		spec, ok := lookupAlg(k.Algorithm)
		if !ok {
			return e, fmt.Errorf("%w: algorithm %q is not supported", ErrBadKey, k.Algorithm)
		}
		if !e.fits(k.Algorithm, spec) {
			return e, fmt.Errorf("%w: algorithm %s does not fit this key", ErrBadKey, k.Algorithm)
		}
	}
	return e, nil
}

// Validate reports whether the key can verify anything: known material type,
// HMAC secret of at least 32 bytes, RSA of at least 2048 bits, ECDSA on
// P-256/384/521, a 32-byte Ed25519 key, and a pinned algorithm that fits.
func (k Key) Validate() error {
	_, err := inspect(k)
	return err
}

// keyIndex is one immutable generation of a KeySet.
type keyIndex struct {
	byID map[string][]keyEntry
	n    int
}

// KeySet holds verification keys chosen by the token header's "kid". It is
// safe for concurrent use: Verify reads one generation, Replace swaps in a
// new one atomically. The zero KeySet is empty and ready to use.
type KeySet struct {
	// idx is the current generation; swapped whole by Replace, never
	// mutated after it is stored. nil means empty.
	idx atomic.Pointer[keyIndex]
}

// NewKeySet returns an empty key set.
func NewKeySet() *KeySet { return &KeySet{} }

// Replace swaps the whole set for keys, atomically: a Verify running
// concurrently sees either the old or the new set, never a mix. Keys that
// fail Key.Validate are left out (use Set to be told); HMAC secrets and
// Ed25519 keys are copied, RSA and ECDSA keys are shared and must not be
// mutated afterwards.
func (s *KeySet) Replace(keys []Key) {
	idx := &keyIndex{byID: make(map[string][]keyEntry, len(keys))}
	for _, k := range keys {
		e, err := inspect(k)
		if err != nil {
			continue
		}
		idx.byID[k.ID] = append(idx.byID[k.ID], e)
		idx.n++
	}
	s.idx.Store(idx)
}

// Set validates every key and, only if all are valid, replaces the set with
// them. On error the set is unchanged and the error names the bad key by
// index and ID.
func (s *KeySet) Set(keys []Key) error {
	for i, k := range keys {
		if err := k.Validate(); err != nil {
			return fmt.Errorf("key %d (kid %q): %w", i, k.ID, err)
		}
	}
	s.Replace(keys)
	return nil
}

// Len returns how many usable keys the set holds.
func (s *KeySet) Len() int {
	if idx := s.idx.Load(); idx != nil {
		return idx.n
	}
	return 0
}

// lookup returns the keys with the given ID in the current generation.
func (s *KeySet) lookup(id string) []keyEntry {
	if idx := s.idx.Load(); idx != nil {
		return idx.byID[id]
	}
	return nil
}
