package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// ParsePublicKeyPEM parses one PEM-encoded public key: a "PUBLIC KEY" block
// (PKIX, as `openssl pkey -pubout` writes it: RSA, ECDSA on P-256, P-384 or
// P-521, or Ed25519) or an "RSA PUBLIC KEY" block (PKCS #1). Text around the
// block is ignored. A file with no key block, with more than one, with a
// private key or with a certificate is refused: a gateway needs exactly one
// public key per file, and a certificate's public key is not trusted by
// virtue of the certificate (extract it with `openssl x509 -pubkey
// -noout`). The result is Key material, validated like any other key (RSA
// of at least 2048 bits, ...). Errors never quote the input.
func ParsePublicKeyPEM(data []byte) (any, error) {
	var found *pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PUBLIC KEY", "RSA PUBLIC KEY":
			if found != nil {
				return nil, fmt.Errorf("%w: more than one public key block; use one file per key", ErrBadKey)
			}
			found = b
		case "CERTIFICATE":
			return nil, fmt.Errorf("%w: a CERTIFICATE block is not accepted; give its public key (openssl x509 -pubkey -noout)", ErrBadKey)
		default:
			if bytes.Contains([]byte(b.Type), []byte("PRIVATE")) {
				return nil, fmt.Errorf("%w: the file holds a private key (%s); give only the public key (openssl pkey -pubout)", ErrBadKey, b.Type)
			}
			return nil, fmt.Errorf("%w: PEM block type %q is not a public key", ErrBadKey, clipType(b.Type))
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no PEM \"PUBLIC KEY\" block", ErrBadKey)
	}
	if len(found.Headers) > 0 {
		return nil, fmt.Errorf("%w: encrypted or annotated PEM blocks are not supported", ErrBadKey)
	}
	var (
		pub any
		err error
	)
	if found.Type == "RSA PUBLIC KEY" {
		pub, err = x509.ParsePKCS1PublicKey(found.Bytes)
	} else {
		pub, err = x509.ParsePKIXPublicKey(found.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s block does not parse", ErrBadKey, found.Type)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: public key of type %T is not RSA, ECDSA or Ed25519", ErrBadKey, pub)
	}
	if err := (Key{Material: pub}).Validate(); err != nil {
		return nil, err
	}
	return pub, nil
}

// LoadPublicKeyFile reads one PEM public key (see ParsePublicKeyPEM) and
// returns it as a key with ID kid ("" for tokens without kid) and no pinned
// algorithm: the key's type decides which allowed algorithms fit it.
func LoadPublicKeyFile(path, kid string) ([]Key, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []Key{{ID: kid, Material: pub}}, nil
}

// clipType bounds a PEM block type quoted in an error.
func clipType(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
