package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// logService implements provlog.v1.LogService on a ledger.
type logService struct {
	pb.UnimplementedLogServiceServer
	ledger         *ledger.Ledger
	log            *slog.Logger
	publishTimeout time.Duration
	now            func() time.Time
	metrics        *metrics
	sens           *sensitive
	authz          *authorChecks
	limits         *limiter           // AppendStream's per-request rate limits
	auth           auth.Authenticator // AppendStream authenticates each request again
}

// checkEvent validates one event and the caller's right to append it.
func (s *logService) checkEvent(ctx context.Context, id *auth.Identity, ev *pb.ProvenanceEvent, field string) error {
	if ev == nil {
		return &event.FieldError{Field: field, Reason: "required"}
	}
	if err := event.Validate(ev, s.now()); err != nil {
		var fe *event.FieldError
		if errors.As(err, &fe) && field != "event" {
			// "event" is the event as a whole: in a batch, events[i].
			path := field
			if fe.Field != "event" {
				path += "." + fe.Field
			}
			return &event.FieldError{Field: path, Reason: fe.Reason}
		}
		return err
	}
	if !id.CanActFor(ev.GetTenant()) {
		return status.Errorf(codes.PermissionDenied, "%s.tenant: not allowed to append for tenant %q", field, ev.GetTenant())
	}
	return s.authz.check(ctx, id, ev, field)
}

func (s *logService) Append(ctx context.Context, req *pb.AppendRequest) (*pb.AppendResponse, error) {
	id := auth.FromContext(ctx)
	if err := s.checkWait(req.GetWait()); err != nil {
		return nil, err
	}
	if err := s.checkEvent(ctx, id, req.GetEvent(), "event"); err != nil {
		s.metrics.appended("invalid")
		return nil, toStatus(ctx, s.log, "Append", err)
	}
	ev, seal, err := s.sens.prepare(req.GetEvent(), "event")
	var openings [][]*pb.SensitiveOpening
	if err == nil && seal {
		openings, err = s.sens.seal([]*pb.ProvenanceEvent{ev})
	}
	if err != nil {
		s.metrics.appended("error")
		return nil, toStatus(ctx, s.log, "Append", err)
	}
	start := time.Now()
	r := s.ledger.Append(ctx, []ledger.Submission{{Event: ev, Submitter: id.Name}})[0]
	if r.Err != nil {
		s.metrics.appended("error")
		return nil, toStatus(ctx, s.log, "Append", r.Err)
	}
	s.metrics.appendDone(r.Duplicate, time.Since(start), "sequenced")
	resp := &pb.AppendResponse{Index: r.Index, LeafHash: r.LeafHash[:], Duplicate: r.Duplicate}
	if openings != nil {
		resp.Openings = openings[0]
	}
	if req.GetWait() == pb.WaitFor_WAIT_FOR_PUBLISHED {
		wctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
		defer cancel()
		cp, proof, err := s.ledger.Receipt(wctx, r.Index)
		if err != nil {
			return nil, s.publishErr(ctx, r.Index, err)
		}
		leaf := r.Leaf
		if leaf == nil {
			if leaf, err = s.ledger.Entry(ctx, r.Index); err != nil {
				return nil, toStatus(ctx, s.log, "Append", err)
			}
		}
		resp.Receipt = &pb.Receipt{Index: r.Index, Leaf: leaf, Checkpoint: cp, InclusionProof: proof}
		s.metrics.appendLatency.WithLabelValues("published").Observe(time.Since(start).Seconds())
	}
	return resp, nil
}

func (s *logService) checkWait(w pb.WaitFor) error {
	if _, ok := pb.WaitFor_name[int32(w)]; !ok {
		return invalid("wait", fmt.Sprintf("unknown value %d", w))
	}
	return nil
}

// publishErr explains a publication wait that did not finish: the event is
// sequenced and durable either way, so the caller may simply retry (the
// retry is a duplicate and waits again).
func (s *logService) publishErr(ctx context.Context, index uint64, err error) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(codes.Unavailable, "event sequenced at index %d but no checkpoint covering it was published within %v (witness quorum not met?); it is durable: retry to get the receipt", index, s.publishTimeout)
	}
	return toStatus(ctx, s.log, "Append", err)
}

func (s *logService) AppendBatch(ctx context.Context, req *pb.AppendBatchRequest) (*pb.AppendBatchResponse, error) {
	return s.appendEvents(ctx, req.GetEvents(), req.GetWait(), "AppendBatch")
}

