package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"sync"

	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// Transport is an http.RoundTripper that records each request made with a
// context carrying a run as an EXTERNAL_CALL event: method, host, status,
// and SHA-256 digests of the request and response bodies. The URL is
// recorded without its query (which may carry credentials); the query's
// digest is kept instead. The response is an input of the run (what the
// workflow got), a request with a body an output (what it sent, at
// URL#request). The event is recorded when the response body is closed, its
// digest covering what was read.
type Transport struct {
	// Base does the request; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Classification labels the assets ("confidential", "pii"...).
	Classification string
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := FromContext(req.Context())
	if r == nil {
		return t.base().RoundTrip(req)
	}
	var reqDigest string
	if req.Body != nil && req.Body != http.NoBody {
		// RoundTrippers must not modify the request: read the body through
		// a copy of it.
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		reqDigest = "sha256:" + hex.EncodeToString(sum[:])
		req2 := req.Clone(req.Context())
		req2.Body = io.NopCloser(bytes.NewReader(b))
		req2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req = req2
	}
	u := *req.URL
	ext := map[string]string{"http.method": req.Method, "http.host": u.Host}
	if u.RawQuery != "" {
		sum := sha256.Sum256([]byte(u.RawQuery))
		ext["http.query_digest"] = "sha256:" + hex.EncodeToString(sum[:])
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	uri := u.String()
	resp, err := t.base().RoundTrip(req)
	if err != nil {
		ext["http.error"] = truncate(err.Error(), 1024)
		var out []*pb.Asset
		if reqDigest != "" {
			out = []*pb.Asset{{Uri: uri + "#request", Digest: reqDigest, Classification: t.Classification}}
		} else {
			out = []*pb.Asset{{Uri: uri + "#request", Classification: t.Classification}}
		}
		r.record(pb.Operation_OPERATION_EXTERNAL_CALL, nil, out, ext)
		return nil, err
	}
	ext["http.status"] = strconv.Itoa(resp.StatusCode)
	resp.Body = &recordingBody{ReadCloser: resp.Body, h: sha256.New(), done: func(digest string, complete bool) {
		if !complete {
			ext["http.response_partial"] = "true"
		}
		in := []*pb.Asset{{Uri: uri, Digest: digest, Classification: t.Classification}}
		var out []*pb.Asset
		if reqDigest != "" {
			out = []*pb.Asset{{Uri: uri + "#request", Digest: reqDigest, Classification: t.Classification}}
		}
		r.record(pb.Operation_OPERATION_EXTERNAL_CALL, in, out, ext)
	}}
	return resp, nil
}

// recordingBody hashes what is read and reports once, on EOF or Close.
type recordingBody struct {
	io.ReadCloser
	h    hash.Hash
	once sync.Once
	eof  bool
	done func(digest string, complete bool)
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		b.eof = true
		b.report()
	}
	return n, err
}

func (b *recordingBody) Close() error {
	b.report()
	return b.ReadCloser.Close()
}

func (b *recordingBody) report() {
	b.once.Do(func() { b.done("sha256:"+hex.EncodeToString(b.h.Sum(nil)), b.eof) })
}
