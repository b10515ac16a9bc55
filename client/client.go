package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Retry says how Append and AppendBatch retry Unavailable and
// ResourceExhausted: exponential backoff with full jitter from Base,
// doubling up to Max, at most Attempts tries in all. A RetryInfo delay
// sent by the server is a floor on the wait. Retrying is safe because an
// append is idempotent: the event already in the log comes back with its
// original index and duplicate = true.
type Retry struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// DefaultRetry is used when Options.Retry is zero.
var DefaultRetry = Retry{Attempts: 8, Base: 100 * time.Millisecond, Max: 5 * time.Second}

// Options tunes New.
type Options struct {
	Retry Retry
	// TLS, when set, secures the gRPC connection with this configuration;
	// otherwise Config.TLS asks for one with the system's roots, and
	// without either it is plaintext (a loopback or a sidecar).
	TLS *tls.Config
	// HTTPClient fetches /log/; http.DefaultClient when nil.
	HTTPClient *http.Client
	// Sleep waits between retries; a context-aware time.Sleep when nil
	// (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client talks to one provlog log over gRPC (appends, entries, proofs,
// lineage) and HTTP (/log/, the C2SP tlog-tiles read API), and verifies
// everything it is given against its Policy: no answer is trusted. A
// Client is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	log     pb.LogServiceClient
	lineage pb.LineageServiceClient
	tiles   *TileFetcher
	token   string
	policy  *Policy
	retry   Retry
	sleep   func(context.Context, time.Duration) error
}

// New connects to the log in cfg; the connection is made lazily, on the
// first call. The policy is what every checkpoint must satisfy.
func New(cfg Config, p *Policy, opts Options) (*Client, error) {
	if p == nil {
		return nil, errors.New("client.New: no policy: a client that trusts no key can verify nothing")
	}
	conn, err := Dial(cfg, opts)
	if err != nil {
		return nil, err
	}
	r := opts.Retry
	if r.Attempts <= 0 {
		r = DefaultRetry
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return &Client{
		conn:    conn,
		log:     pb.NewLogServiceClient(conn),
		lineage: pb.NewLineageServiceClient(conn),
		tiles:   NewTileFetcher(cfg.HTTP, opts.HTTPClient),
		token:   cfg.Token,
		policy:  p,
		retry:   r,
		sleep:   sleep,
	}, nil
}

// Dial makes the gRPC connection New uses, with cfg's address and opts'
// transport security, for services the Client does not wrap (provctl's
// AdminService commands); it needs no policy. The caller adds the bearer
// token (cfg.Token) to each call's metadata.
func Dial(cfg Config, opts Options) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	switch {
	case opts.TLS != nil:
		creds = credentials.NewTLS(opts.TLS)
	case cfg.TLS:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("couldn't set up a gRPC connection to %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Close closes the gRPC connection.
func (c *Client) Close() error { return c.conn.Close() }

// Policy is the policy the client verifies against.
func (c *Client) Policy() *Policy { return c.policy }

// Tiles is the client's tlog-tiles reader.
func (c *Client) Tiles() *TileFetcher { return c.tiles }

// LogService is the raw gRPC stub, for calls the Client does not wrap. Its
// answers are not verified.
func (c *Client) LogService() pb.LogServiceClient { return c.log }

// LineageService is the raw gRPC stub. Its answers are not verified.
func (c *Client) LineageService() pb.LineageServiceClient { return c.lineage }

// Context adds the bearer token to ctx's outgoing metadata.
func (c *Client) Context(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable reports whether a gRPC error may be retried, and the delay the
// server asked for (0 if none).
func retryable(err error) (bool, time.Duration) {
	st, ok := status.FromError(err)
	if !ok {
		return false, 0
	}
	if st.Code() != codes.Unavailable && st.Code() != codes.ResourceExhausted {
		return false, 0
	}
	var d time.Duration
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			d = ri.GetRetryDelay().AsDuration()
		}
	}
	return true, d
}

// backoff is the wait before retry number attempt (1-based): full jitter
// over an exponentially growing cap, never below the server's delay.
func (c *Client) backoff(attempt int, floor time.Duration) time.Duration {
	ceil := c.retry.Base << min(attempt-1, 30)
	if ceil > c.retry.Max || ceil <= 0 {
		ceil = c.retry.Max
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, floor)
}

// do runs call until it succeeds, fails with an error that is not
// retryable, or runs out of attempts.
func (c *Client) do(ctx context.Context, call func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = call(c.Context(ctx))
		ok, floor := retryable(err)
		if err == nil || !ok || attempt >= c.retry.Attempts {
			break
		}
		if serr := c.sleep(ctx, c.backoff(attempt, floor)); serr != nil {
			return fmt.Errorf("%w (gave up waiting to retry: %w)", err, serr)
		}
	}
	return err
}

// Append appends one event, retrying pushback. With wait =
// WAIT_FOR_PUBLISHED the receipt is verified against the policy and must
// hold exactly ev (its sensitive values sealed: VerifySubmittedReceipt); a receipt that does not verify is an error wrapping
// ErrVerification.
func (c *Client) Append(ctx context.Context, ev *pb.ProvenanceEvent, wait pb.WaitFor) (*pb.AppendResponse, error) {
	var resp *pb.AppendResponse
	err := c.do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.log.Append(ctx, &pb.AppendRequest{Event: ev, Wait: wait})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append %q: %w", ev.GetEventId(), err)
	}
	if err := c.checkResult(ev, resp.GetIndex(), resp.GetLeafHash(), resp.GetReceipt(), resp.GetOpenings(), wait); err != nil {
		return nil, fmt.Errorf("append %q: %w", ev.GetEventId(), err)
	}
	return resp, nil
}

