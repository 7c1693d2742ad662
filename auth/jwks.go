package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
)

// Limits for key files.
const (
	maxKeyFileBytes = 1 << 20
	maxJWKSKeys     = 256
)

// readKeyFile reads a key file of at most maxKeyFileBytes.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: read %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKey, path, maxKeyFileBytes)
	}
	return data, nil
}

// LoadHMACSecretFile reads an HMAC secret: the file's content, with trailing
// newlines (\n or \r\n) trimmed. A secret shorter than 32 bytes is refused.
// It returns one key with ID "" (for tokens without kid) and no pinned
// algorithm. The secret never appears in an error.
func LoadHMACSecretFile(path string) ([]Key, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	secret := bytes.TrimRight(data, "\r\n")
	if len(secret) < MinHMACSecretBytes {
		return nil, fmt.Errorf("%w: HMAC secret in %s is %d bytes, need at least %d (for example: openssl rand -base64 48)",
			ErrBadKey, path, len(secret), MinHMACSecretBytes)
	}
	return []Key{{Material: secret}}, nil
}

// LoadJWKSFile reads an RFC 7517 JSON Web Key Set ({"keys":[...]}) and
// returns its signature keys; see ParseJWKS.
func LoadJWKSFile(path string) ([]Key, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// jwk is the subset of RFC 7517/7518/8037 members tickgate reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    *string  `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	K      string   `json:"k"` // oct
	N      string   `json:"n"` // RSA
	E      string   `json:"e"` // RSA
	X      string   `json:"x"` // EC, OKP
	Y      string   `json:"y"` // EC
	D      string   `json:"d"` // private part of RSA, EC, OKP: refused
}

// ParseJWKS parses a JSON Web Key Set. Supported: kty "oct" (HMAC secret of
// at least 32 bytes), "RSA" (n, e; at least 2048 bits), "EC" (crv P-256,
// P-384 or P-521; x, y) and "OKP" (crv Ed25519; x). "kid" becomes Key.ID,
// "alg" pins Key.Algorithm. Keys marked "use":"enc", or whose "key_ops" lack
// "verify", are skipped. A key carrying private material ("d") is refused:
// a gateway only needs public keys. Two keys with the same kid and kty are
// refused. Every error names the key by index and kid.
func ParseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS does not parse: %s", ErrBadKey, jsonErrorText(err))
	}
	if set.Keys == nil {
		return nil, fmt.Errorf("%w: JWKS has no \"keys\" array", ErrBadKey)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%w: JWKS has %d keys, at most %d", ErrBadKey, len(set.Keys), maxJWKSKeys)
	}
	type seenKey struct{ kid, kty string }
	seen := make(map[seenKey]bool, len(set.Keys))
	var keys []Key
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("%w: key %d: not a JWK object: %s", ErrBadKey, i, jsonErrorText(err))
		}
		name := fmt.Sprintf("key %d", i)
		kid := ""
		if j.Kid != nil {
			kid = *j.Kid
			name = fmt.Sprintf("key %d (kid %q)", i, kid)
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
			continue
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, name, err)
		}
		k.ID, k.Algorithm = kid, j.Alg
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sk := seenKey{kid, j.Kty}
		if seen[sk] {
			return nil, fmt.Errorf("%w: %s: another %s key has the same kid", ErrBadKey, name, j.Kty)
		}
		seen[sk] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS holds no signature verification key", ErrBadKey)
	}
	return keys, nil
}

// jsonErrorText describes a JSON decoding error without quoting the input:
// encoding/json's syntax errors quote the offending character, which in a
// key file may be a character of a secret.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte offset %d", se.Offset)
	case errors.As(err, &te):
		kind, _, _ := strings.Cut(te.Value, " ") // "number 12" → "number": no literal
		return fmt.Sprintf("a JSON %s where %s belongs, at byte offset %d", kind, te.Type, te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "not valid JSON"
}

// key builds the Key material of one JWK; the caller adds ID and Algorithm
// and validates sizes.
func (j *jwk) key() (Key, error) {
	if j.D != "" && j.Kty != "oct" {
		return Key{}, fmt.Errorf("%s key contains private material (\"d\"); publish only the public key", j.Kty)
	}
	switch j.Kty {
	case "oct":
		k, err := b64(j.K, "k")
		if err != nil {
			return Key{}, err
		}
		return Key{Material: k}, nil
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return Key{}, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return Key{}, err
		}
		if len(e) > 4 || n[0] == 0 || e[0] == 0 {
			return Key{}, fmt.Errorf("RSA n or e is not a minimal big-endian integer, or e is too large")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		return Key{Material: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return Key{}, fmt.Errorf("EC curve %q is not supported (P-256, P-384, P-521)", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(j.X, "x")
		if err != nil {
			return Key{}, err
		}
		y, err := b64(j.Y, "y")
		if err != nil {
			return Key{}, err
		}
		if len(x) != size || len(y) != size {
			return Key{}, fmt.Errorf("EC %s coordinates must be %d bytes each", j.Crv, size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return Key{}, fmt.Errorf("EC point: %v", err)
		}
		return Key{Material: pub}, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return Key{}, fmt.Errorf("OKP curve %q is not supported (Ed25519)", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return Key{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("Ed25519 x must be %d bytes, is %d", ed25519.PublicKeySize, len(x))
		}
		return Key{Material: ed25519.PublicKey(x)}, nil
	case "":
		return Key{}, fmt.Errorf("missing \"kty\"")
	}
	return Key{}, fmt.Errorf("kty %q is not supported (oct, RSA, EC, OKP)", j.Kty)
}

// b64 decodes a required base64url member (padding tolerated).
func b64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("missing %q", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url", member)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%q is empty", member)
	}
	return b, nil
}
