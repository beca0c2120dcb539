// Package tsatest provides a local RFC 3161 time-stamping authority for tests: a real
// implementation, not a mock, in the way net/http/httptest provides a real server.
//
// NewAuthority makes a test CA (ECDSA P-256) and a TSA certificate it issues, whose only
// extended key usage is timeStamping, marked critical (RFC 3161 2.3). The Authority is an
// http.Handler: it answers POSTed application/timestamp-query requests with
// application/timestamp-reply responses holding tokens signed as RFC 3161 and RFC 5816 say:
// CMS SignedData (version 3) over a TSTInfo, with the content-type, message-digest and
// signingCertificateV2 (ESSCertIDv2, SHA-256) signed attributes, the TSA certificate included
// when the request sets certReq, and the tsa field naming the certificate's subject. The
// tokens verify with `openssl ts -verify` and with commseal's anchor/tsa.
//
// NewServer serves an Authority on 127.0.0.1 (URL, Close). Between the two a test steers it:
// SetClock makes backdated (or future) tokens, SetFault makes it fail the ways a TSA fails
// (down, hanging, HTTP 500, garbage, rejection) or misbehave (wrong key, nonce, imprint or
// policy). All methods are safe for concurrent use.
//
// The CMS encoding is built here with encoding/asn1: tspclient-go, which commseal uses to
// verify tokens, has no signing side, and no other dependency is taken for a test kit.
package tsatest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/notaryproject/tspclient-go"
	"github.com/notaryproject/tspclient-go/pki"
)

// Fault is a way the Authority fails or misbehaves; see SetFault.
type Fault int

// Faults.
const (
	// None: answer correctly.
	None Fault = iota
	// Down: close the connection without answering, as a TSA that is down behind a proxy.
	Down
	// Hang: answer nothing until the client gives up (its context ends) or the server closes.
	Hang
	// HTTP500: answer 500 Internal Server Error.
	HTTP500
	// Garbage: answer 200 with the reply content type and a body that is not DER.
	Garbage
	// Rejection: answer a well-formed TimeStampResp with status rejection (systemFailure).
	Rejection
	// WrongKey: sign the token with a key that is not the certificate's.
	WrongKey
	// WrongNonce: put another nonce in the token than the request's.
	WrongNonce
	// WrongImprint: time-stamp other bytes than the request's imprint.
	WrongImprint
	// WrongPolicy: issue the token under another policy than the Authority's.
	WrongPolicy
)

var faultNames = [...]string{"None", "Down", "Hang", "HTTP500", "Garbage", "Rejection", "WrongKey", "WrongNonce", "WrongImprint", "WrongPolicy"}

// String returns the fault's name.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// DefaultPolicy is the TSA policy of an Authority (an OID under the arc 2.999 that ITU-T X.660
// sets aside for examples).
var DefaultPolicy = asn1.ObjectIdentifier{2, 999, 3161, 1}

var (
	oidSignedData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningCertV2       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSAWithSHA256     = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	maxRequestSize     int = 64 << 10
)

// Authority is a local TSA: a test CA, a TSA certificate and its key, and an http.Handler
// answering RFC 3161 requests.
type Authority struct {
	ca, cert *x509.Certificate
	key      *ecdsa.PrivateKey
	wrongKey *ecdsa.PrivateKey

	mu       sync.Mutex
	clock    func() time.Time
	fault    Fault
	serial   int64
	requests int
	closed   chan struct{}
	once     sync.Once
}

// Config sets the validity of an Authority's certificates. The zero value is usable.
type Config struct {
	// NotBefore and NotAfter bound both certificates; by default 2000-01-01 (so that tokens
	// with a clock set in the past still verify) and ten years from now. A window wholly in the
	// past makes a TSA whose certificate has expired since it issued its tokens.
	NotBefore, NotAfter time.Time
}

// NewAuthority makes an Authority with the default Config, the real clock and no fault.
func NewAuthority() (*Authority, error) { return NewAuthorityConfig(Config{}) }