func (c *Client) checkResult(ev *pb.ProvenanceEvent, index uint64, leafHash []byte, r *pb.Receipt, openings []*pb.SensitiveOpening, wait pb.WaitFor) error {
	if wait != pb.WaitFor_WAIT_FOR_PUBLISHED {
		return nil
	}
	if r == nil {
		return fmt.Errorf("%w: asked for a receipt, got none", ErrVerification)
	}
	v, err := VerifyReceiptWithPolicy(r, c.policy)
	if err != nil {
		return err
	}
	// Sensitive values: the leaf holds commitments, which the openings
	// and the values sent recompute.
	if err := v.HoldsSubmitted(ev, openings); err != nil {
		return fmt.Errorf("the receipt's leaf does not hold the appended event: %w", err)
	}
	if v.Index != index || string(v.LeafHash[:]) != string(leafHash) {
		return fmt.Errorf("%w: the answer says leaf %d, the receipt proves leaf %d", ErrVerification, index, v.Index)
	}
	return nil
}

// AppendBatch appends events in one call per attempt. Events refused with
// a retryable code (the whole call, or one event's AppendError) are sent
// again, alone with the others still pending; the results are in request
// order. Receipts are verified as in Append.
func (c *Client) AppendBatch(ctx context.Context, evs []*pb.ProvenanceEvent, wait pb.WaitFor) (*pb.AppendBatchResponse, error) {
	out := &pb.AppendBatchResponse{Results: make([]*pb.AppendResult, len(evs))}
	pending := make([]int, len(evs))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		req := &pb.AppendBatchRequest{Wait: wait, Events: make([]*pb.ProvenanceEvent, len(pending))}
		for j, i := range pending {
			req.Events[j] = evs[i]
		}
		resp, err := c.log.AppendBatch(c.Context(ctx), req)
		var floor time.Duration
		var again []int
		if err != nil {
			ok, f := retryable(err)
			if !ok || attempt >= c.retry.Attempts {
				return nil, fmt.Errorf("append batch of %d: %w", len(req.Events), err)
			}
			again, floor = pending, f
		} else {
			if len(resp.GetResults()) != len(pending) {
				return nil, fmt.Errorf("%w: sent %d events, got %d results", ErrVerification, len(pending), len(resp.GetResults()))
			}
			if len(resp.GetCheckpoint()) > 0 {
				out.Checkpoint = resp.GetCheckpoint()
			}
			for j, r := range resp.GetResults() {
				i := pending[j]
				code := codes.Code(r.GetError().GetCode())
				if r.GetError() != nil && (code == codes.Unavailable || code == codes.ResourceExhausted) && attempt < c.retry.Attempts {
					again = append(again, i)
					continue
				}
				if r.GetError() == nil {
					if err := c.checkResult(evs[i], r.GetIndex(), r.GetLeafHash(), r.GetReceipt(), r.GetOpenings(), wait); err != nil {
						return nil, fmt.Errorf("append batch: event %d (%q): %w", i, evs[i].GetEventId(), err)
					}
				}
				out.Results[i] = r
			}
		}
		pending = again
		if len(pending) > 0 {
			if err := c.sleep(ctx, c.backoff(attempt, floor)); err != nil {
				return nil, fmt.Errorf("append batch: %d events still pending: %w", len(pending), err)
			}
		}
	}
	return out, nil
}

