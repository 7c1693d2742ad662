// Package auth turns the bearer token of a WebSocket handshake into the
// permissions of one connection: it finds the token (Extract), verifies the
// JWT (Verifier), holds the verification keys (KeySet), compiles the
// "channels" claim into NATS-style patterns (Pattern, Claims.Allows), and
// mints tokens for the `tickgate token` subcommand and the dev mode (Signer).
//
// # Token sources
//
// Extract looks in three places; the first one found wins, later ones are
// not looked at:
//
//  1. the header "Authorization: Bearer <jwt>" (the scheme is matched
//     case-insensitively; other schemes such as Basic are skipped);
//  2. a subprotocol entry "bearer.<jwt>" in any Sec-WebSocket-Protocol header
//     line (entries are comma separated, surrounding spaces trimmed, the
//     prefix is matched exactly as proto.BearerPrefix);
//  3. the query parameter access_token, only when the caller allows it
//     (off by default in the gateway: URLs end up in logs).
//
// No token at all is ErrMissingToken. A bearer entry that is empty, or any
// token longer than MaxTokenBytes (8 KiB), is ErrInvalidToken before any
// parsing.
//
// # Keys and the kid rule
//
// A KeySet holds the verification keys and is swapped whole, atomically, by
// KeySet.Replace, so keys can be reloaded without a restart. A token whose
// header carries "kid" is checked only against the keys whose ID equals it
// exactly; a token without "kid" is checked only against the keys whose ID is
// "" (an HMAC secret file yields one such key; a JWKS entry without "kid"
// is another). A kid that matches no key is refused ("unknown key id").
// The headers "jku", "x5u", "jwk" and "x5c" are ignored: no key is ever
// fetched or taken from the token itself.
//
// Keys come from an HMAC secret file (LoadHMACSecretFile), a JSON Web Key
// Set (LoadJWKSFile) or a PEM public key file (LoadPublicKeyFile: PKIX
// "PUBLIC KEY" with RSA, ECDSA or Ed25519, or PKCS #1 "RSA PUBLIC KEY"; one
// key per file, its kid given by the caller). Private keys and
// certificates are refused.
//
// # Algorithms and key types
//
// The token's "alg" must be in Config.Algorithms (default HS256, RS256,
// ES256, EdDSA; "none" can never be configured), AND fit the key's type:
//
//	HS256 HS384 HS512   []byte secret of at least 32, 48, 64 bytes
//	RS256 RS384 RS512   *rsa.PublicKey of at least 2048 bits
//	PS256 PS384 PS512   *rsa.PublicKey of at least 2048 bits
//	ES256 ES384 ES512   *ecdsa.PublicKey on P-256, P-384, P-521 respectively
//	EdDSA               ed25519.PublicKey
//
// A Key may also pin one algorithm (Key.Algorithm, the JWKS "alg" member).
// The binding blocks the classic confusion where a token is HMAC-signed with
// an RSA public key (its PEM bytes) as the secret: HS256 never fits an RSA
// key, whatever the allow-list says.
//
// # Claims
//
// Verify requires "exp", "sub" (non-empty, at most 256 bytes of printable
// UTF-8) and "channels" (a JSON array of 1 to 1024 valid patterns); it honours
// "nbf" and "iat" when present (an "iat" in the future is refused), checks
// "aud" (must contain Config.Audience) and "iss" (must equal Config.Issuer)
// when those are configured. The header "typ" must be absent or "JWT"
// (case-insensitive): "at+jwt" and other typed tokens are refused so that a
// token minted for another purpose is not mistaken for a tickgate token.
// Headers "crit" and "cty" are refused (no extension or nested JWT is
// understood).
//
// Claim names are exact and case-sensitive, and each appears at most once.
// A claim whose name differs only in case (Unicode folding included: "ſub")
// from one the node reads (sub, exp, nbf, iat, aud, iss, channels) makes
// the token invalid, whether or not the exact name is present too, and so
// does any top-level key given twice (compared after JSON escapes are
// resolved) or any header parameter given twice. encoding/json would match
// either and keep the last, so {"channels":["ticker.X"],"Channels":[">"]}
// used to grant ">".
//
// Each claim the node reads must have its JSON type when present (null is
// no type): sub and iss strings, aud a string or an array of strings,
// channels an array of strings, exp, nbf and iat NumericDates. A
// NumericDate is a JSON number, an integer or a plain decimal fraction
// (kept to the nanosecond), with no sign and no exponent: "1796166062"
// (a string), 1e10 and -1 are invalid. It must lie between the Unix epoch
// and the end of year 9999. Other claims are ignored.
//
// Config.Leeway (DefaultLeeway, 5 s, when zero) allows for clocks running
// ahead of the node's: a token is accepted from nbf-leeway and with iat up
// to leeway in the future. exp gets no leeway: a connection is closed at
// exp, so a token is accepted only before it.
//
// # Errors
//
// Verify returns ErrTokenExpired when the only thing wrong is that exp has
// passed, and ErrInvalidToken (wrapped with a short fixed reason) for
// everything else; HandshakeCode maps them to the handshake refusal codes.
// No error text ever contains the token or any part of it (not even its
// kid or alg), so errors may be logged freely.
package auth