// NewAuthorityConfig makes a CA and a TSA certificate valid as cfg says, with the real clock
// and no fault.
func NewAuthorityConfig(cfg Config) (*Authority, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	wrong, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := cfg.NotBefore, cfg.NotAfter
	if notBefore.IsZero() {
		notBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().AddDate(10, 0, 0)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "commseal tsatest root CA", Organization: []string{"commseal tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "commseal tsatest TSA", Organization: []string{"commseal tests"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// x509.Certificate.ExtKeyUsage would be written non-critical; RFC 3161 wants it critical.
		ExtraExtensions:       []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{ca: ca, cert: cert, key: key, wrongKey: wrong, clock: time.Now, closed: make(chan struct{})}, nil
}

// CA returns the test root certificate.
func (a *Authority) CA() *x509.Certificate { return a.ca }

// Certificate returns the TSA's signing certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// Roots returns a new pool holding the test root, for verifying the Authority's tokens.
func (a *Authority) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.ca)
	return p
}

// CAPEM returns the root certificate in PEM (for openssl ts -verify -CAfile).
func (a *Authority) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.Raw})
}

// CertificatePEM returns the TSA certificate in PEM (for openssl ts -verify -untrusted).
func (a *Authority) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// KeyPEM returns the TSA's private key in PKCS #8 PEM, so that another implementation
// (`openssl ts -reply`) can sign tokens as this TSA.
func (a *Authority) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SetClock sets the clock that gives tokens their time; nil restores time.Now.
func (a *Authority) SetClock(clock func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if clock == nil {
		clock = time.Now
	}
	a.clock = clock
}

// SetFault makes the Authority fail or misbehave from the next request on; None restores it.
func (a *Authority) SetFault(f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault = f
}

// Requests returns how many requests reached the handler.
func (a *Authority) Requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// Release ends every request held by the Hang fault; later ones are answered at once as if
// the fault were None. NewServer's Close calls it.
func (a *Authority) Release() { a.once.Do(func() { close(a.closed) }) }

// ServeHTTP answers an RFC 3161 request (RFC 3161 3.4: POST, application/timestamp-query).
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	fault, now := a.fault, a.clock()
	a.mu.Unlock()
	switch fault {
	case Down:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection where hijacking is not possible
	case Hang:
		select {
		case <-r.Context().Done():
			return
		case <-a.closed:
			fault = None
		}
	case HTTP500:
		http.Error(w, "tsatest: induced failure", http.StatusInternalServerError)
		return
	case Garbage:
		w.Header().Set("Content-Type", tspclient.MediaTypeTimestampReply)
		_, _ = w.Write([]byte("this is not a TimeStampResp\x00\xff")) // a failed write is the client's to see
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != tspclient.MediaTypeTimestampQuery {
		http.Error(w, "want "+tspclient.MediaTypeTimestampQuery, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxRequestSize)+1))
	if err != nil || len(body) > maxRequestSize {
		http.Error(w, "request too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	resp, err := a.respond(body, now, fault)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", tspclient.MediaTypeTimestampReply)
	_, _ = w.Write(resp) // a failed write is the client's to see
}

// Respond returns the DER TimeStampResp the Authority answers to a DER TimeStampReq, with the
// current clock and fault (transport faults aside): a granted token, or a rejection for a
// request it cannot serve (badDataFormat, badAlg, unacceptedPolicy).
func (a *Authority) Respond(query []byte) ([]byte, error) {
	a.mu.Lock()
	fault, now := a.fault, a.clock()
	a.mu.Unlock()
	return a.respond(query, now, fault)
}