// Checkpoint fetches /log/checkpoint and verifies it against the policy.
func (c *Client) Checkpoint(ctx context.Context) (*log.Checkpoint, []byte, error) {
	raw, err := c.tiles.Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	cp, err := c.policy.VerifyCheckpoint(raw)
	if err != nil {
		return nil, raw, err
	}
	return cp, raw, nil
}

// VerifiedEntry is a leaf proven into a checkpoint that satisfies the
// policy.
type VerifiedEntry struct {
	Index      uint64
	Leaf       []byte
	LeafHash   [32]byte
	Entry      *pb.LeafEntry
	Checkpoint *log.Checkpoint
	// CheckpointNote is the signed checkpoint, with cosignatures.
	CheckpointNote []byte
	Proof          [][]byte
}

// GetEntry fetches leaf index with an inclusion proof to the latest
// published checkpoint, and verifies: the checkpoint against the policy,
// the proof, and that the decoded entry the server sent is what the leaf
// bytes hold.
func (c *Client) GetEntry(ctx context.Context, index uint64) (*VerifiedEntry, error) {
	ctx = c.Context(ctx)
	e, err := c.log.GetEntry(ctx, &pb.GetEntryRequest{Index: index})
	if err != nil {
		return nil, fmt.Errorf("get entry %d: %w", index, err)
	}
	p, err := c.log.GetInclusionProof(ctx, &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: index}})
	if err != nil {
		return nil, fmt.Errorf("get inclusion proof of %d: %w", index, err)
	}
	return verifyEntry(index, e, p, c.policy)
}

func verifyEntry(index uint64, e *pb.GetEntryResponse, p *pb.GetInclusionProofResponse, pol *Policy) (*VerifiedEntry, error) {
	if e.GetIndex() != index || p.GetIndex() != index {
		return nil, fmt.Errorf("%w: asked for leaf %d, got entry %d and proof for %d", ErrVerification, index, e.GetIndex(), p.GetIndex())
	}
	cp, err := pol.VerifyCheckpoint(p.GetCheckpoint())
	if err != nil {
		return nil, err
	}
	if p.GetTreeSize() != cp.Size {
		return nil, fmt.Errorf("%w: proof for tree size %d, checkpoint of size %d", ErrVerification, p.GetTreeSize(), cp.Size)
	}
	h := event.LeafHash(e.GetLeaf())
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, h[:], p.GetProof(), cp.Hash); err != nil {
		return nil, fmt.Errorf("%w: leaf %d: inclusion proof: %w", ErrVerification, index, err)
	}
	decoded, err := event.DecodeLeaf(e.GetLeaf())
	if err != nil {
		return nil, fmt.Errorf("%w: leaf %d: %w", ErrVerification, index, err)
	}
	if e.GetEntry() != nil && !proto.Equal(decoded, e.GetEntry()) {
		return nil, fmt.Errorf("%w: leaf %d: the decoded entry the server sent is not what the leaf holds", ErrVerification, index)
	}
	if len(e.GetLeafHash()) > 0 && string(e.GetLeafHash()) != string(h[:]) {
		return nil, fmt.Errorf("%w: leaf %d: the server's leaf hash is not the hash of the leaf", ErrVerification, index)
	}
	return &VerifiedEntry{Index: index, Leaf: e.GetLeaf(), LeafHash: h, Entry: decoded, Checkpoint: cp, CheckpointNote: p.GetCheckpoint(), Proof: p.GetProof()}, nil
}

