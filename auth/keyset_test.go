package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyValidate(t *testing.T) {
	k := keys(t)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  Key
		ok   bool
	}{
		{name: "hmac 32", key: Key{Material: k.hmac}, ok: true},
		{name: "hmac 31", key: Key{Material: k.hmac[:31]}},
		{name: "hmac pinned HS256", key: Key{Algorithm: "HS256", Material: k.hmac}, ok: true},
		{name: "hmac 32 pinned HS512", key: Key{Algorithm: "HS512", Material: k.hmac}},
		{name: "hmac pinned RS256", key: Key{Algorithm: "RS256", Material: k.hmac}},
		{name: "rsa", key: Key{Material: &k.rsa.PublicKey}, ok: true},
		{name: "rsa pinned PS256", key: Key{Algorithm: "PS256", Material: &k.rsa.PublicKey}, ok: true},
		{name: "rsa pinned HS256", key: Key{Algorithm: "HS256", Material: &k.rsa.PublicKey}},
		{name: "rsa private key type", key: Key{Material: k.rsa}},
		{name: "rsa small", key: Key{Material: &rsa.PublicKey{N: big.NewInt(0).Lsh(big.NewInt(1), 1023), E: 65537}}},
		{name: "rsa nil", key: Key{Material: (*rsa.PublicKey)(nil)}},
		{name: "ec P-256", key: Key{Material: &k.ec.PublicKey}, ok: true},
		{name: "ec P-224", key: Key{Material: &p224.PublicKey}},
		{name: "ec nil", key: Key{Material: (*ecdsa.PublicKey)(nil)}},
		{name: "ed25519", key: Key{Material: k.ed.Public().(ed25519.PublicKey)}, ok: true},
		{name: "ed25519 private key", key: Key{Material: k.ed}},
		{name: "ed25519 short", key: Key{Material: ed25519.PublicKey(make([]byte, 16))}},
		{name: "string secret", key: Key{Material: string(k.hmac)}},
		{name: "nil material", key: Key{}},
		{name: "pinned none", key: Key{Algorithm: "none", Material: k.hmac}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
		})
	}
}

func TestKeySetSetAndReplace(t *testing.T) {
	k := keys(t)
	ks := NewKeySet()
	if ks.Len() != 0 {
		t.Fatal("new set not empty")
	}
	if err := ks.Set([]Key{{ID: "a", Material: k.hmac}}); err != nil {
		t.Fatal(err)
	}
	if err := ks.Set([]Key{{ID: "b", Material: k.hmac}, {ID: "bad", Material: []byte("short")}}); err == nil {
		t.Fatal("Set accepted a bad key")
	}
	if ks.Len() != 1 || len(ks.lookup("a")) != 1 {
		t.Fatal("failed Set changed the set")
	}
	ks.Replace([]Key{{ID: "b", Material: k.hmac}, {ID: "bad", Material: []byte("short")}})
	if ks.Len() != 1 || len(ks.lookup("b")) != 1 || len(ks.lookup("a")) != 0 {
		t.Fatalf("Replace: len %d", ks.Len())
	}
	var zero KeySet
	if zero.Len() != 0 || zero.lookup("") != nil {
		t.Fatal("zero KeySet not empty")
	}
}

func TestKeySetCopiesSecrets(t *testing.T) {
	k := keys(t)
	secret := append([]byte(nil), k.hmac...)
	v := newTestVerifier(t, matrixConfig(), []Key{{Material: secret}})
	secret[0] ^= 0xff // the caller scribbles on its buffer after handing it over
	if _, err := v.Verify(mint(t, "HS256", k.hmac, nil, baseClaims())); err != nil {
		t.Fatalf("Verify after caller mutated its buffer: %v", err)
	}
}

// TestKeySetReplaceConcurrent rotates keys while verifiers run; run with
// -race. Key A is in every generation, key B only in every other one.
func TestKeySetReplaceConcurrent(t *testing.T) {
	k := keys(t)
	genA := []Key{{ID: "a", Material: k.hmac}}
	genAB := []Key{{ID: "a", Material: k.hmac}, {ID: "b", Material: &k.ec.PublicKey}}
	ks := NewKeySet()
	ks.Replace(genA)
	v, err := NewVerifier(matrixConfig(), ks)
	if err != nil {
		t.Fatal(err)
	}
	tokA := mint(t, "HS256", k.hmac, map[string]any{"kid": "a"}, baseClaims())
	tokB := mint(t, "ES256", k.ec, map[string]any{"kid": "b"}, baseClaims())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	var okB, failB atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := v.Verify(tokA); err != nil {
					t.Errorf("token A refused during rotation: %v", err)
					return
				}
				if _, err := v.Verify(tokB); err == nil {
					okB.Add(1)
				} else if errors.Is(err, ErrInvalidToken) {
					failB.Add(1)
				} else {
					t.Errorf("token B: unexpected %v", err)
					return
				}
			}
		})
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%2 == 0 {
			ks.Replace(genAB)
		} else {
			ks.Replace(genA)
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	if okB.Load() == 0 || failB.Load() == 0 {
		t.Logf("token B accepted %d, refused %d (rotation raced few verifies)", okB.Load(), failB.Load())
	}
}