func (a *Authority) respond(query []byte, now time.Time, fault Fault) ([]byte, error) {
	var req tspclient.Request
	rest, err := asn1.Unmarshal(query, &req)
	if err != nil || len(rest) != 0 || req.Version != 1 {
		return reject(pki.FailureInfoBadDataFormat, "not a version 1 TimeStampReq")
	}
	if !req.MessageImprint.HashAlgorithm.Algorithm.Equal(oidSHA256) || len(req.MessageImprint.HashedMessage) != sha256.Size {
		return reject(pki.FailureInfoBadAlg, "only SHA-256 imprints")
	}
	policy := DefaultPolicy
	if req.ReqPolicy != nil && !req.ReqPolicy.Equal(policy) {
		return reject(pki.FailureInfoUnacceptedPolicy, "policy "+req.ReqPolicy.String()+" not served")
	}
	if fault == Rejection {
		return reject(pki.FailureInfoSystemFailure, "tsatest: induced rejection")
	}
	a.mu.Lock()
	a.serial++
	serial := big.NewInt(a.serial)
	a.mu.Unlock()

	imprint := req.MessageImprint
	nonce := req.Nonce
	switch fault {
	case WrongNonce:
		nonce = new(big.Int).Add(orZero(nonce), big.NewInt(1))
	case WrongImprint:
		h := append([]byte(nil), imprint.HashedMessage...)
		h[0] ^= 0xff
		imprint.HashedMessage = h
	case WrongPolicy:
		policy = append(append(asn1.ObjectIdentifier(nil), policy...), 99)
	}
	key := a.key
	if fault == WrongKey {
		key = a.wrongKey
	}
	token, err := a.sign(tstInfo{
		Version:        1,
		Policy:         policy,
		MessageImprint: imprint,
		SerialNumber:   serial,
		GenTime:        now.UTC().Truncate(time.Second),
		Accuracy:       accuracy{Seconds: 1},
		Nonce:          nonce,
		TSA:            asn1.RawValue{FullBytes: tsaField(a.cert)},
	}, key, req.CertReq)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(tspclient.Response{
		Status:         pki.StatusInfo{Status: pki.StatusGranted},
		TimestampToken: asn1.RawValue{FullBytes: token},
	})
}

func orZero(n *big.Int) *big.Int {
	if n == nil {
		return new(big.Int)
	}
	return n
}

// reject returns a TimeStampResp with status rejection, the failure bit fi set, and msg as
// its PKIFreeText. (pki.StatusInfo cannot be marshaled with a status string: encoding/asn1
// refuses its utf8 tag on a []string.)
func reject(fi pki.FailureInfo, msg string) ([]byte, error) {
	type statusInfo struct {
		Status       pki.Status
		StatusString []asn1.RawValue
		FailInfo     asn1.BitString
	}
	type response struct{ Status statusInfo }
	bits := asn1.BitString{Bytes: make([]byte, 4), BitLength: 32}
	bits.Bytes[fi/8] |= 0x80 >> (fi % 8)
	return asn1.Marshal(response{Status: statusInfo{
		Status:       pki.StatusRejection,
		StatusString: []asn1.RawValue{{Tag: asn1.TagUTF8String, Bytes: []byte(msg)}},
		FailInfo:     bits,
	}})
}

// tstInfo is RFC 3161 2.4.2 TSTInfo (ordering and extensions left out).
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint tspclient.MessageImprint
	SerialNumber   *big.Int
	GenTime        time.Time `asn1:"generalized"`
	Accuracy       accuracy  `asn1:"optional"`
	Nonce          *big.Int  `asn1:"optional"`
	TSA            asn1.RawValue
}

type accuracy struct {
	Seconds int `asn1:"optional"`
}

// tsaField is the TSTInfo tsa field: [0] EXPLICIT GeneralName, a directoryName ([4] EXPLICIT
// Name) holding the certificate's subject, which openssl ts -verify checks against the signer.
func tsaField(c *x509.Certificate) []byte {
	dn := tlv(0xa4, c.RawSubject)
	return tlv(0xa0, dn)
}

