package tsa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/notaryproject/tspclient-go"
)

// Errors that callers branch on. Every error of this package wraps exactly one of them (an
// error from Client also comes as an *Error naming the TSA).
var (
	// ErrMalformed: the response or the token is not well-formed RFC 3161 / CMS, or breaks the
	// profile (one signer, version 1, SHA-256 imprint).
	ErrMalformed = errors.New("tsa: malformed time-stamp response or token")
	// ErrImprint: the token time-stamps other bytes than the checkpoint given.
	ErrImprint = errors.New("tsa: token does not time-stamp this checkpoint")
	// ErrSignature: the token's signature, or its binding to the signing certificate
	// (ESSCertIDv2), does not verify: the token was altered or signed with another key.
	ErrSignature = errors.New("tsa: token signature does not verify")
	// ErrUntrusted: the signing certificate does not chain to a root in the pool, was not
	// valid at the token's time, or is not a TSA certificate (the only extended key usage must
	// be timeStamping, marked critical, RFC 3161 2.3).
	ErrUntrusted = errors.New("tsa: token signer is not a trusted TSA")
	// ErrNonce: the response does not carry the request's nonce (a replayed or misrouted
	// response).
	ErrNonce = errors.New("tsa: response nonce does not match the request")
	// ErrPolicy: the token's TSA policy is not the one the TSA is configured with.
	ErrPolicy = errors.New("tsa: token policy is not the required one")
	// ErrRejected: the TSA answered with a status other than granted (RFC 3161 PKIStatus), or
	// an HTTP status that says the request itself is wrong.
	ErrRejected = errors.New("tsa: TSA rejected the request")
	// ErrUnavailable: the TSA could not be reached or did not answer in time (connection
	// refused or reset, timeout, context ended, HTTP 5xx or 429). Retry later.
	ErrUnavailable = errors.New("tsa: TSA unavailable")
)

// MaxTokenSize bounds the tokens Verify accepts and MaxResponseSize the responses the client
// reads; a TSA's token with its certificates is a few kilobytes.
const (
	MaxTokenSize    = 256 << 10
	MaxResponseSize = MaxTokenSize + 1024
)

// Token is a verified RFC 3161 time-stamp token over a checkpoint.
type Token struct {
	// DER is the TimeStampToken (a CMS ContentInfo holding SignedData) exactly as the TSA
	// sent it: what an anchor entry stores, and what `openssl ts -verify -token_in` reads.
	DER []byte
	// Time is the token's genTime (UTC): the TSA attests the checkpoint existed then.
	Time time.Time
	// Accuracy is the TSA's stated accuracy of Time, 0 if it states none.
	Accuracy time.Duration
	// TSA names the authority: the token's tsa field when it is a directory name, else the
	// signing certificate's subject.
	TSA string
	// Serial is the TSA's serial number of the token, unique per TSA.
	Serial *big.Int
	// Policy is the TSA policy under which the token was issued.
	Policy asn1.ObjectIdentifier
	// Nonce is the request's nonce as the token carries it (nil if none).
	Nonce *big.Int
	// Chain is the verified chain, signing certificate first, ending at a root of the pool.
	Chain []*x509.Certificate
}

// idSHA256 is the only imprint hash this package issues or accepts.
var idSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}