// VerifyConsistency checks that the tree of checkpoint newer extends the
// tree of older, using proof (RFC 6962 consistency proof). Equal sizes need
// equal roots and no proof. Errors wrap ErrVerification.
func VerifyConsistency(older, newer *log.Checkpoint, consistency [][]byte) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: origins differ: %q and %q", ErrVerification, older.Origin, newer.Origin)
	}
	if newer.Size < older.Size {
		return fmt.Errorf("%w: the log shrank from %d to %d leaves", ErrVerification, older.Size, newer.Size)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, consistency, older.Hash, newer.Hash); err != nil {
		return fmt.Errorf("%w: checkpoint of size %d is not consistent with the one of size %d: %w", ErrVerification, newer.Size, older.Size, err)
	}
	return nil
}

// ProveConsistency fetches a consistency proof between two verified
// checkpoints and checks it.
func (c *Client) ProveConsistency(ctx context.Context, older, newer *log.Checkpoint) error {
	var pr [][]byte
	if older.Size > 0 && older.Size < newer.Size {
		resp, err := c.log.GetConsistencyProof(c.Context(ctx), &pb.GetConsistencyProofRequest{FromSize: older.Size, ToSize: newer.Size})
		if err != nil {
			return fmt.Errorf("get consistency proof %d -> %d: %w", older.Size, newer.Size, err)
		}
		if resp.GetFromSize() != older.Size || resp.GetToSize() != newer.Size {
			return fmt.Errorf("%w: asked for a proof %d -> %d, got %d -> %d", ErrVerification, older.Size, newer.Size, resp.GetFromSize(), resp.GetToSize())
		}
		pr = resp.GetProof()
	}
	return VerifyConsistency(older, newer, pr)
}

// Trace runs a lineage query and verifies the answer with VerifyTrace.
func (c *Client) Trace(ctx context.Context, req *pb.TraceRequest) (*pb.TraceResponse, error) {
	resp, err := c.lineage.Trace(c.Context(ctx), req)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := VerifyTrace(resp, c.policy); err != nil {
		return nil, err
	}
	return resp, nil
}

// RunEvents lists a run's events and verifies that each one is a proven
// leaf whose event belongs to the run and matches the summary.
func (c *Client) RunEvents(ctx context.Context, tenant, runID string) (*pb.ListRunEventsResponse, error) {
	resp, err := c.lineage.ListRunEvents(c.Context(ctx), &pb.ListRunEventsRequest{Tenant: tenant, RunId: runID})
	if err != nil {
		return nil, fmt.Errorf("list run events: %w", err)
	}
	if err := VerifyRunEvents(resp, tenant, runID, c.policy); err != nil {
		return nil, err
	}
	return resp, nil
}

// VerifyRunEvents checks a ListRunEvents answer offline: the proofs verify
// under the policy and every listed event is a proven leaf of the tenant
// and run, as its summary says.
func VerifyRunEvents(resp *pb.ListRunEventsResponse, tenant, runID string, p *Policy) error {
	_, entries, err := VerifyLeafProofs(resp.GetProofs(), p)
	if err != nil {
		return err
	}
	for _, s := range resp.GetEvents() {
		e, ok := entries[s.GetLeafIndex()]
		if !ok {
			return fmt.Errorf("%w: event %q cites leaf %d, which the answer does not prove", ErrVerification, s.GetEventId(), s.GetLeafIndex())
		}
		ev := e.GetEvent()
		if ev.GetTenant() != tenant || ev.GetWorkflow().GetRunId() != runID {
			return fmt.Errorf("%w: leaf %d is event %q of tenant %q run %q, not of run %q", ErrVerification, s.GetLeafIndex(), ev.GetEventId(), ev.GetTenant(), ev.GetWorkflow().GetRunId(), runID)
		}
		if ev.GetEventId() != s.GetEventId() || ev.GetOperation() != s.GetOperation() || ev.GetWorkflow().GetStepId() != s.GetStepId() {
			return fmt.Errorf("%w: summary of leaf %d (%q) does not match its event %q", ErrVerification, s.GetLeafIndex(), s.GetEventId(), ev.GetEventId())
		}
	}
	return nil
}

// readAllLimit reads at most n bytes, failing on more.
func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("response larger than %d bytes", n)
	}
	return b, nil
}