// appendEvents is AppendBatch, and each request of AppendStream: op names
// the method in logs.
func (s *logService) appendEvents(ctx context.Context, evs []*pb.ProvenanceEvent, wait pb.WaitFor, op string) (*pb.AppendBatchResponse, error) {
	id := auth.FromContext(ctx)
	if err := s.checkWait(wait); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, invalid("events", "at least one event is required")
	}
	if len(evs) > event.MaxBatch {
		return nil, invalid("events", fmt.Sprintf("%d events exceed the batch limit of %d", len(evs), event.MaxBatch))
	}
	start := time.Now()
	results := make([]*pb.AppendResult, len(evs))
	subs := make([]ledger.Submission, 0, len(evs))
	pos := make([]int, 0, len(evs))
	var toSeal []*pb.ProvenanceEvent
	checks := s.checkEvents(ctx, id, evs)
	var sealPos []int // position in evs of each of toSeal
	openings := make([][]*pb.SensitiveOpening, len(evs))
	for i, ev := range evs {
		field := batchField(i)
		if err := checks[i]; err != nil {
			results[i] = &pb.AppendResult{Error: appendError(ctx, s.log, err)}
			s.metrics.appended("invalid")
			continue
		}
		ev, seal, err := s.sens.prepare(ev, field)
		if err != nil {
			results[i] = &pb.AppendResult{Error: appendError(ctx, s.log, err)}
			s.metrics.appended("invalid")
			continue
		}
		if seal {
			toSeal, sealPos = append(toSeal, ev), append(sealPos, i)
		}
		subs = append(subs, ledger.Submission{Event: ev, Submitter: id.Name})
		pos = append(pos, i)
	}
	if len(toSeal) > 0 {
		// Nothing is appended yet: a failure here leaves no partial state.
		o, err := s.sens.seal(toSeal)
		if err != nil {
			return nil, toStatus(ctx, s.log, op, err)
		}
		for k, i := range sealPos {
			openings[i] = o[k]
		}
	}
	var maxIndex uint64
	var anyOK bool
	rs := s.ledger.Append(ctx, subs)
	for j, r := range rs {
		i := pos[j]
		if r.Err != nil {
			results[i] = &pb.AppendResult{Error: appendError(ctx, s.log, r.Err)}
			s.metrics.appended("error")
			continue
		}
		s.metrics.appendDone(r.Duplicate, time.Since(start), "sequenced")
		results[i] = &pb.AppendResult{Index: r.Index, LeafHash: r.LeafHash[:], Duplicate: r.Duplicate, Openings: openings[i]}
		maxIndex, anyOK = max(maxIndex, r.Index), true
	}
	resp := &pb.AppendBatchResponse{Results: results}
	if wait != pb.WaitFor_WAIT_FOR_PUBLISHED || !anyOK {
		return resp, nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.publishTimeout)
	defer cancel()
	cpRaw, err := s.ledger.AwaitPublished(wctx, maxIndex)
	if err != nil {
		return nil, s.publishErr(ctx, maxIndex, err)
	}
	cp, err := s.ledger.ParseCheckpoint(cpRaw)
	if err != nil {
		return nil, toStatus(ctx, s.log, op, err)
	}
	resp.Checkpoint = cpRaw
	var ok []int // positions in rs of appended events
	var indexes []uint64
	for j, r := range rs {
		if r.Err == nil {
			ok, indexes = append(ok, j), append(indexes, r.Index)
		}
	}
	proofs, err := s.ledger.InclusionProofs(ctx, cp.Size, indexes)
	if err != nil {
		return nil, toStatus(ctx, s.log, op, err)
	}
	for k, j := range ok {
		r := rs[j]
		leaf := r.Leaf
		if leaf == nil {
			if leaf, err = s.ledger.Entry(ctx, r.Index); err != nil {
				return nil, toStatus(ctx, s.log, op, err)
			}
		}
		results[pos[j]].Receipt = &pb.Receipt{Index: r.Index, Leaf: leaf, Checkpoint: cpRaw, InclusionProof: proofs[k]}
	}
	s.metrics.appendLatency.WithLabelValues("published").Observe(time.Since(start).Seconds())
	return resp, nil
}

// appendError turns one event's failure into the batch's per-event error.
// toStatus gets a context without the call's stream, so that a conflict
// does not set the call's existing-index trailer: the batch call itself
// succeeds, and each conflict's index is in its own message.
func appendError(_ context.Context, log *slog.Logger, err error) *pb.AppendError {
	st, _ := status.FromError(toStatus(context.Background(), log, "AppendBatch", err))
	ae := &pb.AppendError{Code: int32(st.Code()), Message: st.Message()}
	var fe *event.FieldError
	if errors.As(err, &fe) {
		ae.Field = fe.Field
	}
	return ae
}