// idKPTimeStamping and idCEExtKeyUsage identify the extended key usage a TSA certificate must
// carry (RFC 3161 2.3).
var (
	idCEExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// Verify checks a time-stamp token over a checkpoint and returns what it attests.
//
// checkpoint is the signed checkpoint note exactly as stored (the bytes that were stamped);
// roots holds the TSA roots to trust. Verify checks, in this order, with errors wrapping:
//
//   - ErrMalformed: the token parses as CMS SignedData holding a version-1 TSTInfo, with one
//     signer (RFC 3161 2.4.2 allows only the TSA's signature), at most MaxTokenSize bytes;
//   - ErrImprint: the message imprint is SHA-256 of checkpoint;
//   - ErrSignature: the signing certificate is in the token and bound to the signature by the
//     signingCertificateV2 attribute (ESSCertIDv2, RFC 5816);
//   - ErrUntrusted: it is a TSA certificate (sole, critical timeStamping EKU) that chains to
//     roots, valid at the token's genTime;
//   - ErrSignature: the CMS signature and its signed attributes (content type, message
//     digest) verify under that certificate.
//
// Certificates are checked at the token's time, not now, so that a token stays verifiable
// after its TSA certificate expires. Revocation is not checked.
func Verify(token, checkpoint []byte, roots *x509.CertPool) (*Token, error) {
	if err := checkVerifyInput(token, roots); err != nil {
		return nil, err
	}
	st, info, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	return verifyParsed(token, st, info, checkpoint, roots)
}

// checkVerifyInput makes Verify's checks of its arguments: the token's size and the roots.
func checkVerifyInput(token []byte, roots *x509.CertPool) error {
	if len(token) > MaxTokenSize {
		return fmt.Errorf("%w: token of %d bytes, more than %d", ErrMalformed, len(token), MaxTokenSize)
	}
	if roots == nil {
		return fmt.Errorf("%w: no TSA roots given", ErrUntrusted)
	}
	return nil
}

// verifyParsed is Verify after its argument checks, of token already parsed by parseToken.
func verifyParsed(token []byte, st *tspclient.SignedToken, info *tspclient.TSTInfo, checkpoint []byte, roots *x509.CertPool) (*Token, error) {
	if err := checkImprint(info, checkpoint); err != nil {
		return nil, err
	}
	si := &st.SignerInfos[0]
	signer, err := st.SigningCertificate(si)
	if err != nil {
		return nil, fmt.Errorf("%w: signing certificate not identified: %v", ErrSignature, err)
	}
	if err := checkTSACertificate(signer); err != nil {
		return nil, err
	}
	intermediates := x509.NewCertPool()
	for _, c := range st.Certificates {
		intermediates.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   info.GenTime,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}
	if _, err := signer.Verify(opts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	// The chain is trusted; what the library can still refuse is the signature or the signed
	// attributes. It builds the chain again (same options) and returns it.
	chain, err := st.Verify(context.Background(), opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return &Token{
		DER:      bytes.Clone(token),
		Time:     info.GenTime.UTC(),
		Accuracy: accuracy(info),
		TSA:      tsaName(info, signer),
		Serial:   info.SerialNumber,
		Policy:   info.Policy,
		Nonce:    info.Nonce,
		Chain:    chain,
	}, nil
}

// parseToken parses a token without verifying it: the profile's structural checks only.
func parseToken(token []byte) (*tspclient.SignedToken, *tspclient.TSTInfo, error) {
	st, err := tspclient.ParseSignedToken(token)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(st.SignerInfos) != 1 {
		return nil, nil, fmt.Errorf("%w: %d signers, want exactly 1", ErrMalformed, len(st.SignerInfos))
	}
	info, err := st.Info()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if info.Version != 1 {
		return nil, nil, fmt.Errorf("%w: TSTInfo version %d, want 1", ErrMalformed, info.Version)
	}
	if info.SerialNumber == nil {
		return nil, nil, fmt.Errorf("%w: TSTInfo has no serial number", ErrMalformed)
	}
	return st, info, nil
}

func checkImprint(info *tspclient.TSTInfo, checkpoint []byte) error {
	mi := info.MessageImprint
	if !mi.HashAlgorithm.Algorithm.Equal(idSHA256) {
		return fmt.Errorf("%w: imprint hash algorithm %v, want SHA-256 (%v)", ErrImprint, mi.HashAlgorithm.Algorithm, idSHA256)
	}
	want := sha256.Sum256(checkpoint)
	if !bytes.Equal(mi.HashedMessage, want[:]) {
		return fmt.Errorf("%w: imprint %x, checkpoint SHA-256 %x", ErrImprint, mi.HashedMessage, want)
	}
	return nil
}

// checkTSACertificate applies RFC 3161 2.3: the certificate's only extended key usage is
// timeStamping, and the extension is critical.
func checkTSACertificate(c *x509.Certificate) error {
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(c.UnknownExtKeyUsage) != 0 {
		return fmt.Errorf("%w: certificate %q: extended key usage must be timeStamping alone", ErrUntrusted, c.Subject)
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(idCEExtKeyUsage) {
			if !e.Critical {
				return fmt.Errorf("%w: certificate %q: extended key usage is not critical", ErrUntrusted, c.Subject)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: certificate %q has no extended key usage", ErrUntrusted, c.Subject)
}

func accuracy(info *tspclient.TSTInfo) time.Duration {
	a := info.Accuracy
	return time.Duration(a.Seconds)*time.Second + time.Duration(a.Milliseconds)*time.Millisecond +
		time.Duration(a.Microseconds)*time.Microsecond
}

// tsaName reads the TSTInfo tsa field ([0] EXPLICIT GeneralName) when it is a directoryName
// ([4] EXPLICIT Name), else names the signer by its subject.
func tsaName(info *tspclient.TSTInfo, signer *x509.Certificate) string {
	var gn asn1.RawValue
	if len(info.TSA.Bytes) > 0 {
		if rest, err := asn1.Unmarshal(info.TSA.Bytes, &gn); err == nil && len(rest) == 0 &&
			gn.Class == asn1.ClassContextSpecific && gn.Tag == 4 {
			var rdn pkix.RDNSequence
			if rest, err := asn1.Unmarshal(gn.Bytes, &rdn); err == nil && len(rest) == 0 {
				var n pkix.Name
				n.FillFromRDNSequence(&rdn)
				return n.String()
			}
		}
	}
	return signer.Subject.String()
}