// tlv encodes one DER element from its identifier octet and contents.
func tlv(tag byte, content []byte) []byte {
	n := len(content)
	var l []byte
	switch {
	case n < 0x80:
		l = []byte{byte(n)}
	case n < 0x100:
		l = []byte{0x81, byte(n)}
	case n < 0x10000:
		l = []byte{0x82, byte(n >> 8), byte(n)}
	default:
		l = []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(append([]byte{tag}, l...), content...)
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue // [0] IMPLICIT SET OF Attribute, encoded by sign
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

// encapContentInfo and contentInfo hold their [0] EXPLICIT content as raw bytes: encoding/asn1
// writes a RawValue's FullBytes as they are, without the tag the field would add.
type encapContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT OCTET STRING
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional"` // [0] IMPLICIT CertificateSet, encoded by sign
	SignerInfos      []signerInfo  `asn1:"set"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT SignedData
}

// essCertIDv2 and signingCertificateV2 are RFC 5035's, with the hash algorithm left at its
// default, SHA-256.
type essCertIDv2 struct {
	CertHash     []byte
	IssuerSerial struct {
		Issuer asn1.RawValue // GeneralNames: SEQUENCE { [4] EXPLICIT Name }
		Serial *big.Int
	}
}

type signingCertificateV2 struct {
	Certs []essCertIDv2
}

// sign wraps info in CMS SignedData signed by key under the Authority's certificate.
func (a *Authority) sign(info tstInfo, key crypto.Signer, withCert bool) ([]byte, error) {
	content, err := asn1.Marshal(info)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(content)
	certHash := sha256.Sum256(a.cert.Raw)
	var id essCertIDv2
	id.CertHash = certHash[:]
	id.IssuerSerial.Issuer = asn1.RawValue{FullBytes: tlv(0x30, tlv(0xa4, a.cert.RawIssuer))}
	id.IssuerSerial.Serial = a.cert.SerialNumber
	scv2, err := asn1.Marshal(signingCertificateV2{Certs: []essCertIDv2{id}})
	if err != nil {
		return nil, err
	}
	ctype, err := asn1.Marshal(oidTSTInfo)
	if err != nil {
		return nil, err
	}
	md, err := asn1.Marshal(digest[:])
	if err != nil {
		return nil, err
	}
	attrs := []attribute{
		{Type: oidContentType, Values: []asn1.RawValue{{FullBytes: ctype}}},
		{Type: oidMessageDigest, Values: []asn1.RawValue{{FullBytes: md}}},
		{Type: oidSigningCertV2, Values: []asn1.RawValue{{FullBytes: scv2}}},
	}
	// The signature is over the DER SET OF (tag 0x31, sorted by encoding/asn1); the SignerInfo
	// carries the same bytes under the implicit tag [0].
	set, err := asn1.MarshalWithParams(attrs, "set")
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(set)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	implicit := append([]byte{0xa0}, set[1:]...)
	sha := pkix.AlgorithmIdentifier{Algorithm: oidSHA256}
	sd := signedData{
		Version:          3,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha},
		EncapContentInfo: encapContentInfo{
			ContentType: oidTSTInfo,
			Content:     asn1.RawValue{FullBytes: tlv(0xa0, tlv(asn1.TagOctetString, content))},
		},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: a.cert.RawIssuer}, Serial: a.cert.SerialNumber},
			DigestAlgorithm:    sha,
			SignedAttrs:        asn1.RawValue{FullBytes: implicit},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256},
			Signature:          sig,
		}},
	}
	if withCert {
		sd.Certificates = asn1.RawValue{FullBytes: tlv(0xa0, a.cert.Raw)}
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{FullBytes: tlv(0xa0, sdDER)}})
}

// Server is an Authority served over HTTP on 127.0.0.1.
type Server struct {
	*Authority
	// URL is the TSA endpoint, http://127.0.0.1:port/.
	URL string
	srv *httptest.Server
}

// NewServer starts a new Authority on a loopback port.
func NewServer() (*Server, error) {
	a, err := NewAuthority()
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(a)
	return &Server{Authority: a, URL: srv.URL + "/", srv: srv}, nil
}

// Close releases hanging requests and shuts the server down.
func (s *Server) Close() {
	s.Release()
	s.srv.Close()
}