func (s *logService) GetCheckpoint(ctx context.Context, _ *pb.GetCheckpointRequest) (*pb.GetCheckpointResponse, error) {
	raw, cp, err := s.ledger.Checkpoint(ctx)
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetCheckpoint", err)
	}
	return &pb.GetCheckpointResponse{Checkpoint: raw, Origin: cp.Origin, Size: cp.Size, RootHash: cp.Hash}, nil
}

func (s *logService) GetEntry(ctx context.Context, req *pb.GetEntryRequest) (*pb.GetEntryResponse, error) {
	leaf, err := s.ledger.Entry(ctx, req.GetIndex())
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetEntry", err)
	}
	entry, err := event.DecodeLeaf(leaf)
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetEntry", fmt.Errorf("leaf %d does not decode: %w", req.GetIndex(), err))
	}
	// A foreign tenant's entry is NotFound, not PermissionDenied, so its
	// existence does not leak.
	if !auth.FromContext(ctx).CanActFor(entry.GetEvent().GetTenant()) {
		return nil, toStatus(ctx, s.log, "GetEntry", ledger.ErrNotFound)
	}
	h := event.LeafHash(leaf)
	return &pb.GetEntryResponse{Index: req.GetIndex(), Leaf: leaf, LeafHash: h[:], Entry: entry, Sensitive: s.sens.reveal(ctx, entry.GetEvent())}, nil
}

func (s *logService) GetInclusionProof(ctx context.Context, req *pb.GetInclusionProofRequest) (*pb.GetInclusionProofResponse, error) {
	var index uint64
	switch l := req.GetLeaf().(type) {
	case *pb.GetInclusionProofRequest_Index:
		index = l.Index
	case *pb.GetInclusionProofRequest_LeafHash:
		if len(l.LeafHash) != 32 {
			return nil, invalid("leaf_hash", fmt.Sprintf("must be 32 bytes, got %d", len(l.LeafHash)))
		}
		var h [32]byte
		copy(h[:], l.LeafHash)
		i, err := s.ledger.IndexOfLeaf(h)
		if err != nil {
			return nil, toStatus(ctx, s.log, "GetInclusionProof", err)
		}
		index = i
	default:
		return nil, invalid("leaf", "one of index or leaf_hash is required")
	}
	proof, size, cp, err := s.ledger.InclusionProof(ctx, index, req.GetTreeSize())
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetInclusionProof", err)
	}
	leaf, err := s.ledger.Entry(ctx, index)
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetInclusionProof", err)
	}
	h := event.LeafHash(leaf)
	if lh, ok := req.GetLeaf().(*pb.GetInclusionProofRequest_LeafHash); ok && string(lh.LeafHash) != string(h[:]) {
		return nil, toStatus(ctx, s.log, "GetInclusionProof", ledger.ErrNotFound)
	}
	if err := proofTenantCheck(ctx, leaf); err != nil {
		return nil, toStatus(ctx, s.log, "GetInclusionProof", err)
	}
	return &pb.GetInclusionProofResponse{Index: index, TreeSize: size, LeafHash: h[:], Proof: proof, Checkpoint: cp}, nil
}

func (s *logService) GetConsistencyProof(ctx context.Context, req *pb.GetConsistencyProofRequest) (*pb.GetConsistencyProofResponse, error) {
	if req.GetToSize() != 0 && req.GetFromSize() > req.GetToSize() {
		return nil, invalid("from_size", fmt.Sprintf("%d is larger than to_size %d", req.GetFromSize(), req.GetToSize()))
	}
	proof, size, cp, err := s.ledger.ConsistencyProof(ctx, req.GetFromSize(), req.GetToSize())
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetConsistencyProof", err)
	}
	return &pb.GetConsistencyProofResponse{FromSize: req.GetFromSize(), ToSize: size, Proof: proof, Checkpoint: cp}, nil
}

// checkEvents runs checkEvent on every event of a batch, on up to
// GOMAXPROCS goroutines for large batches: signature verification
// (Ed25519) is the costly part, and independent per event.
// batchFields names the events of a batch in errors, made once rather
// than twice per event appended.
var batchFields = func() (f [event.MaxBatch]string) {
	for i := range f {
		f[i] = fmt.Sprintf("events[%d]", i)
	}
	return f
}()

func batchField(i int) string {
	if i < len(batchFields) {
		return batchFields[i]
	}
	return fmt.Sprintf("events[%d]", i)
}

func (s *logService) checkEvents(ctx context.Context, id *auth.Identity, evs []*pb.ProvenanceEvent) []error {
	errs := make([]error, len(evs))
	workers := min(runtime.GOMAXPROCS(0), 1+len(evs)/64)
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(evs) {
				return
			}
			errs[i] = s.checkEvent(ctx, id, evs[i], batchField(i))
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return errs
}
